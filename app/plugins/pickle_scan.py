"""Name the Python callables a pickle would import, by reading its opcodes, never unpickling it.

A pickle runs code by importing a global (``GLOBAL``, ``STACK_GLOBAL``, ``INST``) and calling it
(``REDUCE``, ``OBJ``, ``NEWOBJ``, ``BUILD``). A PyTorch checkpoint needs only a few: the tensor
and storage rebuilders, dtypes and ``OrderedDict``. Scanning the opcode stream with
``pickletools`` finds any other global before ``torch.load`` sees the file, so a refusal can say
what the file would have run (``posix.system``) instead of quoting the loader.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickletools
import re
from dataclasses import dataclass
from typing import BinaryIO

# The globals a torch.save'd state dict may name (a subset of torch's weights_only allow-list).
_SAFE_GLOBALS = frozenset(
    {
        "collections.OrderedDict",
        "_codecs.encode",  # bytes under protocol 2
        "torch.Size",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._utils._rebuild_qtensor",
        "torch._utils._rebuild_sparse_tensor",
        "torch._utils._rebuild_meta_tensor_no_storage",
        "torch.serialization._get_layout",
        "torch.per_tensor_affine",
        "torch.per_channel_affine",
    }
)
_TORCH_STORAGE = re.compile(r"^torch(\.cuda)?\.[A-Za-z0-9]+Storage$|^torch\.storage\.UntypedStorage$")
_TORCH_DTYPE = re.compile(
    r"^torch\.(u?int(8|16|32|64)|float(8_\w+|16|32|64)|bfloat16|half|float|double|bool|complex(32|64|128)"
    r"|q(u?int8|int32|uint4x2|uint2x4)|bits\w+)$"
)
# Pickles the old (non-zip) torch.save format writes one after another before the raw storage.
LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PICKLE_COUNT = 5

_STRING_OPS = {
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
    "UNICODE",
    "BINUNICODE",
    "SHORT_BINUNICODE",
    "BINUNICODE8",
}
_MEMO_GETS = {"GET", "BINGET", "LONG_BINGET"}
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_EXTENSIONS = {"EXT1", "EXT2", "EXT4"}
_NUMBER_OPS = {"INT", "LONG", "LONG1", "LONG4", "BININT", "BININT1", "BININT2"}


class NotAPickle(ValueError):
    """The bytes are not a pickle opcode stream (corrupt, or another format)."""


@dataclass(frozen=True)
class PickleScan:
    protocol: int
    globals: tuple[str, ...]  # in order of appearance, "module.name"
    legacy_torch: bool  # the old torch.save format (magic number first)

    @property
    def unsafe_globals(self) -> tuple[str, ...]:
        return tuple(name for name in self.globals if not is_safe_global(name))


def is_safe_global(name: str) -> bool:
    return name in _SAFE_GLOBALS or bool(_TORCH_STORAGE.match(name) or _TORCH_DTYPE.match(name))


_MARK = object()


def _global_name(module: str, attribute: str, protocol: int) -> str:
    """``module.attribute`` as the unpickler would import it (Python 2 names mapped for protocol < 3)."""
    if protocol < 3:
        module, attribute = _compat_pickle.NAME_MAPPING.get((module, attribute), (module, attribute))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return f"{module}.{attribute}"


def _pop(stack: list, before: list) -> list:
    """Remove what an opcode consumes (everything down to a mark, for the mark-taking ones)."""
    popped = []
    if pickletools.markobject in before:
        while stack and (item := stack.pop()) is not _MARK:
            popped.append(item)
        below = before.index(pickletools.markobject)
    else:
        below = len(before)
    for _ in range(below):
        if stack:
            popped.append(stack.pop())
    return popped


def _scan_one(stream: BinaryIO) -> tuple[int, list[str], list]:
    """Globals, protocol and the first numbers of one pickle read from ``stream`` up to STOP.

    The stack is followed loosely (strings and memo lookups keep their value, everything else is
    None) so that STACK_GLOBAL's module and name are found even when they come from the memo."""
    protocol = 0
    names: list[str] = []
    stack: list = []
    memo: dict = {}
    numbers: list = []
    for opcode, arg, _ in pickletools.genops(stream):
        name = opcode.name
        if name == "PROTO":
            protocol = arg
        if name in ("GLOBAL", "INST"):
            module, _, attribute = str(arg).partition(" ")
            names.append(_global_name(module, attribute, protocol))
        elif name in _EXTENSIONS:
            names.append(f"copyreg extension {arg}")
        if name == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else None
            continue
        if name in _MEMO_PUTS:
            memo[arg] = stack[-1] if stack else None
            continue
        if name in _NUMBER_OPS and len(numbers) < 2:
            numbers.append(arg)
        popped = _pop(stack, opcode.stack_before)
        if name == "STACK_GLOBAL":
            attribute, module = (popped + [None, None])[:2]
            if isinstance(module, str) and isinstance(attribute, str):
                names.append(_global_name(module, attribute, protocol))
            else:
                names.append("a global computed while loading")
        for produced in opcode.stack_after:
            if produced is pickletools.markobject:
                stack.append(_MARK)
            elif name in _STRING_OPS:
                stack.append(arg)
            elif name in _MEMO_GETS:
                stack.append(memo.get(arg))
            else:
                stack.append(None)
    return protocol, names, numbers


def scan_pickle_stream(data: bytes | BinaryIO, allow_legacy_torch: bool = True) -> PickleScan:
    """Scan one pickle, or the consecutive pickles of an old-format torch checkpoint."""
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    try:
        protocol, names, numbers = _scan_one(stream)
    except (ValueError, EOFError, UnicodeDecodeError) as error:
        raise NotAPickle(str(error)) from error
    legacy = allow_legacy_torch and numbers == [LEGACY_TORCH_MAGIC]
    if legacy:
        for _ in range(_LEGACY_PICKLE_COUNT - 1):
            try:
                _, more, _ = _scan_one(stream)
            except (ValueError, EOFError, UnicodeDecodeError):
                break  # the raw storage bytes follow the last pickle
            names += more
    return PickleScan(protocol, tuple(names), legacy)

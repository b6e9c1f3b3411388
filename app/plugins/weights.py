"""Weights are data: hash check, then a loader that cannot run code.

* ``.pth``/``.pt`` state dicts: ``torch.load(weights_only=True)``; a pickle that names Python
  callables (the way a malicious checkpoint runs code) is refused with a clear message.
* TorchScript archives: ``torch.jit.load`` (no arbitrary Python unpickling).
* ONNX models: onnxruntime sessions (from the path: an ONNX model may keep its tensors in
  files beside it).

State dicts and TorchScript are read once (``read_verified``): the bytes hashed are the bytes
loaded.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import stat
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from app.plugins.errors import UnsafeWeightsError, WeightsFormatError, WeightsHashMismatchError
from app.plugins.pickle_scan import NotAPickle, scan_pickle_stream

_CHUNK_BYTES = 1 << 20


def open_regular_file(path: str | Path) -> io.BufferedReader:
    """``path`` opened for reading, refused unless it is a regular file (after symlinks): a folder,
    a named pipe or a device (``/dev/zero``) would fail late, block forever or fill the memory.
    Opened without blocking, so a pipe with no writer is refused, not waited on."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a pipe, socket or device)"
        raise WeightsFormatError(f"{Path(path).name}: {kind}, not a weights file: give the file itself")
    return os.fdopen(fd, "rb")


def sha256_of_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open_regular_file(path) as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class WeightsBytes:
    """A weights file read once: the bytes that were hashed are the bytes that are loaded (a file
    swapped between the check and the load cannot slip through)."""

    name: str
    data: bytes = field(repr=False)
    sha256: str

    @classmethod
    def read(cls, path: str | Path) -> WeightsBytes:
        with open_regular_file(path) as stream:
            data = stream.read()
        return cls(Path(path).name, data, hashlib.sha256(data).hexdigest())


def _check_hash(name: str, actual: str, expected_sha256: str) -> str:
    if actual.lower() != expected_sha256.lower():
        raise WeightsHashMismatchError(
            f"{name}: SHA-256 mismatch, refusing to load: the file has {actual}, the manifest"
            f" expects {expected_sha256.lower()}; if you retrained the model on purpose, set weights.sha256:"
            f" {actual}\nOtherwise the weights were changed or replaced since the manifest was written."
        )
    return actual


def verify_sha256(path: str | Path, expected_sha256: str) -> str:
    """Return the file's SHA-256, raising if it differs from the manifest's."""
    return _check_hash(Path(path).name, sha256_of_file(path), expected_sha256)


def read_verified(path: str | Path, expected_sha256: str) -> WeightsBytes:
    """The file's bytes, once its SHA-256 matches the manifest's."""
    weights = WeightsBytes.read(path)
    _check_hash(weights.name, weights.sha256, expected_sha256)
    return weights


def _as_bytes(source: str | Path | WeightsBytes) -> WeightsBytes:
    return source if isinstance(source, WeightsBytes) else WeightsBytes.read(source)


def _zip_names(data: bytes) -> list[str] | None:
    """The members of a zip archive that starts like one (torch.load's own test), else None."""
    if data[:4] != b"PK\x03\x04":
        return None
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.namelist()


def _is_torchscript(names: list[str]) -> bool:
    return any(name.endswith("/constants.pkl") or name == "constants.pkl" for name in names)


_RESAVE = (
    "re-save the generator with torch.save(model.state_dict(), path), or export it to TorchScript"
    " or ONNX (architecture.type: torchscript / onnx)"
)


def refuse_unsafe_pickle(weights: WeightsBytes) -> None:
    """Read the pickle(s) in a checkpoint without running them; refuse one naming a callable
    outside the tensor rebuilders, a plain Python pickle, or a file that is no pickle at all."""
    name, data = weights.name, weights.data
    try:
        members = _zip_names(data)
        if members is not None:
            if _is_torchscript(members):
                raise WeightsFormatError(
                    f"{name}: a TorchScript archive, not a state dict: set architecture.type:"
                    " torchscript (the built-in architectures read state dicts)"
                )
            pickles = [member for member in members if member.endswith("data.pkl")]
            if not pickles:
                raise WeightsFormatError(
                    f"{name}: a zip file without a data.pkl, not a PyTorch checkpoint: {_RESAVE}"
                )
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                scans = [scan_pickle_stream(archive.read(m), allow_legacy_torch=False) for m in pickles]
            torch_format = True
        else:
            scans = [scan_pickle_stream(data)]
            torch_format = scans[0].legacy_torch
    except NotAPickle as error:
        raise WeightsFormatError(
            f"{name}: not a PyTorch checkpoint (neither a torch.save zip nor a pickle): {_RESAVE}"
            f"\n(the pickle reader stopped: {error})"
        ) from error
    except (zipfile.BadZipFile, OSError, KeyError, EOFError) as error:
        raise WeightsFormatError(f"{name}: cannot read the checkpoint ({_first_line(error)})") from error
    unsafe = [found for scan in scans for found in scan.unsafe_globals]
    if unsafe:
        others = f"\nother callables it names: {', '.join(dict.fromkeys(unsafe[1:]))}" if len(unsafe) > 1 else ""
        raise UnsafeWeightsError(
            f"{name}: refused: the weights file would run code ({unsafe[0]}) when loaded; {_RESAVE}"
            f"\nSynthView loads weights as data only (tensors), never Python objects.{others}"
        )
    if not torch_format:
        raise WeightsFormatError(
            f"{name}: a plain Python pickle (protocol {scans[0].protocol}), not a PyTorch checkpoint:"
            f" {_RESAVE}"
        )


def load_state_dict(source: str | Path | WeightsBytes) -> dict[str, torch.Tensor]:
    """A plain ``{name: tensor}`` state dict from a checkpoint, loaded as data only.

    The pickle is scanned first (``refuse_unsafe_pickle``); ``torch.load(weights_only=True)`` of
    the same bytes stays the second line of defence. Accepts the bare state dict the
    pix2pix/CycleGAN code saves, a ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper, and
    strips a DataParallel ``module.`` prefix.
    """
    weights = _as_bytes(source)
    name = weights.name
    refuse_unsafe_pickle(weights)
    try:
        with warnings.catch_warnings():  # torch's own warnings (legacy format, weights_only) stay quiet
            warnings.simplefilter("ignore")
            loaded = torch.load(io.BytesIO(weights.data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeWeightsError(
            f"{name}: refused: the weights file holds Python objects the data-only loader does not"
            f" accept; {_RESAVE}\n(loader: {_first_line(error)})"
        ) from error
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        raise WeightsFormatError(
            f"{name}: not a readable PyTorch checkpoint (truncated or damaged): {_RESAVE}"
            f"\n(loader: {_first_line(error)})"
        ) from error
    for wrapper_key in ("state_dict", "model", "netG", "generator"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper_key), dict):
            loaded = loaded[wrapper_key]
            break
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsFormatError(
            f"{name}: expected a state dict of tensors, found {type(loaded).__name__}: {_RESAVE}"
        )
    if loaded and all(key.startswith("module.") for key in loaded):
        loaded = {key[len("module.") :]: value for key, value in loaded.items()}
    return dict(loaded)


def load_torchscript(source: str | Path | WeightsBytes) -> torch.jit.ScriptModule:
    weights = _as_bytes(source)
    name = weights.name
    try:
        members = _zip_names(weights.data)
    except zipfile.BadZipFile:
        members = None
    if members is not None and not _is_torchscript(members):
        raise WeightsFormatError(
            f"{name}: a torch.save checkpoint, not TorchScript: set architecture.type to the"
            " built-in network it was trained with (resnet_9blocks, resnet_6blocks, unet_128, unet_256),"
            " or save it with torch.jit.script(model).save(path)"
        )
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated upstream but still the portable format
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(io.BytesIO(weights.data), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as error:
        raise WeightsFormatError(
            f"{name}: not a readable TorchScript archive: save the model with"
            f" torch.jit.script(model).save(path), or set architecture.type to its format"
            f"\n(loader: {_first_line(error)})"
        ) from error
    return module.eval()


def onnx_session(path: str | Path, device_type: str = "cpu"):
    """An onnxruntime session; CUDA provider first on a CUDA device when onnxruntime has it."""
    import onnxruntime

    path = Path(path)
    available = onnxruntime.get_available_providers()
    providers = ["CPUExecutionProvider"]
    if device_type == "cuda" and "CUDAExecutionProvider" in available:
        providers.insert(0, "CUDAExecutionProvider")
    onnxruntime.set_default_logger_severity(_ONNX_FATAL)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = _ONNX_FATAL  # failures are raised and reported in one line, not logged
    try:
        return onnxruntime.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as error:  # onnxruntime raises its own exception types
        raise WeightsFormatError(
            f"{path.name}: not a readable ONNX model ({_onnx_reason(error)}): export it again (torch.onnx.export,"
            " an opset this onnxruntime supports), or set architecture.type to the file's format"
        ) from error


_ONNX_FATAL = 4


def quiet_run_options():
    """onnxruntime run options that log nothing below fatal: a failed run raises (and the caller
    reports it in one line) instead of printing a red line to stderr as well."""
    import onnxruntime

    options = onnxruntime.RunOptions()
    options.log_severity_level = _ONNX_FATAL
    return options


def _onnx_reason(error: BaseException) -> str:
    """onnxruntime's message without its C++ source location and function signature, which
    otherwise fill the line before the reason (an opset newer than it supports, an unknown op)."""
    text = re.sub(r"/onnxruntime_src/\S+:\d+ [^()]*\([^()]*\)\s*", "", " ".join(str(error).split()))
    text = text.replace("[ONNXRuntimeError] : ", "").strip()
    return text[:600] if text else type(error).__name__


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


def state_dict_mismatch(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> str | None:
    """Why ``state`` cannot stand for a network whose own state dict is ``expected``, or None: the
    first missing or unexpected key, a shape that differs, an integer, boolean or complex tensor
    where the network holds floating-point values (``load_state_dict`` would silently truncate it
    or drop its imaginary part), or NaN / infinite values (every figure computed would be NaN)."""
    missing = sorted(set(expected) - set(state))
    if missing:
        return f"missing {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        return f"unexpected {unexpected[0]}" + (f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else "")
    for key, want in expected.items():
        have = state[key]
        if tuple(have.shape) != tuple(want.shape):
            return f"shape of {key} is {tuple(have.shape)}, expected {tuple(want.shape)}"
        if want.is_floating_point() and not have.is_floating_point():
            return f"{key} holds {str(have.dtype).removeprefix('torch.')} values, expected floating point"
        if have.is_floating_point() and not bool(torch.isfinite(have).all()):
            return f"{key} holds NaN or infinite values"
    return None

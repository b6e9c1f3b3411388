"""Importing a reference package (lpips, pytorch-fid) over stand-in modules (a torchvision made of
what the package uses), and forgetting all of it afterwards, so no other test sees either."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


@contextmanager
def imported_over(stand_ins: Mapping[str, types.ModuleType], package: str) -> Iterator[None]:
    """Within the block, ``stand_ins`` are in ``sys.modules`` (for ``package`` to import); after it,
    the modules they replaced are back and ``package`` and its submodules are unloaded."""
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            del sys.modules[name]

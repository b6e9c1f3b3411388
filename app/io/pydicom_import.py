"""pydicom's import for the start of the desktop window, without its downloader's HTTP stack.

pydicom imports ``requests`` and ``tqdm`` for its test-data downloader only
(``pydicom.data.download``): 0.065 s of its 0.22 s import on the 2-core development machine, on
the path from a double-click to a study's first image. SynthView downloads nothing (everything
works offline); without them pydicom's downloader falls back to urllib.
"""

from __future__ import annotations

import sys

DOWNLOADER_ONLY = ("requests", "tqdm")


def import_pydicom_offline() -> None:
    """Import pydicom with its pixel decoders, ``DOWNLOADER_ONLY`` answering ImportError
    meanwhile: for the window's start-up thread, while no other thread imports them (the UI
    thread imports Qt and the window). Imported later, they import as usual; already imported,
    they are left alone, and so is a pydicom already imported."""
    if "pydicom" in sys.modules:
        return
    blocked = [name for name in DOWNLOADER_ONLY if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment] - import answers ImportError
    try:
        import pydicom.pixels  # noqa: F401
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]

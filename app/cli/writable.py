"""Can an output be written? Asked by commands before their long work (inference, maps), so a
read-only or mistyped destination is reported at once rather than after minutes of computing."""

from __future__ import annotations

import os
from pathlib import Path


def unwritable_reason(path: str | Path, *, folder: bool = False) -> str | None:
    """Why ``path`` (a file; with ``folder``, a folder to create or fill) cannot be written, or None.

    Missing folders on the way count as writable when the nearest existing one is (commands
    create them). ``os.access`` also reports a read-only file system, even to root.
    """
    target = Path(path).absolute()
    if not folder and target.is_dir():
        return f"{target} is a folder, not a file"
    existing = target if folder else target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"the folder {existing} is not writable (read-only file system or no permission)"
    if target.is_file() and not os.access(target, os.W_OK):
        return f"{target} is read-only"
    return None

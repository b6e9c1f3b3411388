"""Why an output path cannot be written when a file stands where a folder is needed.

Writing ``/tmp/notes/out.json`` where ``/tmp/notes`` is a file fails with the operating
system's words for another case: 'File exists' (creating the folder) or 'Not a directory'.
Every writer (the atomic writes of app.io, the viewer's screenshot and figure export) says
instead which file is in the way.
"""

from __future__ import annotations

from pathlib import Path


def file_in_the_way(path: str | Path) -> Path | None:
    """The existing file (not a folder) among the folders ``path`` would be written in, or None."""
    for folder in reversed(Path(path).absolute().parents):
        if not folder.exists():
            return None  # created by the writer from here on
        if not folder.is_dir():
            return folder
    return None


def folder_needed_reason(path: str | Path) -> str | None:
    """'… is a file where a folder is needed' (one line) when a file is in ``path``'s way, else None."""
    blocker = file_in_the_way(path)
    return None if blocker is None else f"{blocker} is a file where a folder is needed"

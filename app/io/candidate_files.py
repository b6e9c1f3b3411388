"""Which files a DICOM scan of a path reads: one definition for the scanner (``dicom_scan``) and
for the decoded-series cache's key (``decoded_cache``), which must not import pydicom."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def iter_candidate_files(path: Path, recursive: bool = True) -> Iterable[Path]:
    """Every regular file under ``path`` (recursively unless told, sorted), skipping hidden files."""
    if path.is_file():
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            candidate = Path(root) / name
            # Regular files only: opening a FIFO or a device would block the scan.
            if not name.startswith(".") and candidate.is_file():
                yield candidate

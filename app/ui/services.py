"""What the window needs from the file-format layer, handed in by the entry point.

The UI does not import ``app.io`` (it would pull pydicom and nibabel into the widgets and break
the import contract "only app.io touches file-format libraries"); the composition root
(``app.cli.file_services``, used by ``main.py`` and ``view``) builds this from ``app.io``, and
tests hand in plain functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.core.volume import Volume

VolumeLoader = Callable[..., Volume]  # (path, series_uid=None[, progress=...]) -> Volume


def _no_loader(path: str, series_uid: str | None = None) -> Volume:
    raise RuntimeError("this window was started without a file loader (see app.cli.file_services)")


@dataclass(frozen=True)
class PacsServices:
    """DICOM networking for File > Query/Retrieve and Send to PACS (``app.pacs``, which reads
    DICOM, handed in by the composition root like the loader)."""

    load_config: Callable[[], object]  # () -> app.pacs.nodes.PacsConfig
    find: Callable[..., list[dict]]  # (node, config, query) -> matches
    retrieve: Callable[..., tuple]  # (node, config, study_uid, series_uid, progress, cancel) -> (folder, result)
    send: Callable[..., object]  # (node, config, path) -> TransferResult


@dataclass(frozen=True)
class FileServices:
    load_volume: VolumeLoader = _no_loader
    scan_beside: Callable[[str], list] | None = None  # folder / DICOM file -> studies (headers only)
    series_preview: Callable[[object], Volume] | None = None  # scanned series -> its middle slice
    export_annotations: Callable[..., list[Path]] | None = None  # (document, volume, folder, deidentify, warnings, compare_volumes)
    pacs: PacsServices | None = None
    # (scanned series, path, progress) -> Volume: loads a series the scan listed without scanning
    # its folder a second time; None: ``load_volume(path, series_uid)`` rescans.
    load_scanned: Callable[..., Volume] | None = None
    save_nifti: Callable[..., Path] | None = None  # (volume, path, extra_sidecar=None) -> path
    # (path, series_uid) -> None when that load was not served from the decoded-series cache, else
    # whether the cached copy still matches its files (rehashes them: call it off the UI thread;
    # False: the stale entry is gone, a load now reads the files).
    verify_cached: Callable[[str, str | None], bool | None] | None = None
    # (kind, path, series UID or "") -> whether the result of that request ("scan" of a folder or
    # DICOM file, "volume" of a series or NIfTI file) was read ahead and waits in memory (a read
    # still going on may be waited for, briefly): the request then runs on the UI thread at once
    # (no thread to start, no signal to wait for).
    in_memory: Callable[[str, str, str], bool] | None = None

"""One entry point for every input: a DICOM folder or file, or a NIfTI file -> Volume.

``scan_path`` lists what a path holds (headers only); ``load_volume`` reads one series. Every
failure the user can cause (missing path, not an image, corrupt or truncated file, unknown
series) raises ``LoadError`` with a message naming the file and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.core.study import ScanResult, SeriesInfo
from app.core.volume import Volume
from app.io.errors import LoadError
from app.io.nifti import is_nifti_path, load_nifti

__all__ = ["LoadError", "load_volume", "scan_path", "scan_beside", "choose_series"]


def scan_path(path: str | Path) -> ScanResult:
    """Studies and series under a DICOM file or folder, plus the files skipped and why."""
    path = Path(path)
    if not path.exists():
        raise LoadError(f"{path} does not exist")
    from app.io.dicom_scan import scan  # pydicom: imported for DICOM only (a NIfTI load skips it)

    return scan(path)


def scan_beside(path: str | Path) -> ScanResult:
    """For a DICOM file, the series in the folder that holds it (that folder only, not below it),
    so opening one slice finds the rest of its series; anything else as ``scan_path``."""
    path = Path(path)
    if not path.is_file() or is_nifti_path(path) or path.name.upper() == "DICOMDIR":
        return scan_path(path)
    from app.io.dicom_scan import scan

    return scan(path.parent, recursive=False)


def load_volume(
    path: str | Path,
    series_uid: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Volume:
    """Load a NIfTI file, or one series of a DICOM file/folder (the largest when not named).

    A DICOM file with a ``series_uid`` loads that series from the files beside it in its folder
    (``scan_beside``): how a viewer opened on one slice loads the whole series. Without one, the
    file alone is read.
    ``progress(frames_read, frames_total)`` follows a DICOM series load (NIfTI: not called).
    """
    path = Path(path)
    if not path.exists():
        raise LoadError(f"{path} does not exist")
    if path.is_file() and is_nifti_path(path):
        try:
            return load_nifti(path)
        except LoadError:
            raise
        except Exception as error:  # noqa: BLE001 - nibabel raises many kinds; one clear message
            raise LoadError(f"{path.name}: not a readable NIfTI image ({error})") from error
    result = scan_beside(path) if series_uid and path.is_file() else scan_path(path)
    return load_scanned_series(choose_series(result, path, series_uid), path, progress)


def load_scanned_series(
    series: SeriesInfo, path: str | Path, progress: Callable[[int, int], None] | None = None
) -> Volume:
    """The pixels of a series ``scan_path``/``scan_beside`` listed (no second scan of its folder)."""
    from app.io.dicom_load import load_series

    path = Path(path)
    try:
        return load_series(series, progress=progress)
    except LoadError:
        raise
    except (MemoryError, ValueError) as error:
        raise LoadError(f"{path.name}: cannot build a volume from series {series.uid} ({error})") from error


def choose_series(result: ScanResult, path: Path, series_uid: str | None) -> SeriesInfo:
    """The series asked for, or the one with the most slices; ``LoadError`` when there is none."""
    everything = result.all_series()
    if not everything:
        reasons = sorted({skipped.reason for skipped in result.skipped})
        detail = f" ({len(result.skipped)} file(s) skipped: {'; '.join(reasons[:3])})" if reasons else ""
        raise LoadError(f"no DICOM image series found in {path}{detail}")
    if series_uid:
        series = result.find_series(series_uid)
        if series is None:
            listed = ", ".join(s.uid for s in everything[:10])
            raise LoadError(f"no series {series_uid} in {path}; found: {listed}")
        return series
    return max(everything, key=lambda s: len(s.frames))

"""Loading volumes off the UI thread: a QRunnable that reports back through Qt signals.

The UI does not import file-format code (an import-linter contract): the function that turns a
path into a Volume is handed in by the caller (``app.cli.view`` passes ``app.io``'s loader).
``default_loader`` resolves ``app.io`` at run time for the bare ``python main.py`` start,
which is the application's composition root, not a dependency of the widgets.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import traceback
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore

from app.core.volume import Volume

VolumeLoader = Callable[[str, "str | None"], Volume]


def default_loader() -> VolumeLoader:
    """``app.io.loader.load_volume`` when present, else a NIfTI-only loader from ``app.io.nifti``."""
    try:
        return importlib.import_module("app.io.loader").load_volume
    except ImportError:
        nifti = importlib.import_module("app.io.nifti")

        def load_nifti_only(path: str, series_uid: str | None = None) -> Volume:
            if not nifti.is_nifti_path(path):
                raise ValueError(
                    f"{Path(path).name}: not a NIfTI file, and the DICOM loader is not available"
                )
            return nifti.load_nifti(path)

        return load_nifti_only


def default_scanner() -> Callable[[str], list] | None:
    """``app.io.loader.scan_beside`` when present: a DICOM folder, or the folder of a DICOM file,
    -> studies with their series."""
    try:
        return getattr(importlib.import_module("app.io.loader"), "scan_beside", None)
    except ImportError:
        return None


def default_series_preview() -> Callable[[object], Volume] | None:
    """A function reading only the middle frame of a scanned series (for its thumbnail)."""
    try:
        load_series = importlib.import_module("app.io.dicom_load").load_series
    except (ImportError, AttributeError):
        return None

    def middle_frame(series) -> Volume:
        middle = series.frames[len(series.frames) // 2]
        columns, rows, _ = series.size_ijk
        return load_series(dataclasses.replace(series, frames=[middle], size_ijk=(columns, rows, 1)))

    return middle_frame


def load_path(
    path: str | Path,
    series_uid: str | None = None,
    loader: VolumeLoader | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Volume:
    """A Volume from a DICOM folder/file or a NIfTI file; a clear error for a missing path.

    ``progress(done, total)`` is handed to loaders that take it (``app.io``'s DICOM loader
    reports frames read); other loaders run without it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    load = loader or default_loader()
    if progress is not None and _accepts_progress(load):
        return load(str(path), series_uid=series_uid, progress=progress)
    return load(str(path), series_uid=series_uid)


def _accepts_progress(function: Callable) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "progress" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


class _LoadSignals(QtCore.QObject):
    loaded = QtCore.Signal(str, object, str)  # path, Volume, series UID asked for ("" if none)
    failed = QtCore.Signal(str, str)  # path, message
    progress = QtCore.Signal(str, int, int)  # path, done, total (e.g. DICOM frames read)


class LoadTask(QtCore.QRunnable):
    """Loads one path in the global thread pool; ``signals.loaded``/``failed`` arrive on the UI thread."""

    def __init__(self, path: str, series_uid: str | None = None, loader: VolumeLoader | None = None) -> None:
        super().__init__()
        self.path = path
        self.series_uid = series_uid
        self.loader = loader
        self.signals = _LoadSignals()

    def run(self) -> None:
        try:
            volume = load_path(
                self.path,
                self.series_uid,
                self.loader,
                progress=lambda done, total: self.signals.progress.emit(self.path, int(done), int(total)),
            )
        except Exception as error:  # noqa: BLE001 - any loader failure becomes a message, never a crash
            traceback.print_exc()
            self.signals.failed.emit(self.path, f"{type(error).__name__}: {error}")
            return
        self.signals.loaded.emit(self.path, volume, self.series_uid or "")


class _ScanSignals(QtCore.QObject):
    scanned = QtCore.Signal(str, object)  # path, list of studies
    failed = QtCore.Signal(str, str)


class ScanTask(QtCore.QRunnable):
    """Scans a DICOM folder's headers in the thread pool (no pixels read)."""

    def __init__(self, path: str, scanner: Callable[[str], list]) -> None:
        super().__init__()
        self.path = path
        self.scanner = scanner
        self.signals = _ScanSignals()

    def run(self) -> None:
        try:
            studies = list(self.scanner(self.path))
        except Exception as error:  # noqa: BLE001 - reported to the user, never a crash
            self.signals.failed.emit(self.path, f"{type(error).__name__}: {error}")
            return
        self.signals.scanned.emit(self.path, studies)


class _PreviewSignals(QtCore.QObject):
    preview_ready = QtCore.Signal(str, str, object)  # path, series UID, one-slice Volume


class PreviewTask(QtCore.QRunnable):
    """Reads one frame per scanned series, in the background, for the browser's thumbnails."""

    def __init__(self, path: str, series_list: list, preview: Callable[[object], Volume]) -> None:
        super().__init__()
        self.path = path
        self.series_list = series_list
        self.preview = preview
        self.signals = _PreviewSignals()

    def run(self) -> None:
        for series in self.series_list:
            try:
                volume = self.preview(series)
            except Exception:  # noqa: BLE001 - a missing thumbnail is not worth a message
                continue
            self.signals.preview_ready.emit(self.path, str(series.uid), volume)

"""Loading volumes off the UI thread: a QRunnable that reports back through Qt signals.

The UI does not import file-format code (an import-linter contract): the function that turns a
path into a Volume is handed in by the entry point (``app.ui.services.FileServices``).
"""

from __future__ import annotations

import inspect
import traceback
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore

from app.core.volume import Volume
from app.ui.services import VolumeLoader


def load_path(
    path: str | Path,
    series_uid: str | None = None,
    *,
    loader: VolumeLoader,
    progress: Callable[[int, int], None] | None = None,
) -> Volume:
    """A Volume from a DICOM folder/file or a NIfTI file; a clear error for a missing path.

    ``progress(done, total)`` is handed to loaders that take it (``app.io``'s DICOM loader
    reports frames read); other loaders run without it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if progress is not None and _accepts_progress(loader):
        return loader(str(path), series_uid=series_uid, progress=progress)
    return loader(str(path), series_uid=series_uid)


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

    def __init__(self, path: str, series_uid: str | None, loader: VolumeLoader) -> None:
        super().__init__()
        self.path = path
        self.series_uid = series_uid
        self.loader = loader
        self.signals = _LoadSignals()

    @property
    def request(self) -> tuple[str, str, str]:
        """(kind, path, series UID or ""), as ``FileServices.in_memory`` takes it."""
        return ("volume", self.path, self.series_uid or "")

    def run(self) -> None:
        try:
            volume = load_path(
                self.path,
                self.series_uid,
                loader=self.loader,
                progress=lambda done, total: _emit(self.signals.progress, self.path, int(done), int(total)),
            )
        except Exception as error:  # noqa: BLE001 - any loader failure becomes a message, never a crash
            traceback.print_exc()
            _emit(self.signals.failed, self.path, f"{type(error).__name__}: {error}")
            return
        _emit(self.signals.loaded, self.path, volume, self.series_uid or "")


def _emit(signal, *values) -> None:
    """Report to the window; nothing when it went away meanwhile (quit or closed mid-load)."""
    try:
        signal.emit(*values)
    except RuntimeError:  # "Signal source has been deleted": nobody is listening any more
        pass


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

    @property
    def request(self) -> tuple[str, str, str]:
        """(kind, path, series UID or ""), as ``FileServices.in_memory`` takes it."""
        return ("scan", self.path, "")

    def run(self) -> None:
        try:
            studies = list(self.scanner(self.path))
        except Exception as error:  # noqa: BLE001 - reported to the user, never a crash
            _emit(self.signals.failed, self.path, f"{type(error).__name__}: {error}")
            return
        _emit(self.signals.scanned, self.path, studies)


class _CacheCheckSignals(QtCore.QObject):
    checked = QtCore.Signal(str, str, object)  # path, series UID ("" if none), True/False/None


class CacheCheckTask(QtCore.QRunnable):
    """Rehashes, in the thread pool, the files of a volume the decoded-series cache served
    (``FileServices.verify_cached``): None when the load did not come from the cache."""

    def __init__(self, path: str, series_uid: str, verify: Callable[[str, str | None], bool | None]) -> None:
        super().__init__()
        self.path = path
        self.series_uid = series_uid
        self.verify = verify
        self.signals = _CacheCheckSignals()

    def run(self) -> None:
        try:
            result = self.verify(self.path, self.series_uid or None)
        except Exception:  # noqa: BLE001 - no proof either way: the volume shown stays
            traceback.print_exc()
            result = None
        _emit(self.signals.checked, self.path, self.series_uid, result)


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
            _emit(self.signals.preview_ready, self.path, str(series.uid), volume)

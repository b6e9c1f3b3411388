"""Loading volumes off the UI thread: a QRunnable that reports back through Qt signals."""

from __future__ import annotations

import importlib
import traceback
from pathlib import Path

from PySide6 import QtCore

from app.core.volume import Volume


def load_path(path: str | Path, series_uid: str | None = None) -> Volume:
    """A Volume from a DICOM folder/file or a NIfTI file (through ``app.io``'s loader)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        loader = importlib.import_module("app.io.loader")
    except ImportError:
        loader = None
    if loader is not None:
        return loader.load_volume(str(path), series_uid=series_uid)
    from app.io.nifti import is_nifti_path, load_nifti

    if is_nifti_path(path):
        return load_nifti(path)
    raise ValueError(f"{path.name}: not a NIfTI file, and the DICOM loader is not available")


class _LoadSignals(QtCore.QObject):
    loaded = QtCore.Signal(str, object)  # path, Volume
    failed = QtCore.Signal(str, str)  # path, message


class LoadTask(QtCore.QRunnable):
    """Loads one path in the global thread pool; ``signals.loaded``/``failed`` arrive on the UI thread."""

    def __init__(self, path: str, series_uid: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.series_uid = series_uid
        self.signals = _LoadSignals()

    def run(self) -> None:
        try:
            volume = load_path(self.path, self.series_uid)
        except Exception as error:  # noqa: BLE001 - any loader failure becomes a message, never a crash
            traceback.print_exc()
            self.signals.failed.emit(self.path, f"{type(error).__name__}: {error}")
            return
        self.signals.loaded.emit(self.path, volume)

"""The status bar's note of the compute device GAN plugins will use (CUDA GPU, MPS or CPU).

Finding out imports torch (seconds, hundreds of MB), so the main window never does it while it
starts: it asks a little after it is shown, in a daemon thread, and fills the label when the
answer arrives. A daemon Python thread, not Qt's thread pool: quitting while torch still imports
then stops the import quietly (from a pool thread, the interpreter's shutdown under the import
printed torch tracebacks). ``describe`` is injectable for tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6 import QtCore, QtWidgets

DEVICE_CHECK_DELAY_MS = 1500  # after the window shows: start-up and the first paint come first
PENDING_TEXT = "GAN device: checking…"


def describe_plugin_device() -> str:
    """``app.plugins.device.describe_device()``, imported only now (it imports torch)."""
    from app.ui.about_dialog import default_device_description

    return default_device_description()


class _DeviceSignals(QtCore.QObject):
    described = QtCore.Signal(str)


class DeviceCheckTask:
    """Calls ``describe`` off the UI thread; ``signals.described`` carries the line."""

    def __init__(self, describe: Callable[[], str]) -> None:
        self.describe = describe
        self.signals = _DeviceSignals()

    def run(self) -> None:
        try:
            text = str(self.describe())
        except Exception as error:  # noqa: BLE001 - a status line must never take the viewer down
            text = f"unknown ({type(error).__name__}: {error})"
        try:
            self.signals.described.emit(text)
        except RuntimeError:  # the application quit while torch was importing: nobody to tell
            pass


class DeviceStatusLabel(QtWidgets.QLabel):
    """'GAN device: CUDA: NVIDIA H100 (79.1 GiB), torch 2.13.0', filled once ``start`` ran."""

    described = QtCore.Signal(str)  # the whole line, once known (Help > About waits for it)

    def __init__(self, describe: Callable[[], str] | None = None, parent=None) -> None:
        super().__init__(PENDING_TEXT, parent)
        self.describe = describe or describe_plugin_device
        self.busy: Callable[[], bool] = lambda: False  # while True, the check waits (a load runs)
        self.description = ""
        self._task: DeviceCheckTask | None = None
        self.setToolTip("The compute device GAN plugins will run on (Help > About for details)")

    def start(self, delay_ms: int | None = None) -> None:
        """Ask once, ``delay_ms`` (default ``DEVICE_CHECK_DELAY_MS``) from now; later calls do nothing."""
        if delay_ms is None:
            delay_ms = DEVICE_CHECK_DELAY_MS
        if self._task is None:
            self._task = DeviceCheckTask(self.describe)
            self._task.signals.described.connect(self._on_described)
            QtCore.QTimer.singleShot(delay_ms, self, self._run_task)

    def _run_task(self) -> None:
        if not self.isVisible():  # window closed (or label hidden) meanwhile: the next show asks
            self._task = None
            return
        if self.busy():
            QtCore.QTimer.singleShot(250, self, self._run_task)
            return
        threading.Thread(target=self._task.run, name="device check", daemon=True).start()

    def _on_described(self, text: str) -> None:
        self.description = text
        self.setText(f"GAN device: {text.split(', torch')[0]}")
        self.setToolTip(f"GAN plugins will run on: {text}")
        self.described.emit(text)

"""One plugin computation in the thread pool, with progress, cancel and one error path.

``work(progress, cancel)`` runs off the UI thread (it may import torch); its result, a
cancellation or a failure comes back through ``signals`` on the UI thread. A plugin's own
errors are shown as they are; anything else as 'Type: message', never a crash.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6 import QtCore

Work = Callable[[Callable[[float, str], None], Callable[[], bool]], object]


class PluginTaskSignals(QtCore.QObject):
    progress = QtCore.Signal(float, str)
    finished = QtCore.Signal(object)
    failed = QtCore.Signal(str)
    cancelled = QtCore.Signal()


class PluginTask(QtCore.QRunnable):
    def __init__(self, work: Work) -> None:
        super().__init__()
        self.work = work
        self.cancel_event = threading.Event()
        self.signals = PluginTaskSignals()
        self.setAutoDelete(False)  # the owner keeps it until its signal arrives

    def run(self) -> None:
        from app.plugins.errors import PluginError, SynthesisCancelled

        try:
            result = self.work(self.signals.progress.emit, self.cancel_event.is_set)
        except SynthesisCancelled:
            self.signals.cancelled.emit()
        except PluginError as error:
            self.signals.failed.emit(str(error))
        except Exception as error:  # noqa: BLE001 - a failed run is a message, never a crash
            self.signals.failed.emit(f"{type(error).__name__}: {error}")
        else:
            self.signals.finished.emit(result)

"""One plugin computation in the thread pool, with progress, cancel and one error path.

``work(progress, cancel)`` runs off the UI thread (it may import torch); its result, a
cancellation or a failure comes back through ``signals`` on the UI thread. A plugin's own
errors are shown as they are; anything else as 'Type: message', never a crash.

``TaskControls`` are the progress bar, cancel button and status line every box that runs a
plugin shows (the GAN plugins dock, the segmentation check, the generator reruns).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from PySide6 import QtCore, QtWidgets

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

    def start(
        self,
        *,
        progress: Callable[[float, str], None],
        finished: Callable[[object], None],
        failed: Callable[[str], None],
        cancelled: Callable[[], None],
    ) -> PluginTask:
        """Connect the outcomes (bound methods of the owning widget: they run on the UI thread) and
        queue the task in the application's thread pool."""
        self.signals.progress.connect(progress)
        self.signals.finished.connect(finished)
        self.signals.failed.connect(failed)
        self.signals.cancelled.connect(cancelled)
        QtCore.QThreadPool.globalInstance().start(self)
        return self

    def cancel(self) -> None:
        """Ask the work to stop at its next cancel check; ``signals.cancelled`` follows."""
        self.cancel_event.set()

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


class TaskControls(QtCore.QObject):
    """A progress bar (0-100), a Cancel button (enabled while a task runs) and a word-wrapped
    status line; the owner lays them out and connects ``cancel``. A QObject made on the UI thread,
    so that a worker thread's progress signal connected to ``show_progress`` is queued to it."""

    def __init__(self, cancel: Callable[[], None], selectable_status: bool = False, parent=None) -> None:
        super().__init__(parent)
        self.progress_bar = QtWidgets.QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(cancel)
        self.status_label = QtWidgets.QLabel("")
        self.status_label.setWordWrap(True)
        if selectable_status:
            self.status_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)

    def progress_row(self) -> QtWidgets.QHBoxLayout:
        """The bar with the Cancel button beside it."""
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.cancel_button)
        return row

    @QtCore.Slot(float, str)
    def show_progress(self, fraction: float, message: str) -> None:
        self.progress_bar.setValue(int(round(fraction * 100)))
        self.status_label.setText(message)

    def started(self, message: str) -> None:
        self.progress_bar.setValue(0)
        self.status_label.setText(message)

    def ended(self, message: str, done: bool = False) -> None:
        """A task's end: the bar full when it gave its result, empty when it failed or was cancelled."""
        self.progress_bar.setValue(100 if done else 0)
        self.status_label.setText(message)


class RunsPluginTask:
    """Mixin of a widget that runs one PluginTask at a time and shows it in ``self.controls``
    (TaskControls). The widget provides ``_set_running(bool)`` (which controls to lock) and the
    outcome slots ``_on_finished(result)``, ``_on_failed(message)``, ``_on_cancelled()``; these call
    ``_task_ended`` first."""

    _task: PluginTask | None = None
    controls: TaskControls

    def is_running(self) -> bool:
        return self._task is not None

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self.controls.status_label.setText("Cancelling …")

    def _start_task(self, work: Work, message: str) -> None:
        self._task = PluginTask(work)  # running from here: _set_running's refresh sees it
        self._set_running(True)
        self.controls.started(message)
        self._task.start(
            progress=self.controls.show_progress,
            finished=self._on_finished,
            failed=self._on_failed,
            cancelled=self._on_cancelled,
        )

    def _task_ended(self, message: str | None = None, done: bool = False) -> None:
        """The task is over: unlock the controls, then show ``message`` (None: leave the bar and line)."""
        self._task = None
        self._set_running(False)
        if message is not None:
            self.controls.ended(message, done)

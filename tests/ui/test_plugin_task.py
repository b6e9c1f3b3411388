"""PluginTask.start / cancel and TaskControls, the pieces the plugin boxes share: outcomes and
progress arrive on the UI thread (the work runs in the thread pool), a cancel reaches the work,
and the controls show progress, start and end."""

from __future__ import annotations

import threading

from PySide6 import QtCore, QtWidgets

from app.plugins.errors import PluginError, SynthesisCancelled
from app.ui.plugin_task import PluginTask, TaskControls


class RecordingBar(QtWidgets.QProgressBar):
    """A progress bar that notes on which thread each value is set."""

    def __init__(self):
        super().__init__()
        self.on_ui_thread: list[bool] = []

    def setValue(self, value: int) -> None:  # noqa: N802 - Qt's name
        self.on_ui_thread.append(threading.current_thread() is threading.main_thread())
        super().setValue(value)


def recording_controls(cancel, parent) -> TaskControls:
    controls = TaskControls(cancel, parent=parent)
    controls.progress_bar = RecordingBar()
    return controls


class Owner(QtWidgets.QWidget):
    """A box as the real ones are: its handlers are bound methods, its controls a child that
    shows the progress directly."""

    def __init__(self):
        super().__init__()
        self.controls = recording_controls(self.cancel, self)
        self.outcomes: list[tuple[str, object, bool]] = []
        self.task: PluginTask | None = None

    def cancel(self) -> None:
        self.task.cancel()

    def _record(self, kind: str, value) -> None:
        self.outcomes.append((kind, value, threading.current_thread() is threading.main_thread()))

    def finished(self, value) -> None:
        self._record("finished", value)

    def failed(self, message: str) -> None:
        self._record("failed", message)

    def cancelled(self) -> None:
        self._record("cancelled", None)

    def start(self, work) -> PluginTask:
        self.task = PluginTask(work).start(
            progress=self.controls.show_progress,
            finished=self.finished,
            failed=self.failed,
            cancelled=self.cancelled,
        )
        return self.task


def test_progress_and_result_arrive_on_the_ui_thread(qtbot):
    owner = Owner()
    worker_threads = []

    def work(progress, cancel):
        worker_threads.append(threading.current_thread() is threading.main_thread())
        progress(0.25, "a quarter")
        return 42

    owner.controls.started("Working …")
    owner.controls.progress_bar.on_ui_thread.clear()
    assert owner.controls.progress_bar.value() == 0 and owner.controls.status_label.text() == "Working …"
    owner.start(work)
    qtbot.waitUntil(lambda: bool(owner.outcomes), timeout=10000)
    assert worker_threads == [False]  # the work ran off the UI thread
    assert owner.outcomes == [("finished", 42, True)] and owner.controls.progress_bar.on_ui_thread == [True]
    assert owner.controls.progress_bar.value() == 25 and owner.controls.status_label.text() == "a quarter"
    owner.controls.ended("Done", done=True)
    assert owner.controls.progress_bar.value() == 100 and owner.controls.status_label.text() == "Done"


def test_cancel_reaches_the_work_and_failures_are_one_message(qtbot):
    owner = Owner()
    started = threading.Event()

    def slow(progress, cancel):
        started.set()
        while not cancel():
            threading.Event().wait(0.01)
        raise SynthesisCancelled("stopped")

    owner.start(slow)
    assert started.wait(10)
    qtbot.mouseClick(owner.controls.cancel_button, QtCore.Qt.MouseButton.LeftButton)  # disabled: nothing
    assert not owner.task.cancel_event.is_set()
    owner.controls.cancel_button.setEnabled(True)
    qtbot.mouseClick(owner.controls.cancel_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(owner.outcomes), timeout=10000)
    assert owner.outcomes == [("cancelled", None, True)]

    for error, expected in (
        (PluginError("the plugin says no"), "the plugin says no"),
        (KeyError("x"), "KeyError: 'x'"),
    ):
        owner.outcomes.clear()

        def fails(progress, cancel, error=error):
            raise error

        owner.start(fails)
        qtbot.waitUntil(lambda: bool(owner.outcomes), timeout=10000)
        assert owner.outcomes == [("failed", expected, True)]


class QThreadWorker(QtCore.QObject):
    """The GAN plugins dock's pattern: a QObject moved to a QThread, emitting from there."""

    progress = QtCore.Signal(float, str)
    done = QtCore.Signal()

    @QtCore.Slot()
    def run(self) -> None:
        self.progress.emit(0.5, "half way")
        self.done.emit()


def test_progress_from_a_qthread_worker_is_shown_on_the_ui_thread(qtbot):
    parent = QtWidgets.QWidget()
    controls = recording_controls(lambda: None, parent)
    worker, thread = QThreadWorker(), QtCore.QThread()
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.progress.connect(controls.show_progress)
    with qtbot.waitSignal(worker.done, timeout=10000):
        thread.start()
    qtbot.waitUntil(lambda: controls.progress_bar.value() == 50, timeout=10000)
    thread.quit()
    thread.wait()
    assert controls.progress_bar.on_ui_thread == [True] and controls.status_label.text() == "half way"

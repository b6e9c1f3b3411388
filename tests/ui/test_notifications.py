"""One error channel: uncaught exceptions (UI thread and worker threads) reach the notification area."""

import sys
import threading

import pytest
from PySide6 import QtWidgets

from app.ui.notifications import NotificationArea, install_exception_hooks


@pytest.fixture
def hooked_area(qtbot, monkeypatch):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    window = QtWidgets.QMainWindow()
    qtbot.addWidget(window)
    area = NotificationArea()
    window.statusBar().addPermanentWidget(area)
    window.show()
    install_exception_hooks(area)
    yield area  # the window stays alive (referenced here) while the test runs


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_a_slot_reaches_the_notification_area(qtbot, hooked_area, capsys):
    button = QtWidgets.QPushButton()

    def broken() -> None:
        raise RuntimeError("the slot broke")

    button.clicked.connect(broken)
    button.click()  # PySide hands a slot's exception to sys.excepthook
    (notice,) = hooked_area.notices
    assert notice.message == "RuntimeError: the slot broke" and "Traceback" in notice.details
    assert hooked_area.isVisibleTo(hooked_area.window()) and "the slot broke" in hooked_area.text()
    assert "RuntimeError" in capsys.readouterr().err  # still on stderr for the log


def test_an_exception_in_a_worker_thread_reaches_it_on_the_ui_thread(qtbot, hooked_area):
    def work() -> None:
        raise ValueError("worker failed")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(hooked_area.notices) == 1, timeout=3000)
    assert hooked_area.notices[0].message == "ValueError: worker failed"
    dialog = hooked_area.open_dialog()
    assert "worker failed" in dialog.detailedText()


"""Files opened from the desktop (macOS Finder) arrive as QFileOpenEvents, not on argv."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from app.io.nifti import save_nifti
from app.ui.file_open import FileOpenHandler, install_file_open_handler
from tests.ui.child_process import QUIT_ONCE_A_VOLUME_IS_SHOWN, run_python_child


def test_file_open_events_are_queued_until_a_receiver_then_handed_over(qtbot):
    app = QtWidgets.QApplication.instance()
    parent = QtCore.QObject()
    handler = FileOpenHandler(parent)
    app.installEventFilter(handler)
    try:
        QtWidgets.QApplication.sendEvent(app, QtGui.QFileOpenEvent("/data/first.nii.gz"))
        QtWidgets.QApplication.sendEvent(app, QtGui.QFileOpenEvent(QtCore.QUrl.fromLocalFile("/data/b.dcm")))
        assert handler.pending == ["/data/first.nii.gz", "/data/b.dcm"]
        opened: list[str] = []
        handler.open_with(opened.append)
        assert opened == ["/data/first.nii.gz", "/data/b.dcm"] and handler.pending == []
        QtWidgets.QApplication.sendEvent(app, QtGui.QFileOpenEvent("/data/later.nii"))
        QtWidgets.QApplication.sendEvent(app, QtCore.QEvent(QtCore.QEvent.Type.User))  # not a file
        assert opened[-1] == "/data/later.nii" and len(opened) == 3
    finally:
        app.removeEventFilter(handler)


def test_the_application_installs_one_handler():
    app = QtWidgets.QApplication.instance()
    assert install_file_open_handler(app) is install_file_open_handler(app)


FINDER_OPEN_SCRIPT = r"""
import sys
from PySide6 import QtGui, QtWidgets
from app.cli.file_services import file_services
from app.ui.application import create_application, run_gui

app = create_application([])
# What macOS sends when a file is double-clicked in the Finder, here before the window exists.
QtWidgets.QApplication.sendEvent(app, QtGui.QFileOpenEvent(sys.argv[1]))
def report(window):
    return f"opened {window.session.current.name} icon {not app.windowIcon().isNull()}"
""" + QUIT_ONCE_A_VOLUME_IS_SHOWN + """
sys.exit(run_gui([], file_services()))
"""


def test_a_file_opened_from_the_finder_is_shown(phantom, tmp_path):
    path = save_nifti(phantom, tmp_path / "phantom.nii.gz")
    result = run_python_child(FINDER_OPEN_SCRIPT, str(path), QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path))
    assert "opened phantom.nii.gz icon True" in result.stdout

"""Run a Python snippet in a child process of the test run (its own QApplication and event loop).

A GUI test that calls ``app.exec()`` or renders through VTK's own window does it in a child, so
later tests' event loops are undisturbed; the child sees the repository on PYTHONPATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_python_child(script: str, *arguments: str, **environment: str) -> subprocess.CompletedProcess:
    """Run ``script`` with ``arguments``; fail the test with its stderr unless it exits 0."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **environment}
    result = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


# Appended to a child script that defines ``report(window) -> str``, opens a main window and then
# runs the event loop: prints the report once a volume is shown, then quits (exit 3 after 30 s).
QUIT_ONCE_A_VOLUME_IS_SHOWN = r"""
from PySide6 import QtCore as _QtCore, QtWidgets as _QtWidgets
from app.ui.main_window import MainWindow as _MainWindow


def _poll():
    for window in _QtWidgets.QApplication.topLevelWidgets():
        if isinstance(window, _MainWindow) and window.session.current is not None:
            print(report(window))
            window.close()
            _QtWidgets.QApplication.instance().exit(0)


_timer = _QtCore.QTimer()
_timer.timeout.connect(_poll)
_timer.start(50)
_QtCore.QTimer.singleShot(30000, lambda: _QtWidgets.QApplication.instance().exit(3))  # never hang the suite
"""


# Appended to a child script that defines ``app`` (the QApplication) and ``poll()``: calls it
# every 5 ms until it exits the event loop (exit 3 after 60 s: never hang the suite).
POLL_EVERY_5_MS = r"""
timer = QtCore.QTimer()
timer.timeout.connect(poll)
timer.start(5)
QtCore.QTimer.singleShot(60000, lambda: app.exit(3))
sys.exit(app.exec())
"""

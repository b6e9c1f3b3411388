"""The status bar names the device GAN plugins will use, without importing torch at start-up."""

import os
import subprocess
import sys
from pathlib import Path

from app.ui.device_status import PENDING_TEXT

ROOT = Path(__file__).resolve().parents[2]

START_WINDOW = """
import sys
from PySide6 import QtCore
from app.ui.application import create_application, install_tool_docks
from app.ui.main_window import MainWindow
from app.ui.settings import ViewerSettings

app = create_application([])
settings = ViewerSettings(QtCore.QSettings(sys.argv[1], QtCore.QSettings.Format.IniFormat))
window = MainWindow(settings)
errors = install_tool_docks(window)
window.show()
timer = QtCore.QElapsedTimer()
timer.start()
while timer.elapsed() < 500:  # the window shown, painted and idle for a moment
    app.processEvents()
print("torch" in sys.modules, "app.plugins.device" in sys.modules, window.device_label.text(), errors)
"""


def run_window_script(script: str, *arguments: str) -> subprocess.CompletedProcess:
    """``script`` in a fresh interpreter, offscreen, from the repository; it must exit 0."""
    environment = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_starting_the_main_window_does_not_import_torch(tmp_path):
    result = run_window_script(START_WINDOW, str(tmp_path / "settings.ini"))
    last_line = result.stdout.strip().splitlines()[-1]
    assert last_line == f"False False {PENDING_TEXT} []", last_line


def test_the_device_line_arrives_after_start_up(qtbot, viewer_settings, monkeypatch):
    from app.ui import device_status
    from app.ui.main_window import MainWindow

    monkeypatch.setattr(device_status, "DEVICE_CHECK_DELAY_MS", 0)
    window = MainWindow(
        viewer_settings, device_describer=lambda: "CUDA: NVIDIA H100 (79.1 GiB), torch 2.13.0"
    )
    qtbot.addWidget(window)
    assert window.device_label.text() == PENDING_TEXT  # nothing asked before the window shows
    window.show()
    qtbot.waitUntil(lambda: window.device_label.description != "", timeout=5000)
    assert window.device_label.text() == "GAN device: CUDA: NVIDIA H100 (79.1 GiB)"
    assert "torch 2.13.0" in window.device_label.toolTip()
    assert window.device_label.isVisible()


def test_a_failing_device_check_says_unknown(qtbot, viewer_settings, monkeypatch):
    from app.ui import device_status
    from app.ui.main_window import MainWindow

    monkeypatch.setattr(device_status, "DEVICE_CHECK_DELAY_MS", 0)

    def broken() -> str:
        raise RuntimeError("driver mismatch")

    window = MainWindow(viewer_settings, device_describer=broken)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.device_label.description != "", timeout=5000)
    assert window.device_label.text().startswith("GAN device: unknown (RuntimeError: driver mismatch")


def test_an_answer_after_the_application_went_away_is_dropped_quietly():
    """Quitting while torch still imports deletes the signals' QObject; the pool thread then
    finishes without a 'Signal source has been deleted' traceback."""
    import shiboken6

    from app.ui.device_status import DeviceCheckTask

    task = DeviceCheckTask(lambda: "CPU (2 threads), torch 2.13.0")
    shiboken6.delete(task.signals)
    task.run()  # raised RuntimeError before


def test_help_about_opens_at_once_and_gets_the_device_line_when_it_arrives(qtbot, viewer_settings):
    """Help > About froze the UI for seconds (torch imported on the UI thread to describe the device)."""
    import threading
    import time

    from app.ui.main_window import MainWindow

    release = threading.Event()

    def slow_device() -> str:
        release.wait(10)  # torch importing, as long as the test wants
        return "CPU (2 threads), torch 2.13.0"

    window = MainWindow(viewer_settings, device_describer=slow_device)
    qtbot.addWidget(window)
    window.show()
    started = time.perf_counter()
    dialog = window._show_about()
    opened_in_s = time.perf_counter() - started
    assert opened_in_s < 0.5, opened_in_s  # the licence table included; never the device check
    assert dialog.isVisible() and "checking" in dialog.details_label.text()
    release.set()
    qtbot.waitUntil(lambda: "CPU (2 threads)" in dialog.details_label.text(), timeout=5000)


QUIT_WHILE_CHECKING = """
import sys
from PySide6 import QtCore
from app.ui import device_status
from app.ui.application import create_application
from app.ui.main_window import MainWindow
from app.ui.settings import ViewerSettings

device_status.DEVICE_CHECK_DELAY_MS = 0
app = create_application([])
window = MainWindow(ViewerSettings(QtCore.QSettings(sys.argv[1], QtCore.QSettings.Format.IniFormat)))
window.show()
QtCore.QTimer.singleShot(int(sys.argv[2]), app.quit)  # while torch is still importing
app.exec()
print("quit", window.device_label.text())
"""


def test_quitting_while_the_device_check_runs_prints_no_traceback(tmp_path):
    for quit_after_ms in (200, 1500):
        result = run_window_script(QUIT_WHILE_CHECKING, str(tmp_path / "settings.ini"), str(quit_after_ms))
        assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr
        assert result.stdout.startswith("quit")

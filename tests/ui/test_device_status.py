"""The status bar names the device GAN plugins will use; the viewer's own process never imports
torch for it (a child process answers, killed and reaped when the viewer quits)."""

import json
import subprocess
import sys
import time

import pytest

from app.ui import device_status
from app.ui.device_status import PENDING_TEXT, description_from_probe_output, device_probe_command
from tests.ui.child_process import ROOT, run_python_child

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


def stub_probe(report: dict | None = None, *, before: str = "", exit_code: int = 0) -> list[str]:
    """A child that runs ``before`` (Python), prints ``report`` as JSON and exits ``exit_code``."""
    script = f"import json, sys, time\n{before}\n"
    if report is not None:
        script += f"print(json.dumps({report!r}))\n"
    return [sys.executable, "-c", script + f"sys.exit({exit_code})"]


@pytest.fixture
def no_delay(monkeypatch):
    monkeypatch.setattr(device_status, "DEVICE_CHECK_DELAY_MS", 0)


def shown_window(qtbot, viewer_settings, probe):
    from app.ui.main_window import MainWindow

    window = MainWindow(viewer_settings, device_probe=probe)
    qtbot.addWidget(window)
    window.show()
    return window


def test_starting_the_main_window_does_not_import_torch(tmp_path):
    result = run_python_child(START_WINDOW, str(tmp_path / "settings.ini"), QT_QPA_PLATFORM="offscreen")
    last_line = result.stdout.strip().splitlines()[-1]
    assert last_line == f"False False {PENDING_TEXT} []", last_line


FILLED_BY_THE_REAL_CHILD = """
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
label = window.device_label
timer = QtCore.QElapsedTimer()
timer.start()
while not label.description and timer.elapsed() < 90000:
    app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
print(repr(label.description))
print(repr(label.text()))
print("torch" in sys.modules, "app.plugins.device" in sys.modules)
"""


def test_the_real_device_line_arrives_and_torch_stays_out_of_the_viewer(tmp_path):
    """The whole path: the default child (python -m app.plugins.device) imports torch and answers;
    once the label is filled, the viewer's process still has neither torch nor the device module."""
    result = run_python_child(
        FILLED_BY_THE_REAL_CHILD, str(tmp_path / "settings.ini"), QT_QPA_PLATFORM="offscreen"
    )
    description, text, modules = result.stdout.strip().splitlines()[-3:]
    from app.plugins.device import describe_device  # the same answer, asked in this process

    assert eval(description) == describe_device()
    assert eval(text) == f"GAN device: {describe_device().split(', torch')[0]}"
    assert modules == "False False"


def test_the_device_line_arrives_after_start_up(qtbot, viewer_settings, no_delay):
    from app.ui.main_window import MainWindow

    window = MainWindow(
        viewer_settings,
        device_probe=stub_probe({"device": "CUDA: NVIDIA H100 (79.1 GiB)", "torch": "2.13.0"}),
    )
    qtbot.addWidget(window)
    assert window.device_label.text() == PENDING_TEXT  # nothing asked before the window shows
    window.show()
    qtbot.waitUntil(lambda: window.device_label.description != "", timeout=10000)
    assert window.device_label.text() == "GAN device: CUDA: NVIDIA H100 (79.1 GiB)"
    assert "torch 2.13.0" in window.device_label.toolTip()
    assert window.device_label.isVisible()
    assert window.device_label.process is None  # finished and released


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        (
            stub_probe(before="sys.stderr.write('RuntimeError: driver mismatch\\n')", exit_code=1),
            "GAN device: unknown (the device check failed, exit status 1: RuntimeError: driver mismatch)",
        ),
        (
            stub_probe(before="print('not json')"),
            "GAN device: unknown (the device check's answer was unreadable",
        ),
        (
            stub_probe(),
            "GAN device: unknown (the device check's answer was unreadable: the device check printed nothing",
        ),
        (["/nonexistent/synthview-probe"], "GAN device: unknown (the device check could not start"),
    ],
    ids=["child fails", "not JSON", "silent", "cannot start"],
)
def test_a_failing_device_check_says_unknown(qtbot, viewer_settings, no_delay, probe, expected):
    window = shown_window(qtbot, viewer_settings, probe)
    qtbot.waitUntil(lambda: window.device_label.description != "", timeout=10000)
    assert window.device_label.text().startswith(expected), window.device_label.text()


def test_a_check_that_never_answers_is_killed_at_the_timeout(qtbot, viewer_settings, no_delay):
    window = shown_window(qtbot, viewer_settings, stub_probe(before="time.sleep(60)"))
    window.device_label.timeout_s = 1.0
    qtbot.waitUntil(lambda: window.device_label.process is not None, timeout=5000)
    qtbot.waitUntil(lambda: window.device_label.process.processId() > 0, timeout=5000)
    pid = window.device_label.process.processId()
    qtbot.waitUntil(lambda: window.device_label.description != "", timeout=10000)
    assert window.device_label.text() == "GAN device: unknown (no answer from the device check within 1 s)"
    assert not _process_exists(pid)  # killed and reaped, not left running or as a zombie


def test_help_about_opens_at_once_and_gets_the_device_line_when_it_arrives(qtbot, viewer_settings, tmp_path):
    """Help > About froze the UI for seconds (torch imported on the UI thread to describe the device)."""
    release = tmp_path / "release"
    waits_for_the_file = f"while not __import__('os').path.exists({str(release)!r}): time.sleep(0.05)"
    window = shown_window(
        qtbot,
        viewer_settings,
        stub_probe({"device": "CPU (2 threads)", "torch": "2.13.0"}, before=waits_for_the_file),
    )
    started = time.perf_counter()
    dialog = window._show_about()
    opened_in_s = time.perf_counter() - started
    assert opened_in_s < 0.5, opened_in_s  # the licence table included; never the device check
    assert dialog.isVisible() and "checking" in dialog.details_label.text()
    release.write_text("go")
    qtbot.waitUntil(lambda: "CPU (2 threads)" in dialog.details_label.text(), timeout=10000)


QUIT_WHILE_CHECKING = """
import os, sys
from PySide6 import QtCore
from app.ui import device_status
from app.ui.application import create_application
from app.ui.main_window import MainWindow
from app.ui.settings import ViewerSettings

device_status.DEVICE_CHECK_DELAY_MS = 0
app = create_application([])
window = MainWindow(ViewerSettings(QtCore.QSettings(sys.argv[1], QtCore.QSettings.Format.IniFormat)))
window.show()
children = []


def note_the_child():
    process = window.device_label.process
    if process is not None and process.processId() > 0 and not children:
        children.append(process.processId())


poll = QtCore.QTimer()
poll.timeout.connect(note_the_child)
poll.start(5)
how = sys.argv[3]
QtCore.QTimer.singleShot(int(sys.argv[2]), app.quit if how == "quit" else window.close)  # torch still importing
if how == "close":
    window.destroyed.connect(app.quit)
    window.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
app.exec()
gone = []
for pid in children:
    try:
        os.kill(pid, 0)  # a zombie still answers; a reaped child does not
    except ProcessLookupError:
        gone.append(pid)
print("quit", len(children), children == gone)
"""


@pytest.mark.parametrize(("quit_after_ms", "how"), [(300, "quit"), (1500, "quit"), (1500, "close")])
def test_quitting_while_the_device_check_runs_is_clean(tmp_path, quit_after_ms, how):
    """The real child still importing torch: no traceback, no Qt warning, the child killed and reaped."""
    result = run_python_child(
        QUIT_WHILE_CHECKING,
        str(tmp_path / "settings.ini"),
        str(quit_after_ms),
        how,
        QT_QPA_PLATFORM="offscreen",
    )
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr
    assert "QProcess" not in result.stderr, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "quit 1 True", result.stdout


def test_the_probe_command_of_a_checkout_and_of_the_frozen_application(monkeypatch, tmp_path):
    assert device_probe_command() == [sys.executable, "-m", "app.plugins.device"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    gui = tmp_path / "synthview.exe"
    gui.write_bytes(b"")
    monkeypatch.setattr(sys, "executable", str(gui))
    assert device_probe_command() == [str(gui), "plugins", "device", "--json"]  # Linux, macOS
    console = tmp_path / "synthview-cli.exe"  # Windows: the windowed executable cannot print
    console.write_bytes(b"")
    assert device_probe_command() == [str(console), "plugins", "device", "--json"]


def test_the_cli_prints_what_the_viewer_reads():
    """The frozen application's child is its own ``plugins device --json``."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "plugins", "device", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    from app.plugins.device import describe_device

    assert description_from_probe_output(result.stdout) == describe_device()
    assert set(json.loads(result.stdout)) == {"device", "torch"}


def test_an_unavailable_device_is_said_as_such():
    line = description_from_probe_output('{"device": "unavailable: CUDA was requested", "torch": "2.13.0"}\n')
    assert line == "unavailable: CUDA was requested"


def _process_exists(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

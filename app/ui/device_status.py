"""The status bar's note of the compute device GAN plugins will use (CUDA GPU, MPS or CPU).

Finding out imports torch: seconds of CPU and hundreds of MB, with the GIL held through most of
the import, so even a background thread of the viewer froze its UI for up to 0.8 s. The viewer
therefore never imports torch for it: a little after the window shows, a child process
(``python -m app.plugins.device``; in the frozen application its own executable's
``plugins device --json``) prints the answer as JSON, and a QProcess reads it on the UI thread's
event loop, no thread involved. The child is killed after ``DEVICE_CHECK_TIMEOUT_S`` and when
the window closes or the application quits (killed and reaped there: no zombie, no traceback,
no "QProcess: Destroyed while process is still running").
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6 import QtCore, QtWidgets

import app

DEVICE_CHECK_DELAY_MS = 1500  # after the window shows: start-up and the first paint come first
DEVICE_CHECK_TIMEOUT_S = 60.0  # importing torch on a loaded machine takes seconds, never a minute
PENDING_TEXT = "GAN device: checking…"
# The folder holding the ``app`` package, on the child's PYTHONPATH: it finds the same code
# however the viewer was started (main.py from anywhere, an installed entry point).
APP_PARENT = Path(app.__file__).resolve().parents[1]


def device_probe_command() -> list[str]:
    """The child process that prints the device as JSON (``app.plugins.device.device_report``).

    Frozen, the executable is SynthView itself, not a Python: its ``plugins device --json``; on
    Windows that of the console ``synthview-cli.exe`` beside it (the windowed one has no standard
    output to print to; Qt starts a console child of a windowless parent without a window)."""
    if getattr(sys, "frozen", False):
        executable = Path(sys.executable)
        console = executable.with_name(f"{executable.stem}-cli{executable.suffix}")
        program = console if console.is_file() else executable
        return [str(program), "plugins", "device", "--json"]
    return [sys.executable, "-m", "app.plugins.device"]


def description_from_probe_output(stdout: str) -> str:
    """'CPU (8 threads), torch 2.13.0' from the child's JSON line; ValueError if there is none."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise ValueError("the device check printed nothing")
    report = json.loads(lines[-1])
    device, torch_version = str(report["device"]), str(report["torch"])
    return device if device.startswith("unavailable:") else f"{device}, torch {torch_version}"


class DeviceStatusLabel(QtWidgets.QLabel):
    """'GAN device: CUDA: NVIDIA H100 (79.1 GiB)', filled once ``start`` ran and the child answered.

    ``probe_command`` (program and arguments) replaces the real child in tests."""

    described = QtCore.Signal(str)  # the whole line, once known (Help > About waits for it)

    def __init__(self, probe_command: Sequence[str] | None = None, parent=None) -> None:
        super().__init__(PENDING_TEXT, parent)
        self.probe_command = list(probe_command) if probe_command else device_probe_command()
        self.timeout_s = DEVICE_CHECK_TIMEOUT_S
        self.busy = lambda: False  # while True, the check waits (a load runs: the child would slow it)
        self.description = ""
        self.process: QtCore.QProcess | None = None
        self._scheduled = False
        self._deadline = QtCore.QTimer(self)
        self._deadline.setSingleShot(True)
        self._deadline.timeout.connect(self._on_timeout)
        QtCore.QCoreApplication.instance().aboutToQuit.connect(self.stop)
        self.setToolTip("The compute device GAN plugins will run on (Help > About for details)")

    def start(self, delay_ms: int | None = None) -> None:
        """Ask once, ``delay_ms`` (default ``DEVICE_CHECK_DELAY_MS``) from now; later calls do nothing."""
        if self._scheduled or self.description:
            return
        self._scheduled = True
        QtCore.QTimer.singleShot(
            DEVICE_CHECK_DELAY_MS if delay_ms is None else delay_ms, self, self._run_check
        )

    def stop(self) -> None:
        """Kill a running check and reap it (the window closes or the application quits); the
        next ``start`` asks again."""
        self._deadline.stop()
        process, self.process = self.process, None
        self._scheduled = False
        if process is None:
            return
        process.finished.disconnect(self._on_finished)
        process.errorOccurred.disconnect(self._on_error)
        if process.state() != QtCore.QProcess.ProcessState.NotRunning:
            process.kill()
            process.waitForFinished(5000)
        process.deleteLater()

    def _run_check(self) -> None:
        if not self._scheduled:
            return  # stopped meanwhile
        if not self.isVisible():  # window closed (or label hidden) meanwhile: the next show asks
            self._scheduled = False
            return
        if self.busy():
            QtCore.QTimer.singleShot(250, self, self._run_check)
            return
        process = QtCore.QProcess(self)
        environment = QtCore.QProcessEnvironment.systemEnvironment()
        python_path = environment.value("PYTHONPATH", "")
        environment.insert("PYTHONPATH", os.pathsep.join(p for p in (str(APP_PARENT), python_path) if p))
        process.setProcessEnvironment(environment)
        process.finished.connect(self._on_finished)
        process.errorOccurred.connect(self._on_error)
        self.process = process
        self._deadline.start(int(self.timeout_s * 1000))
        process.start(self.probe_command[0], self.probe_command[1:])

    def _on_finished(self, exit_code: int, exit_status: QtCore.QProcess.ExitStatus) -> None:
        process = self.process
        if process is None:
            return
        stdout = bytes(process.readAllStandardOutput()).decode("utf-8", "replace")
        stderr = bytes(process.readAllStandardError()).decode("utf-8", "replace")
        self.stop()
        if exit_status == QtCore.QProcess.ExitStatus.NormalExit and exit_code == 0:
            try:
                self._answer(description_from_probe_output(stdout))
                return
            except (ValueError, KeyError, TypeError) as error:
                self._answer(f"unknown (the device check's answer was unreadable: {error})")
                return
        last_line = next((line for line in reversed(stderr.splitlines()) if line.strip()), "no message")
        self._answer(f"unknown (the device check failed, exit status {exit_code}: {last_line.strip()})")

    def _on_error(self, error: QtCore.QProcess.ProcessError) -> None:
        if error == QtCore.QProcess.ProcessError.FailedToStart and self.process is not None:
            reason = self.process.errorString()
            self.stop()
            self._answer(f"unknown (the device check could not start: {reason})")

    def _on_timeout(self) -> None:
        if self.process is not None:
            self.stop()
            self._answer(f"unknown (no answer from the device check within {self.timeout_s:g} s)")

    def _answer(self, text: str) -> None:
        self.description = text
        self.setText(f"GAN device: {text.split(', torch')[0]}")
        self.setToolTip(f"GAN plugins will run on: {text}")
        self.described.emit(text)

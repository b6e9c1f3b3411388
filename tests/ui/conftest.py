"""Fixtures for the viewer's widget tests: phantoms, isolated settings, mouse helpers."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402

from app.core.orientation_phantom import orientation_phantom  # noqa: E402
from app.core.provenance import Provenance  # noqa: E402

# Tests never read or write the user's own viewer settings.
_SETTINGS_DIR = tempfile.mkdtemp(prefix="synthview-test-settings-")
for _format in (QtCore.QSettings.Format.NativeFormat, QtCore.QSettings.Format.IniFormat):
    QtCore.QSettings.setPath(_format, QtCore.QSettings.Scope.UserScope, _SETTINGS_DIR)


@pytest.fixture(autouse=True)
def quick_device_check(monkeypatch):
    """Windows shown longer than the device check's delay ask a stub child, not one importing
    torch (seconds of CPU per window); tests/ui/test_device_status.py runs the real one."""
    import sys

    from app.ui import device_status

    stub = 'print(\'{"device": "CPU (test stub)", "torch": "0"}\')'
    monkeypatch.setattr(device_status, "device_probe_command", lambda: [sys.executable, "-c", stub])


@pytest.fixture
def phantom():
    return orientation_phantom()


@pytest.fixture
def synthetic_phantom():
    volume = orientation_phantom()
    noise = np.random.default_rng(1).normal(0, 20, volume.voxels.shape).astype(np.float32)
    return volume.with_voxels(
        volume.voxels + noise, provenance=Provenance("toy-gan", "0.1"), name="toy synth"
    )


@pytest.fixture
def viewer_settings(tmp_path):
    from app.ui.settings import ViewerSettings

    return ViewerSettings(QtCore.QSettings(str(tmp_path / "settings.ini"), QtCore.QSettings.Format.IniFormat))


@pytest.fixture
def main_window(qtbot, viewer_settings):
    from app.cli.file_services import file_services
    from app.ui.main_window import MainWindow

    window = MainWindow(viewer_settings, file_services())
    window.resize(1200, 800)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def widget_pos_of_lps(panel, lps_mm) -> QtCore.QPoint:
    """Where on ``panel``'s viewport a world point is drawn."""
    scene_point = panel.view_box.mapViewToScene(panel.lps_to_scene(lps_mm))
    return panel.mapFromScene(scene_point)


def drag(widget: QtWidgets.QWidget, button, start: QtCore.QPoint, end: QtCore.QPoint, steps: int = 5) -> None:
    """Press, move (with the button held) and release, as a hand on a mouse does."""

    def send(kind, pos, buttons):
        event = QtGui.QMouseEvent(
            kind,
            QtCore.QPointF(pos),
            QtCore.QPointF(widget.mapToGlobal(pos)),
            button,
            buttons,
            QtCore.Qt.KeyboardModifier.NoModifier,
        )
        QtWidgets.QApplication.sendEvent(widget, event)

    send(QtCore.QEvent.Type.MouseButtonPress, start, button)
    for step in range(1, steps + 1):
        point = start + (end - start) * (step / steps)
        send(QtCore.QEvent.Type.MouseMove, point, button)
    send(QtCore.QEvent.Type.MouseButtonRelease, end, QtCore.Qt.MouseButton.NoButton)


def wheel(widget: QtWidgets.QWidget, pos: QtCore.QPoint, notches: int, modifiers=None) -> None:
    modifiers = modifiers or QtCore.Qt.KeyboardModifier.NoModifier
    event = QtGui.QWheelEvent(
        QtCore.QPointF(pos),
        QtCore.QPointF(widget.mapToGlobal(pos)),
        QtCore.QPoint(0, 0),
        QtCore.QPoint(0, 120 * notches),
        QtCore.Qt.MouseButton.NoButton,
        modifiers,
        QtCore.Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QtWidgets.QApplication.sendEvent(widget, event)


def pixel_at(widget: QtWidgets.QWidget, pos: QtCore.QPoint) -> tuple[int, int, int]:
    color = widget.grab().toImage().pixelColor(pos)
    return color.red(), color.green(), color.blue()


@pytest.fixture
def started_window(qtbot, viewer_settings, monkeypatch):
    """A window as ``start_interactive_window`` makes it, in a process that has not imported
    the panels yet (this test process has: the window is told their module is not there)."""
    from app.cli.file_services import file_services
    from app.ui import main_window as module

    monkeypatch.setattr(module, "PANEL_MODULE", "app.ui.panels_not_imported_yet")
    window = module.MainWindow(viewer_settings, file_services(), first_image=True)
    window.resize(1200, 700)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window

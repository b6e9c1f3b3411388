"""The main window as a user drives it: open (threaded), layouts by key, help, errors, settings."""

from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from app.core.planes import Plane
from app.io.nifti import save_nifti
from app.ui.compare_view import CompareView
from app.ui.shortcuts import SHORTCUTS

ROOT = Path(__file__).resolve().parents[2]
DEMO_DICOM = ROOT / "resources" / "demo" / "generated" / "demo_mr_t1"


@pytest.fixture
def phantom_file(tmp_path, phantom):
    return save_nifti(phantom, tmp_path / "phantom.nii.gz")


def open_and_wait(qtbot, window, path):
    with qtbot.waitSignal(window.view_changed, timeout=20000):
        window.open_path(path)
    assert not window.is_loading()


def test_open_file_in_background_then_scroll_and_read(qtbot, main_window, phantom_file, phantom):
    open_and_wait(qtbot, main_window, phantom_file)
    assert len(main_window.panels) == 3
    loaded = main_window.current_volume
    assert np.allclose(loaded.geometry.origin_lps_mm, phantom.geometry.origin_lps_mm)
    axial = main_window.panels[0]
    before = main_window.state.cursor_lps_mm
    qtbot.mouseClick(axial.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=axial.viewport().rect().center())
    qtbot.keyClick(axial, QtCore.Qt.Key.Key_Up)
    assert main_window.state.cursor_lps_mm[2] == pytest.approx(before[2] + 2.0)
    # Hovering writes the readout in the status bar.
    qtbot.mouseMove(axial.viewport(), axial.viewport().rect().center())
    qtbot.waitUntil(lambda: "LPS (" in main_window.readout_label.text(), timeout=2000)
    assert str(phantom_file) in main_window.settings.recent_files()


def test_layout_keys_and_image_keys(qtbot, main_window, phantom, synthetic_phantom):
    main_window.open_volume(phantom)
    for key, count in (("1", 1), ("2", 1), ("3", 1), ("4", 3)):
        qtbot.keyClick(main_window, key)
        assert len(main_window.panels) == count
    qtbot.keyClick(main_window, "2")
    assert main_window.panels[0].plane is Plane.CORONAL
    assert main_window.settings.layout() == "coronal"
    qtbot.keyClick(main_window, "i")
    assert main_window.state.display.invert
    qtbot.keyClick(main_window, "c")
    assert main_window.state.display.colormap == "hot"
    qtbot.keyClick(main_window, "t")
    assert main_window.state.display.threshold == 130.0
    # Compare with a second open volume (key 6), flicker with F.
    main_window.browser.add_volume(synthetic_phantom)
    qtbot.keyClick(main_window, "6")
    assert isinstance(main_window.view, CompareView) and len(main_window.panels) == 9
    qtbot.keyClick(main_window, "f")
    assert main_window.view.original_panels()[0].volume.is_synthetic


def test_2x2_layout_has_a_3d_cell(qtbot, main_window, phantom):
    main_window.open_volume(phantom)
    main_window.set_layout("2x2")
    assert len(main_window.panels) == 3
    assert main_window.view.layout().itemAtPosition(1, 1) is not None


def test_help_dialog_lists_every_shortcut(qtbot, main_window):
    qtbot.keyClick(main_window, QtCore.Qt.Key.Key_F1)
    dialog = main_window.findChild(QtWidgets.QDialog)
    assert dialog is not None and dialog.isVisible()
    assert dialog.table.rowCount() == len(SHORTCUTS)
    dialog.accept()
    # Every listed key shortcut is really bound (the table and the bindings cannot drift apart).
    bound = {action.shortcut().toString() for action in main_window.actions()}
    listed = [key for key, _ in SHORTCUTS if " " not in key and "/" not in key and "wheel" not in key]
    assert listed and all(key in bound for key in listed), set(listed) - bound


def test_bad_input_gives_a_message_not_a_crash(qtbot, main_window, tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a nifti file")
    for path in (bad, tmp_path / "missing.nii"):
        with qtbot.waitSignal(
            main_window.statusBar().messageChanged,
            timeout=20000,
            check_params_cb=lambda text: text.startswith("Could not open"),
        ):
            main_window.open_path(path)
        assert "Could not open" in main_window.last_error
    assert main_window.view is None and main_window.isVisible()


def test_drop_a_file_opens_it(qtbot, main_window, phantom_file):
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(phantom_file))])
    drop = QtGui.QDropEvent(
        QtCore.QPointF(50, 50),
        QtCore.Qt.DropAction.CopyAction,
        mime,
        QtCore.Qt.MouseButton.LeftButton,
        QtCore.Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(main_window.view_changed, timeout=20000):
        main_window.dropEvent(drop)
    assert main_window.current_volume.name == "phantom.nii.gz"


def test_settings_persist_between_windows(qtbot, viewer_settings, phantom):
    from app.ui.main_window import MainWindow

    first = MainWindow(viewer_settings)
    qtbot.addWidget(first)
    first.open_volume(phantom)
    first.set_layout("sagittal")
    first._next_colormap()
    first.close()
    second = MainWindow(viewer_settings)
    qtbot.addWidget(second)
    second.open_volume(phantom)
    assert second.layout_name == "sagittal" and second.state.display.colormap == "hot"


@pytest.mark.skipif(not DEMO_DICOM.exists(), reason="demo study not built (scripts/build_demo_study.py)")
def test_open_demo_study_and_run_through_all_planes(qtbot, main_window):
    open_and_wait(qtbot, main_window, DEMO_DICOM)
    state = main_window.state
    for panel in main_window.panels:
        start = state.cursor_lps_mm
        panel.setFocus()
        qtbot.keyClick(panel, QtCore.Qt.Key.Key_PageUp)
        moved = state.cursor_lps_mm - start
        normal = {Plane.AXIAL: 2, Plane.CORONAL: 1, Plane.SAGITTAL: 0}[panel.plane]
        assert abs(moved[normal]) > 0 and np.allclose(np.delete(moved, normal), 0)
        assert "value" in panel.readout_at_scene(panel.lps_to_scene(state.cursor_lps_mm))


def test_run_gui_opens_the_paths_given(qtbot, phantom_file):
    from app.ui.application import run_gui
    from app.ui.main_window import MainWindow

    seen = {}

    def poll():
        windows = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
        opened = [
            w for w in windows if w.current_volume is not None and w.current_volume.name == "phantom.nii.gz"
        ]
        if opened:
            seen["layout"] = opened[0].layout_name
            seen["style"] = QtWidgets.QApplication.instance().styleSheet()
            opened[0].close()
            QtWidgets.QApplication.instance().quit()

    timer = QtCore.QTimer()
    timer.timeout.connect(poll)
    timer.start(50)
    QtCore.QTimer.singleShot(15000, QtWidgets.QApplication.instance().quit)  # never hang the suite
    assert run_gui([str(phantom_file)]) == 0
    timer.stop()
    assert seen.get("layout") and "QMainWindow" in seen["style"]  # opened, dark theme applied

"""The main window as a user drives it: open (threaded), layouts by key, help, errors, settings."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from app.core.planes import Plane
from app.io.nifti import save_nifti
from app.ui.compare_view import CompareView
from app.ui.docks import DOCK_NAMES
from app.ui.services import FileServices
from app.ui.shortcuts import SHORTCUTS
from tests.ui.child_process import QUIT_ONCE_A_VOLUME_IS_SHOWN, run_python_child

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def phantom_file(tmp_path, phantom):
    return save_nifti(phantom, tmp_path / "phantom.nii.gz")


def open_and_wait(qtbot, window, path):
    window.open_path(path)
    qtbot.waitUntil(lambda: not window.is_loading(), timeout=60000)
    assert not window.last_error, window.last_error


def test_open_file_in_background_then_scroll_and_read(qtbot, main_window, phantom_file, phantom):
    open_and_wait(qtbot, main_window, phantom_file)
    assert len(main_window.panels) == 3
    loaded = main_window.session.current
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
    # Window presets of the modality: the phantom is MR, so no CT (HU) windows are offered.
    assert main_window.window_presets() == ("Robust", "MR percentiles", "Full range")
    qtbot.keyClick(main_window, "3", QtCore.Qt.KeyboardModifier.AltModifier)  # full range
    low, high = float(main_window.session.current.voxels.min()), float(main_window.session.current.voxels.max())
    assert main_window.state.display.window.low == pytest.approx(low)
    assert main_window.state.display.window.high == pytest.approx(high)
    main_window._fill_presets_menu()
    assert [a.text() for a in main_window._presets_menu.actions()] == [
        "Robust\tAlt+1",
        "MR percentiles\tAlt+2",
        "Full range\tAlt+3",
    ]
    # Compare with a second open volume (key 6), flicker with F.
    main_window.session.add_volume(synthetic_phantom)
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
    assert dialog.table.rowCount() == len(main_window.shortcut_list()) >= len(SHORTCUTS)
    dialog.accept()
    assert_every_listed_key_is_bound(main_window)


def assert_every_listed_key_is_bound(window):
    """Every listed key is really bound in the window (the table and the bindings cannot
    drift apart), and every bound key is listed; mouse gestures and key pairs are prose."""
    bound = {action.shortcut().toString() for action in window.key_actions()}
    listed = [
        QtGui.QKeySequence(key).toString()
        for key, _ in window.shortcut_list()
        if " " not in key and "/" not in key and "wheel" not in key
    ]
    assert listed and all(key in bound for key in listed), set(listed) - bound
    assert bound <= set(listed), bound - set(listed)


def test_help_lists_the_tool_docks_keys_and_they_work(qtbot, main_window, phantom):
    from app.annotations.builders import Tool
    from app.ui.application import install_tool_docks

    assert install_tool_docks(main_window) == []
    main_window.open_volume(phantom)
    listed = {QtGui.QKeySequence(key).toString() for key, _ in main_window.shortcut_list()}
    annotation_keys = ["M", "D", "A", "B", "E", "G", "P", "X", "V", "Esc", "Ctrl+Z", "Ctrl+Shift+Z"]
    assert set(annotation_keys) <= listed, set(annotation_keys) - listed
    assert "Ctrl+E" in listed  # figure export, from its menu action
    assert_every_listed_key_is_bound(main_window)
    dialog = main_window.show_shortcuts()
    keys_in_table = {dialog.table.item(row, 0).text() for row in range(dialog.table.rowCount())}
    assert {"M", "Esc", "Ctrl+Shift+Z"} <= keys_in_table
    dialog.accept()
    # A listed key does what the help says, pressed anywhere in the window.
    qtbot.keyClick(main_window.panels[0], QtCore.Qt.Key.Key_D)
    from app.ui.annotation_panel import AnnotationPanel

    panel = main_window.findChild(AnnotationPanel)
    assert panel.tool_buttons[Tool.RULER].isChecked()
    qtbot.keyClick(main_window.panels[0], QtCore.Qt.Key.Key_Escape)
    assert panel.tool_buttons[Tool.NAVIGATE].isChecked()


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
    assert main_window.session.current.name == "phantom.nii.gz"


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
    assert second.session.layout.value == "sagittal" and second.state.display.colormap == "hot"


@pytest.mark.skipif(
    importlib.util.find_spec("app.io.loader") is None, reason="no DICOM loader (app.io.loader) yet"
)
def test_open_demo_study_and_run_through_all_planes(qtbot, main_window, demo_dicom_dir):
    open_and_wait(qtbot, main_window, demo_dicom_dir)
    state = main_window.state
    for panel in main_window.panels:
        start = state.cursor_lps_mm
        panel.setFocus()
        qtbot.keyClick(panel, QtCore.Qt.Key.Key_PageUp)
        moved = state.cursor_lps_mm - start
        normal = {Plane.AXIAL: 2, Plane.CORONAL: 1, Plane.SAGITTAL: 0}[panel.plane]
        assert abs(moved[normal]) > 0 and np.allclose(np.delete(moved, normal), 0)
        assert "value" in panel.readout_at_scene(panel.lps_to_scene(state.cursor_lps_mm))


RUN_GUI_SCRIPT = r"""
import sys
from app.cli.file_services import file_services
from app.ui.application import create_application, run_gui

app = create_application([])
def report(window):
    return f"opened {window.session.current.name} {window.session.layout.value} {'QMainWindow' in app.styleSheet()}"
""" + QUIT_ONCE_A_VOLUME_IS_SHOWN + """
sys.exit(run_gui(sys.argv[1:], file_services()))
"""


def test_run_gui_opens_the_paths_given(phantom_file, tmp_path):
    # A child process: app.exec() inside the test process would disturb later tests' event loops.
    result = run_python_child(
        RUN_GUI_SCRIPT, str(phantom_file), QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path)
    )
    assert "opened phantom.nii.gz mpr True" in result.stdout  # opened, MPR layout, dark theme


def test_folder_scan_lists_every_series_and_loads_the_first(qtbot, viewer_settings, tmp_path, phantom):
    from dataclasses import dataclass, field

    from app.ui.main_window import MainWindow

    @dataclass
    class Series:
        uid: str
        modality: str
        description: str
        shape: tuple
        spacing_mm: tuple
        frames: list = field(default_factory=list)  # app.core.study.series_to_open counts them

    @dataclass
    class Study:
        uid: str
        description: str
        patient_name: str
        series: list = field(default_factory=list)

    studies = [
        Study(
            "1.2",
            "Head MR",
            "Doe^Jane",
            [
                Series("1.2.1", "MR", "T1", (32, 40, 24), (1, 1.5, 2)),
                Series("1.2.2", "MR", "T2", (32, 40, 24), (1, 1.5, 2)),
            ],
        )
    ]
    loads = []

    def loader(path, series_uid=None):
        loads.append(series_uid)
        return phantom.with_voxels(
            phantom.voxels * (1 if series_uid == "1.2.1" else 2), name=f"series {series_uid}"
        )

    def preview(series):  # one frame of the series, as the DICOM preview reader returns it
        from app.core.volume import Volume

        return Volume(phantom.voxels[12:13].copy(), phantom.geometry, name="preview")

    window = MainWindow(
        viewer_settings, FileServices(loader, scan_beside=lambda path: studies, series_preview=preview)
    )
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.view_changed, timeout=20000):
        window.open_path(tmp_path)
    assert loads == ["1.2.1"] and window.session.current.name == "series 1.2.1"
    tree = window.browser.tree
    patient = tree.topLevelItem(0)
    assert patient.text(0) == "Doe^Jane" and patient.child(0).text(0) == "Head MR"
    series_rows = [patient.child(0).child(i) for i in range(2)]
    assert [row.text(0) for row in series_rows] == ["T1", "T2"]
    assert not series_rows[0].icon(0).isNull()  # loaded: its own thumbnail
    qtbot.waitUntil(lambda: not series_rows[1].icon(0).isNull(), timeout=10000)  # preview of an unloaded one
    with qtbot.waitSignal(window.view_changed, timeout=20000):
        tree.itemDoubleClicked.emit(series_rows[1], 0)
    assert loads == ["1.2.1", "1.2.2"] and window.session.current.name == "series 1.2.2"
    assert len(window.browser.volumes()) == 2  # no duplicate rows for loaded series


def test_browser_rows_of_synthesized_volumes_start_with_the_label(
    qtbot, main_window, phantom, synthetic_phantom
):
    main_window.show_compare(phantom, [synthetic_phantom])
    rows = main_window.browser.tree.findItems(
        "SYNTHETIC", QtCore.Qt.MatchFlag.MatchStartsWith | QtCore.Qt.MatchFlag.MatchRecursive
    )
    assert [row.text(0) for row in rows] == ["SYNTHETIC — toy-gan 0.1 · toy synth"]


def test_arrow_keys_work_right_after_opening(qtbot, main_window, phantom):
    main_window.open_volume(phantom)
    before = main_window.state.cursor_lps_mm
    qtbot.keyClick(QtWidgets.QApplication.focusWidget() or main_window, QtCore.Qt.Key.Key_Up)
    assert main_window.state.cursor_lps_mm[2] == pytest.approx(before[2] + 2.0)


@pytest.mark.skipif(
    importlib.util.find_spec("app.io.loader") is None, reason="no DICOM loader (app.io.loader) yet"
)
def test_demo_dicom_and_its_nifti_source_line_up_in_compare(
    qtbot, main_window, demo_volume, mni_t1_nifti_path
):
    from app.io.nifti import load_nifti

    template = load_nifti(mni_t1_nifti_path)  # RAS-ordered array; the DICOM series is LPS-ordered
    main_window.show_compare(demo_volume, [template])
    panels = main_window.panels
    for index in [(60, 90, 100), (120, 150, 40), (98, 40, 150)]:
        lps = demo_volume.geometry.lps_from_index(index)
        main_window.state.set_cursor(lps)
        for dicom_panel, nifti_panel in [(panels[row * 3], panels[row * 3 + 1]) for row in range(3)]:
            dicom_value = demo_volume.voxels[index[2], index[1], index[0]]
            assert f"value {dicom_value:g}" in dicom_panel.readout_at_scene(dicom_panel.lps_to_scene(lps))
            # The demo stores the template x4 as int16: same anatomy at the same world point.
            nifti_value = template.value_at_lps(lps)
            assert dicom_value == pytest.approx(4 * nifti_value)
            assert f"value {nifti_value:g}" in nifti_panel.readout_at_scene(nifti_panel.lps_to_scene(lps))


def test_tool_docks_attach_and_a_broken_one_is_reported(qtbot, main_window):
    from app.ui.docks import ToolSpec

    def missing_module(window):
        import app.ui.no_such_tool  # noqa: F401 - a tool whose code is missing

    tools = (
        ToolSpec("Good tool", lambda window: window.add_dock(QtWidgets.QLabel("tool"), "Good tool")),
        ToolSpec("Bad tool", lambda window: 1 / 0),
        ToolSpec("Missing tool", missing_module),
        ToolSpec("Lazy bad tool", lambda window: 1 / 0, lazy=True),
    )
    errors = main_window.install_tools(tools)
    assert set(errors) == {"Bad tool", "Missing tool"}  # an ImportError is no longer skipped silently
    assert "ZeroDivisionError" in errors["Bad tool"] and "ModuleNotFoundError" in errors["Missing tool"]
    titles = {dock.windowTitle() for dock in main_window.findChildren(QtWidgets.QDockWidget)}
    assert {"Good tool", "Bad tool", "Missing tool", "Lazy bad tool", "Studies"} <= titles
    # The user sees it: the dock says why, and the notification area holds every failure.
    assert "could not start" in main_window.dock_widget("Bad tool").text()
    assert main_window.notifications.isVisibleTo(main_window)
    assert [notice.title for notice in main_window.notifications.notices] == [
        "Bad tool could not start",
        "Missing tool could not start",
    ]
    # A lazy dock is built when first shown (here: asked for by name), and fails as loudly.
    assert "Lazy bad tool" not in main_window.tool_errors
    assert "could not start" in main_window.dock_widget("Lazy bad tool").text()
    assert "Lazy bad tool" in main_window.tool_errors


@pytest.mark.parametrize("name", DOCK_NAMES)
def test_each_declared_dock_builds_by_name(qtbot, main_window, phantom, synthetic_phantom, name):
    from app.ui.application import install_tool_docks

    assert install_tool_docks(main_window) == []
    main_window.show_compare(phantom, [synthetic_phantom])
    widget = main_window.dock_widget(name)
    assert widget is not None and not isinstance(widget, QtWidgets.QLabel), name
    assert name not in main_window.tool_errors
    dock = main_window.findChild(QtWidgets.QDockWidget, f"dock_{name}")
    assert dock.widget() is widget


def test_lazy_docks_are_built_only_when_their_tab_is_raised(qtbot, main_window):
    from app.ui.application import install_tool_docks
    from app.ui.hallucination_panel import HallucinationPanel

    install_tool_docks(main_window)
    main_window.show()
    qtbot.waitExposed(main_window)
    assert main_window.findChild(HallucinationPanel) is None  # behind a tab: not built at start
    main_window.findChild(QtWidgets.QDockWidget, "dock_Hallucination check").raise_()
    qtbot.waitUntil(
        lambda: main_window.findChild(HallucinationPanel) is not None or bool(main_window.tool_errors), timeout=3000
    )
    assert not main_window.tool_errors
    assert main_window.dock_widget("Hallucination check") is main_window.findChild(HallucinationPanel)


def test_compare_two_acquired_series_from_the_browser(qtbot, main_window, phantom):
    from app.core.resample import resample_onto
    from app.core.volume import Geometry

    other_grid = Geometry(np.array([25.0, 70.0, -5.0]), np.array([0.9, 1.1, 1.3]), np.diag([-1.0, -1.0, 1.0]))
    t2 = resample_onto(phantom, other_grid, (37, 53, 40))
    t2.name = "T2 on its own grid"
    main_window.open_volume(phantom)
    main_window.session.add_volume(t2)
    tree = main_window.browser.tree
    rows = tree.findItems("", QtCore.Qt.MatchFlag.MatchContains | QtCore.Qt.MatchFlag.MatchRecursive)
    for row in rows:
        if row.data(0, QtCore.Qt.ItemDataRole.UserRole) is not None:
            row.setSelected(True)
    qtbot.mouseClick(main_window.browser.compare_button, QtCore.Qt.MouseButton.LeftButton)
    assert isinstance(main_window.view, CompareView)
    assert len(main_window.panels) == 9 and not any(
        p._synthetic_label.isVisible() for p in main_window.panels
    )
    # Linked in world coordinates: the same point reads the same marker in both series.
    lps = phantom.geometry.lps_from_index([29, 20, 12])
    main_window.state.set_cursor(lps)
    first, second = main_window.panels[0], main_window.panels[1]
    assert first.readout_at_scene(first.lps_to_scene(lps)).endswith("value 1000")
    assert second.readout_at_scene(second.lps_to_scene(lps)).endswith("value 1000")


def test_window_stays_responsive_while_a_slow_load_runs(qtbot, viewer_settings, phantom, tmp_path):
    import threading

    from app.ui.main_window import MainWindow

    release = threading.Event()

    def slow_loader(path, series_uid=None):
        release.wait(10)  # held until the test has seen the UI thread at work
        return phantom

    window = MainWindow(viewer_settings, FileServices(slow_loader))
    qtbot.addWidget(window)
    window.show()
    path = tmp_path / "slow.nii.gz"
    path.write_bytes(b"")
    ticks = []
    timer = QtCore.QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    window.open_path(path)
    qtbot.waitUntil(lambda: len(ticks) >= 10, timeout=5000)  # the event loop keeps running
    assert window.is_loading() and window.progress_bar.isVisible()
    release.set()
    qtbot.waitUntil(lambda: not window.is_loading(), timeout=10000)
    timer.stop()
    assert window.session.current is phantom and not window.progress_bar.isVisible()


def test_tool_keys_type_text_in_a_text_field(qtbot, main_window, phantom):
    """Single-letter tool keys must not steal letters typed into the dock's label field."""
    from app.annotations.builders import Tool
    from app.ui.annotation_panel import AnnotationPanel
    from app.ui.application import install_tool_docks

    install_tool_docks(main_window)
    main_window.open_volume(phantom)
    panel = main_window.findChild(AnnotationPanel)
    panel.window().findChild(QtWidgets.QDockWidget, "dock_Annotations").raise_()
    panel.label_edit.setFocus()
    qtbot.keyClicks(panel.label_edit, "mass")
    assert panel.label_edit.text() == "mass"
    assert panel.tool_buttons[Tool.NAVIGATE].isChecked()


def test_load_warnings_stay_in_the_status_bar_while_that_series_is_open(
    qtbot, main_window, tmp_path, phantom_file
):
    from tests.io.series_factory import write_tilted_ball_series

    folder = tmp_path / "tilted"
    write_tilted_ball_series(folder, ball_lps_mm=(0.0, 0.0, 30.0), radius_mm=6.0, slices=12, shape=(24, 24))
    label = main_window.load_warnings_label
    with qtbot.waitSignal(main_window.volume_loaded, timeout=30000):
        main_window.open_path(folder)
    assert label.isVisible() and label.text().startswith("⚠ gantry tilt of 15.00 deg corrected")
    assert "slices shifted in plane" in label.toolTip()
    with qtbot.waitSignal(main_window.volume_loaded, timeout=30000):
        main_window.open_path(phantom_file)  # a clean NIfTI: the warning goes with the tilted series
    assert not label.isVisible() and label.toolTip() == ""


def test_opening_one_slice_loads_its_whole_series_and_lists_the_others(qtbot, main_window, tmp_path):
    """A double-clicked .dcm (the desktop file registers application/dicom) is one slice of a series."""
    from tests.io.series_factory import write_series

    write_series(tmp_path, [0.0, 2.0, 4.0, 6.0], series_uid="1.2.3.1", prefix="a")
    write_series(tmp_path, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], series_uid="1.2.3.2", prefix="b")
    with qtbot.waitSignal(main_window.volume_loaded, timeout=30000) as loaded:
        main_window.open_path(tmp_path / "a001.dcm")
    volume = loaded.args[0]
    assert volume.voxels.shape[0] == 4  # the series holding the file, not the larger one beside it
    listed = main_window.browser.tree.findItems(
        "", QtCore.Qt.MatchFlag.MatchContains | QtCore.Qt.MatchFlag.MatchRecursive
    )
    assert sum(item.toolTip(0).startswith("1.2.3.") for item in listed) == 2

    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    with qtbot.waitSignal(
        main_window.statusBar().messageChanged,
        timeout=20000,
        check_params_cb=lambda t: t.startswith("Could not"),
    ):
        main_window.open_path(notes)
    assert "notes.txt" in main_window.last_error and "folder" not in main_window.last_error


def test_window_level_survives_a_new_compare_in_the_window(qtbot, main_window, phantom, synthetic_phantom):
    from app.core.display import WindowLevel

    main_window.show_compare(phantom, [synthetic_phantom])
    main_window.state.set_window(WindowLevel(321.0, 77.0))
    map_volume = synthetic_phantom.with_voxels(synthetic_phantom.voxels * 0, name="a map")
    main_window.show_compare(phantom, [synthetic_phantom, map_volume])
    assert main_window.state.display.window == WindowLevel(321.0, 77.0)
    assert all(panel.state is main_window.state for panel in main_window.panels)


def test_start_up_docks_are_built_after_the_first_image(qtbot, main_window, phantom):
    """Interactive start (defer=True): the docks' tabs are there at once, their panels are built
    once the first image is drawn, so they do not delay it."""
    from app.ui.annotation_panel import AnnotationPanel
    from app.ui.plugin_panel import PluginPanel

    assert main_window.install_tools(defer=True) == {}
    titles = {dock.windowTitle() for dock in main_window.findChildren(QtWidgets.QDockWidget)}
    assert set(DOCK_NAMES) <= titles
    assert main_window.findChild(PluginPanel) is None and main_window.findChild(AnnotationPanel) is None
    main_window.open_volume(phantom)
    qtbot.waitUntil(lambda: main_window.findChild(AnnotationPanel) is not None, timeout=3000)
    assert main_window.findChild(PluginPanel) is not None
    listed = {QtGui.QKeySequence(key).toString() for key, _ in main_window.shortcut_list()}
    assert "Ctrl+Z" in listed  # the annotation keys are bound once it is built


def test_a_scanned_folder_is_scanned_once_and_its_thumbnails_wait_for_the_load(
    qtbot, viewer_settings, phantom, tmp_path
):
    """The series the scan listed is loaded as scanned (no second scan of the folder, 0.2 s on the
    demo); the other series' thumbnails are read only once it is loaded."""
    from dataclasses import dataclass, field

    from app.ui.main_window import MainWindow

    @dataclass
    class Series:
        uid: str
        frames: list = field(default_factory=list)

    @dataclass
    class Study:
        series: list

    studies = [Study([Series("1.2.1"), Series("1.2.2")])]
    events = []

    def scan(path):
        events.append("scan")
        return studies

    def rescan_and_load(path, series_uid=None):
        events.append("load by path")
        return phantom

    def load_scanned(series, path, progress=None):
        events.append(f"load {series.uid}")
        return phantom.with_voxels(phantom.voxels, name=f"series {series.uid}")

    def preview(series):
        events.append(f"preview {series.uid}")
        return phantom

    window = MainWindow(
        viewer_settings,
        FileServices(rescan_and_load, scan_beside=scan, series_preview=preview, load_scanned=load_scanned),
    )
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.view_changed, timeout=20000):
        window.open_path(tmp_path)
    qtbot.waitUntil(lambda: "preview 1.2.2" in events, timeout=10000)
    assert window.session.current.name == "series 1.2.1"
    assert events[:2] == ["scan", "load 1.2.1"] and "load by path" not in events
    assert events.count("scan") == 1


def test_showing_the_window_does_not_build_the_deferred_docks(qtbot, viewer_settings, phantom):
    """The GAN plugins dock is in front at start; the window's show must not build it (plugin
    discovery took 0.25 s of the start) before the first image is on screen."""
    from app.cli.file_services import file_services
    from app.ui.main_window import MainWindow
    from app.ui.plugin_panel import PluginPanel

    window = MainWindow(viewer_settings, file_services())
    qtbot.addWidget(window)
    assert window.install_tools(defer=True) == {}
    window.show()
    qtbot.waitExposed(window)
    QtWidgets.QApplication.processEvents()
    menus = lambda: [action.text().replace("&", "") for action in window.menuBar().actions()]  # noqa: E731
    assert window.findChild(PluginPanel) is None
    assert "Tools" not in menus()  # the menu-only tools wait for the image too
    window.open_volume(phantom)
    qtbot.waitUntil(lambda: window.findChild(PluginPanel) is not None, timeout=3000)
    qtbot.waitUntil(lambda: "Tools" in menus(), timeout=3000)  # built one per turn of the loop
    assert menus()[-1] == "Help"


def test_the_deferred_tools_are_built_one_per_turn_of_the_event_loop(qtbot, viewer_settings, phantom):
    """Built in one go they held the UI thread 0.2-0.35 s right after the first image."""
    from app.cli.file_services import file_services
    from app.ui.main_window import MainWindow

    window = MainWindow(viewer_settings, file_services())
    qtbot.addWidget(window)
    assert window.install_tools(defer=True) == {}
    window.show()
    order = []
    build_tool = window.build_tool

    def recording(tool):
        order.append(tool.name)
        if len(order) == 1:  # whatever the event loop had queued meanwhile runs before the next
            QtCore.QTimer.singleShot(0, lambda: order.append("(event loop)"))
        return build_tool(tool)

    window.build_tool = recording
    window.open_volume(phantom)
    qtbot.waitUntil(lambda: window._deferred_build is None, timeout=5000)
    assert len(order) > 3 and order[1] == "(event loop)", order


def test_deferred_docks_wait_for_a_slow_first_image(qtbot, viewer_settings, phantom, tmp_path):
    """On a slow or busy machine the first image can take longer than the 2 s fallback: the
    docks (plugin discovery, annotation tools) are not built alongside the load then."""
    import threading

    from app.ui.main_window import MainWindow
    from app.ui.plugin_panel import PluginPanel

    release = threading.Event()

    def slow_loader(path, series_uid=None):
        release.wait(20)
        return phantom

    window = MainWindow(viewer_settings, FileServices(slow_loader))
    qtbot.addWidget(window)
    window.install_tools(defer=True)
    window.show()
    path = tmp_path / "slow.nii.gz"
    path.write_bytes(b"")
    window.open_path(path)
    qtbot.wait(2600)  # past the fallback
    assert window.is_loading() and window.findChild(PluginPanel) is None
    release.set()
    qtbot.waitUntil(lambda: window.findChild(PluginPanel) is not None, timeout=10000)
    assert window.session.current is phantom



def test_a_load_that_ends_after_its_window_went_away_is_dropped_quietly(qtbot, phantom, tmp_path):
    """Closing the window mid-load: the loading thread's answer finds no listener (its signals
    object deleted with the window's tasks) and must not raise in the thread pool."""
    from shiboken6 import Shiboken

    from app.ui.loading import LoadTask, PreviewTask, ScanTask

    path = tmp_path / "volume.nii.gz"
    path.write_bytes(b"")
    for task in (
        LoadTask(str(path), None, lambda path, series_uid=None: phantom),
        LoadTask(str(path), None, lambda path, series_uid=None: 1 / 0),  # the failure message too
        ScanTask(str(path), lambda path: []),
        PreviewTask(str(path), [type("Series", (), {"uid": "1.2"})()], lambda series: phantom),
    ):
        Shiboken.delete(task.signals)
        task.run()  # raised RuntimeError ("Signal source has been deleted") before


def test_a_screenshot_or_figure_under_a_file_says_which_file_is_in_the_way(
    qtbot, main_window, phantom, tmp_path, monkeypatch
):
    # A screenshot there failed without a word (QPixmap.save returned False, ignored); a figure
    # said 'could not write ...' in a message box of its own, outside the notification area.
    from app.ui.figure_export import install_figure_export

    main_window.open_volume(phantom)
    install_figure_export(main_window)
    blocker = tmp_path / "notes"
    blocker.write_text("x")
    for action_text, name, title in (
        ("Save screenshot...", "shot.png", "Cannot save the screenshot"),
        ("Export figure (PNG/SVG)...", "figure.svg", "Cannot export the figure"),
    ):
        target = blocker / name
        monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, t=target, **k: (str(t), ""))
        action = next(a for a in main_window.key_actions() if a.text() == action_text)
        action.trigger()
        notice = main_window.notifications.notices[-1]
        assert notice.title == title
        assert f"{blocker} is a file where a folder is needed" in notice.message, notice.message
        assert main_window.notifications.dialog.isVisible()
        main_window.notifications.dialog.close()
    # A folder that is not there yet is made for the screenshot.
    assert main_window.save_screenshot(tmp_path / "new folder" / "shot.png")

"""Annotation tools used as a reader does: pick a tool, drag on a panel, read the table,
undo/redo with the keyboard, paint a mask, save and reload."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from app.annotations.shapes import EllipseRoi, Ruler
from app.core.planes import Plane
from app.ui.annotation_panel import install_annotation_tools
from tests.ui.conftest import drag, widget_pos_of_lps


@pytest.fixture
def compare_window(qtbot, main_window, phantom, synthetic_phantom):
    tools = install_annotation_tools(main_window)
    main_window.show_compare(phantom, [synthetic_phantom], planes=[Plane.AXIAL])
    qtbot.waitUntil(lambda: len(tools.controller.overlays) == 3)
    QtWidgets.QApplication.processEvents()
    return main_window, tools


def click_tool(qtbot, tools, name: str) -> None:
    qtbot.mouseClick(tools.findChild(QtWidgets.QToolButton, f"tool_{name}"), QtCore.Qt.MouseButton.LeftButton)


def drag_with_tool(qtbot, window, tools, tool: str, offset_lps_mm) -> np.ndarray:
    """Pick ``tool`` and drag on the first panel from the crosshair by ``offset_lps_mm``; the start."""
    click_tool(qtbot, tools, tool)
    panel = window.panels[0]
    center = window.state.cursor_lps_mm.copy()
    drag(
        panel.viewport(),
        QtCore.Qt.MouseButton.LeftButton,
        widget_pos_of_lps(panel, center),
        widget_pos_of_lps(panel, center + np.asarray(offset_lps_mm, float)),
    )
    return center


def paint_stroke(qtbot, window, tools, radius_mm: float, length_mm: float):
    """A brush stroke ``length_mm`` to the patient's left: its start (LPS mm) and the mask."""
    tools.radius_spin.setValue(radius_mm)
    center = drag_with_tool(qtbot, window, tools, "brush", [length_mm, 0, 0])
    return center, tools.controller.document.mask


def test_ellipse_drawn_on_original_shows_on_every_panel_with_side_by_side_stats(
    qtbot, compare_window, phantom
):
    window, tools = compare_window
    click_tool(qtbot, tools, "ellipse")
    tools.label_edit.setText("lesion")
    original_panel = window.panels[0]
    center = window.state.cursor_lps_mm.copy()
    start = widget_pos_of_lps(original_panel, center - [4.0, 3.0, 0.0])
    end = widget_pos_of_lps(original_panel, center + [4.0, 3.0, 0.0])
    drag(original_panel.viewport(), QtCore.Qt.MouseButton.LeftButton, start, end)

    document = tools.controller.document
    assert len(document) == 1
    ellipse = next(iter(document))
    assert isinstance(ellipse, EllipseRoi) and ellipse.label == "lesion"
    np.testing.assert_allclose(ellipse.center_lps[:2], center[:2], atol=0.6)
    assert (ellipse.half_width_mm, ellipse.half_height_mm) == pytest.approx((4.0, 3.0), abs=0.6)
    # The crosshair did not move: the tool took the drag.
    np.testing.assert_allclose(window.state.cursor_lps_mm, center)
    # Same world place on original, synthesized and difference panels.
    for overlay in tools.controller.overlays:
        assert [a.annotation_id for a in overlay.visible_annotations()] == [ellipse.annotation_id]
    headers = [tools.table.horizontalHeaderItem(c).text() for c in range(tools.table.columnCount())]
    assert headers[3:] == ["original", "synthesized", "difference"]
    for column in (3, 4, 5):
        assert "±" in tools.table.item(0, column).text()
    stats = tools.controller.statistics()[ellipse.annotation_id]
    assert stats["original"].voxel_count == stats["synthesized"].voxel_count > 10
    # The difference panel's sign convention (compare's residual): original - synthesized.
    assert stats["difference"].mean == pytest.approx(
        stats["original"].mean - stats["synthesized"].mean, abs=1e-3
    )


def test_ruler_undo_redo_with_keys_and_navigate_restores_crosshair(qtbot, compare_window):
    window, tools = compare_window
    panel = window.panels[1]
    panel.setFocus()
    qtbot.keyClick(panel, QtCore.Qt.Key.Key_D)  # ruler
    center = window.state.cursor_lps_mm.copy()
    drag(
        panel.viewport(),
        QtCore.Qt.MouseButton.LeftButton,
        widget_pos_of_lps(panel, center),
        widget_pos_of_lps(panel, center + [6.0, 8.0, 0.0]),
    )
    ruler = next(iter(tools.controller.document))
    assert isinstance(ruler, Ruler) and ruler.length_mm == pytest.approx(10.0, abs=0.8)
    assert "mm" in tools.table.item(0, 2).text()
    qtbot.keyClick(panel, QtCore.Qt.Key.Key_Z, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert len(tools.controller.document) == 0
    qtbot.keyClick(
        panel,
        QtCore.Qt.Key.Key_Z,
        QtCore.Qt.KeyboardModifier.ControlModifier | QtCore.Qt.KeyboardModifier.ShiftModifier,
    )
    assert len(tools.controller.document) == 1
    qtbot.keyClick(panel, QtCore.Qt.Key.Key_Escape)  # back to navigate: a click moves the crosshair
    target = center + [5.0, 0.0, 0.0]
    qtbot.mouseClick(panel.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=widget_pos_of_lps(panel, target))
    assert window.state.cursor_lps_mm[0] == pytest.approx(target[0], abs=0.6)


def test_brush_stroke_paints_the_mask_and_undoes(qtbot, compare_window):
    window, tools = compare_window
    center, mask = paint_stroke(qtbot, window, tools, radius_mm=2.0, length_mm=6.0)
    panel = window.panels[0]
    assert mask is not None and mask.voxel_count() > 20
    k, j, i = np.round(window.session.current.geometry.index_from_lps(center)[::-1]).astype(int)
    assert mask.labels[k, j, i] == 1
    assert set(np.argwhere(mask.labels)[:, 0]) == {k}  # painted on the slice shown only
    click_tool(qtbot, tools, "eraser")
    drag(
        panel.viewport(),
        QtCore.Qt.MouseButton.LeftButton,
        widget_pos_of_lps(panel, center),
        widget_pos_of_lps(panel, center),
    )
    assert mask.labels[k, j, i] == 0
    qtbot.mouseClick(tools.undo_button, QtCore.Qt.MouseButton.LeftButton)
    assert mask.labels[k, j, i] == 1
    qtbot.mouseClick(tools.undo_button, QtCore.Qt.MouseButton.LeftButton)
    assert tools.controller.document.mask is None


def test_save_and_reload_restores_annotations(qtbot, compare_window, tmp_path):
    window, tools = compare_window
    drag_with_tool(qtbot, window, tools, "rectangle", [5.0, 5.0, 0])
    saved = next(iter(tools.controller.document))
    path = tools.save_to(tmp_path / "a.annotations.json")
    tools.controller.delete_selected()
    assert len(tools.controller.document) == 0
    assert tools.load_from(path)
    reloaded = next(iter(tools.controller.document))
    assert reloaded.same_as(saved)
    assert tools.table.rowCount() == 1
    assert all(overlay.visible_annotations() for overlay in tools.controller.overlays)


def test_selected_roi_statistics_side_by_side(qtbot, compare_window):
    window, tools = compare_window
    click_tool(qtbot, tools, "freehand")
    panel = window.panels[0]
    c = window.state.cursor_lps_mm.copy()
    path = [c, c + [6, 0, 0], c + [6, 6, 0], c + [0, 6, 0], c + [0, 0.5, 0]]
    viewport = panel.viewport()
    points = [widget_pos_of_lps(panel, p) for p in path]
    _stroke(viewport, points[:2])
    assert len(tools.controller.document) == 0  # a straight scribble encloses nothing: no ROI
    _stroke(viewport, points)
    roi = next(iter(tools.controller.document))
    assert roi.kind == "freehand" and roi.area_mm2 == pytest.approx(33, abs=6)
    tools.table.selectRow(0)
    headers = [
        tools.stats_table.horizontalHeaderItem(c).text() for c in range(tools.stats_table.columnCount())
    ]
    assert headers == ["original", "synthesized", "difference"]
    assert tools.stats_table.item(5, 0).text() == tools.stats_table.item(5, 1).text()  # same voxels
    assert tools.stats_title.text() == "ROI (freehand) on original | synthesized | difference"


def _stroke(viewport, points) -> None:
    from PySide6 import QtGui

    def send(kind, pos, button, buttons):
        event = QtGui.QMouseEvent(
            kind,
            QtCore.QPointF(pos),
            QtCore.QPointF(viewport.mapToGlobal(pos)),
            button,
            buttons,
            QtCore.Qt.KeyboardModifier.NoModifier,
        )
        QtWidgets.QApplication.sendEvent(viewport, event)

    left = QtCore.Qt.MouseButton.LeftButton
    send(QtCore.QEvent.Type.MouseButtonPress, points[0], left, left)
    for point in points[1:]:
        send(QtCore.QEvent.Type.MouseMove, point, QtCore.Qt.MouseButton.NoButton, left)
    send(QtCore.QEvent.Type.MouseButtonRelease, points[-1], left, QtCore.Qt.MouseButton.NoButton)


def test_layout_changes_keep_one_overlay_per_panel(qtbot, main_window, phantom):
    tools = install_annotation_tools(main_window)
    main_window.open_volume(phantom)
    qtbot.waitUntil(lambda: len(tools.controller.overlays) == len(main_window.panels) > 0)
    for layout in ("axial", "mpr", "sagittal"):
        main_window.set_layout(layout)
        QtWidgets.QApplication.processEvents()
        assert len(tools.controller.overlays) == len(main_window.panels)
        main_window.state.set_cursor(main_window.state.cursor_lps_mm + 1.0)  # old overlays are gone
    assert list(tools.controller.volumes) == ["original"]


def test_saving_into_an_unwritable_folder_tells_the_user(qtbot, compare_window, tmp_path, monkeypatch):
    window, tools = compare_window
    drag_with_tool(qtbot, window, tools, "rectangle", [5.0, 5.0, 0])
    blocker = tmp_path / "a file, not a folder"
    blocker.write_text("x")
    target = blocker / "a.annotations.json"  # fails even for root, unlike a chmod-ed folder
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    qtbot.mouseClick(tools.save_button, QtCore.Qt.MouseButton.LeftButton)
    (notice,) = window.notifications.notices
    assert notice.title == "Cannot save the annotations" and str(target) in notice.message
    # The OS said 'File exists' (creating the folder): which file is in the way, said plainly.
    assert "File exists" not in notice.message
    assert f"{blocker} is a file where a folder is needed" in notice.message
    assert window.notifications.isVisibleTo(window) and window.notifications.dialog.isVisible()
    assert "not saved" in tools.status and len(tools.controller.document) == 1  # nothing lost


def test_export_button_writes_sr_seg_and_sidecar(qtbot, compare_window, tmp_path, monkeypatch):
    window, tools = compare_window
    drag_with_tool(qtbot, window, tools, "ellipse", [6.0, 4.0, 0])
    drag_with_tool(qtbot, window, tools, "brush", [0, 0, 0])  # one dab where the ellipse starts
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))
    qtbot.mouseClick(tools.export_button, QtCore.Qt.MouseButton.LeftButton)
    assert (tmp_path / "measurements_sr.dcm").exists() and (tmp_path / "mask_seg.dcm").exists()
    assert (tmp_path / "annotations.annotations.json").exists() and (tmp_path / "mask.nii.gz").exists()
    assert "exported" in tools.status
    panels = json.loads((tmp_path / "annotations.annotations.json").read_text())["measurements"]["volumes"]
    assert list(panels) == list(tools.controller.volumes) == ["original", "synthesized", "difference"]
    sd = [panel["noise"][0]["sd"] for panel in panels.values()]
    assert sd == pytest.approx([tools.controller.statistics()[tools.controller.selected_id][n].sd for n in panels])


def test_rename_in_the_table_is_undoable(qtbot, compare_window):
    window, tools = compare_window
    click_tool(qtbot, tools, "point")
    panel = window.panels[0]
    center = window.state.cursor_lps_mm.copy()
    qtbot.mouseClick(panel.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=widget_pos_of_lps(panel, center))
    marker = next(iter(tools.controller.document))
    assert not tools.table.item(0, 1).flags() & QtCore.Qt.ItemFlag.ItemIsEditable
    tools.table.item(0, 0).setText("nodule A")  # what the cell editor commits
    qtbot.waitUntil(lambda: tools.controller.document.get(marker.annotation_id).label == "nodule A")
    tools.controller.undo()
    assert tools.controller.document.get(marker.annotation_id).label == ""
    assert tools.table.item(0, 0).text() == ""


def test_move_tool_drags_an_annotation_and_undo_puts_it_back(qtbot, compare_window):
    window, tools = compare_window
    click_tool(qtbot, tools, "ruler")
    panel = window.panels[2]  # drawn on the difference panel, moved there too
    c = window.state.cursor_lps_mm.copy()
    drag(
        panel.viewport(),
        QtCore.Qt.MouseButton.LeftButton,
        widget_pos_of_lps(panel, c),
        widget_pos_of_lps(panel, c + [8.0, 0, 0]),
    )
    ruler = next(iter(tools.controller.document))
    click_tool(qtbot, tools, "move")
    grab = c + [4.0, 0, 0]  # the middle of the line
    drag(
        panel.viewport(),
        QtCore.Qt.MouseButton.LeftButton,
        widget_pos_of_lps(panel, grab),
        widget_pos_of_lps(panel, grab + [0, 5.0, 0]),
    )
    moved = tools.controller.document.get(ruler.annotation_id)
    np.testing.assert_allclose(moved.start_lps - ruler.start_lps, [0, 5.0, 0], atol=0.6)
    assert moved.length_mm == pytest.approx(ruler.length_mm)
    # Dragging empty space moves nothing and clears the selection.
    drag(
        panel.viewport(),
        QtCore.Qt.MouseButton.LeftButton,
        widget_pos_of_lps(panel, c + [0, -9.0, 0]),
        widget_pos_of_lps(panel, c),
    )
    assert tools.controller.selected_id is None
    tools.controller.undo()
    np.testing.assert_allclose(tools.controller.document.get(ruler.annotation_id).start_lps, ruler.start_lps)


def test_annotations_saved_beside_a_file_open_with_it(qtbot, main_window, phantom, tmp_path):
    from app.annotations.document import AnnotationDocument
    from app.annotations.shapes import PointMarker
    from app.annotations.sidecar import save_annotations

    document = AnnotationDocument()
    document.insert(
        PointMarker(label="saved earlier", position_lps=phantom.geometry.lps_from_index([5, 5, 5]))
    )
    save_annotations(document, tmp_path / "scan.annotations.json")
    phantom.source_path = str(tmp_path / "scan.nii.gz")
    tools = install_annotation_tools(main_window)
    main_window.open_volume(phantom)
    qtbot.waitUntil(lambda: len(tools.controller.document) == 1)
    assert next(iter(tools.controller.document)).label == "saved earlier"


def test_the_dock_states_the_painted_mask_volume_in_ml(qtbot, compare_window):
    """A painted lesion's volume is what a reader wants from the brush; the dock said nothing."""
    window, tools = compare_window
    assert "none" in tools.mask_label.text()
    _center, mask = paint_stroke(qtbot, window, tools, radius_mm=3.0, length_mm=5.0)
    original = window.session.current
    voxel_mm3 = float(np.prod(original.geometry.spacing_mm))  # 1.0 x 1.5 x 2.0 mm
    count = int(np.count_nonzero(mask.labels))
    text = tools.mask_label.text()
    assert f"{count} voxels" in text and f"{count * voxel_mm3 / 1000:.3f} mL" in text
    values = original.voxels[mask.labels > 0]
    assert f"{values.mean():.1f} ± {values.std(ddof=1):.1f}" in text
    tools.controller.undo()
    assert "none" in tools.mask_label.text()


def test_a_map_in_the_compare_is_named_as_a_map_in_the_statistics(
    qtbot, main_window, phantom, synthetic_phantom
):
    """A residual / uncertainty map shown beside the pair carries the synthesized volume's
    provenance; its statistics column was headed 'synthesized 2' as if it were a second output."""
    from app.analysis.compare_run import map_volume
    from app.core.quantity_map import MapKind, QuantityMap

    tools = install_annotation_tools(main_window)
    residual = map_volume(
        phantom,
        phantom.voxels - synthetic_phantom.voxels,
        "residual original - synthesized",
        synthetic_phantom.provenance,
        QuantityMap(MapKind.RESIDUAL),
    )
    main_window.show_compare(phantom, [synthetic_phantom, residual], planes=[Plane.AXIAL])
    QtWidgets.QApplication.processEvents()
    assert list(tools.controller.volumes) == [
        "original",
        "synthesized",
        "map: residual original - synthesized",
        "difference",
    ]


def test_statistics_title_names_the_columns_shown(qtbot, main_window, phantom):
    tools = install_annotation_tools(main_window)
    main_window.open_volume(phantom)
    qtbot.waitUntil(lambda: len(tools.controller.overlays) == len(main_window.panels) > 0)
    click_tool(qtbot, tools, "rectangle")
    panel = main_window.panels[0]
    center = main_window.state.cursor_lps_mm.copy()
    right, down = panel_axes(panel)
    drag(
        panel.viewport(),
        QtCore.Qt.MouseButton.LeftButton,
        widget_pos_of_lps(panel, center),
        widget_pos_of_lps(panel, center + 5.0 * right + 5.0 * down),
    )
    assert tools.controller.selected_id is not None
    title = tools.stats_title.text()
    assert "original" in title and "synthesized" not in title and "''" not in title
    assert "rectangle" in title  # an unlabelled ROI is named by its kind


def panel_axes(panel):
    from app.core.planes import PLANE_AXES

    axes = PLANE_AXES[panel.plane]
    return axes.right_lps, axes.down_lps


def test_annotations_stay_with_the_patient_space_they_were_drawn_in(
    qtbot, main_window, phantom, synthetic_phantom
):
    """Another patient's volume opens with its own (empty) annotations, never the previous
    patient's marks; coming back brings them back; the synthesized twin shares them."""
    from app.annotations.shapes import PointMarker
    from app.core.volume import Geometry, Volume

    tools = install_annotation_tools(main_window)
    main_window.open_volume(phantom)
    tools.controller.document.insert(
        PointMarker(label="lesion", position_lps=phantom.geometry.lps_from_index([5, 5, 5]))
    )
    main_window.show_compare(phantom, [synthetic_phantom])  # same grid: same space
    assert [a.label for a in tools.controller.document] == ["lesion"]

    other_patient = Volume(
        np.zeros((6, 7, 8), np.float32),
        Geometry(np.array([100.0, 0, 0]), np.ones(3), np.eye(3)),
        "MR",
        name="b",
    )
    main_window.open_volume(other_patient)
    assert len(tools.controller.document) == 0 and "set aside" in tools.status
    main_window.open_volume(phantom)
    assert [a.label for a in tools.controller.document] == ["lesion"]


def test_a_synthesized_volume_opened_alone_is_not_headed_original(qtbot, main_window, synthetic_phantom):
    tools = install_annotation_tools(main_window)
    main_window.open_volume(synthetic_phantom)
    assert list(tools.controller.volumes) == ["synthesized (reference)"]
    main_window.show_compare(synthetic_phantom, [synthetic_phantom.with_voxels(synthetic_phantom.voxels + 1)])
    assert list(tools.controller.volumes)[:2] == ["synthesized (reference)", "synthesized"]


def test_new_annotations_get_new_labels_distinct_colours_and_a_backing(qtbot, compare_window):
    """Every new annotation reused 'lesion 1', in the crosshair's yellow, with no backing."""
    import pyqtgraph as pg

    from app.ui.annotation_overlay import ANNOTATION_COLOR

    window, tools = compare_window
    tools.label_edit.setText("lesion 1")
    drag_with_tool(qtbot, window, tools, "rectangle", [5.0, 5.0, 0])
    drag_with_tool(qtbot, window, tools, "ellipse", [-6.0, -4.0, 0])
    assert sorted(annotation.label for annotation in tools.controller.document) == ["lesion 1", "lesion 2"]
    crosshair = window.panels[0]._vertical_line.pen().color()
    distance = sum(abs(a - b) for a, b in zip(ANNOTATION_COLOR, crosshair.getRgb()[:3], strict=True))
    assert distance > 150  # not a shade of the crosshair's yellow
    texts = [item for item in window.panels[0].items() if isinstance(item, pg.TextItem)]
    assert texts and all(text.fill.color().alpha() > 100 for text in texts)
    # The statistics table fits the dock: no sideways scrolling.
    table = tools.stats_table
    tools.controller.select(next(iter(tools.controller.document)).annotation_id)
    QtWidgets.QApplication.processEvents()
    assert table.columnCount() >= 2
    assert table.horizontalScrollBarPolicy() == QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    assert sum(table.columnWidth(c) for c in range(table.columnCount())) <= table.viewport().width() + 2
    listing = tools.table
    assert sum(listing.columnWidth(c) for c in range(listing.columnCount())) <= listing.viewport().width() + 2
    # A column name too long for its share is elided and is whole in its tooltip; centred and
    # unelided it was cut at both ends ('leasur', 'nthesiz', 'fferen' in the demo's compare).
    for shown in (listing, table):
        header = shown.horizontalHeader()
        assert header.textElideMode() == QtCore.Qt.TextElideMode.ElideMiddle
        assert header.defaultAlignment() & QtCore.Qt.AlignmentFlag.AlignLeft
        names = [shown.horizontalHeaderItem(c) for c in range(shown.columnCount())]
        assert all(item.toolTip() == item.text() for item in names)


@pytest.mark.parametrize("edge", ["right", "left"])
def test_a_ruler_label_near_an_edge_letter_stays_clear_of_it(qtbot, compare_window, edge):
    """A ruler measured across at the letters' height, from the middle out to the patient's left
    (or right) edge and back: its label ran into the 'L' in a compare panel 170 px wide."""
    import pyqtgraph as pg

    window, tools = compare_window
    panel = window.panels[0]
    letter = panel._letter_labels[edge].geometry()  # 'L' on the screen's right (radiological), 'R' left
    viewport = panel.viewport()
    x = letter.left() - 6 if edge == "right" else letter.right() + 6
    end = QtCore.QPoint(x - viewport.x(), letter.center().y() - viewport.y() + 5)
    start = QtCore.QPoint(viewport.width() // 2, end.y())
    for first, second in ((start, end), (end, start)):  # drawn toward the letter, and from it
        click_tool(qtbot, tools, "ruler")
        drag(viewport, QtCore.Qt.MouseButton.LeftButton, first, second)
        QtWidgets.QApplication.processEvents()
        texts = [item for item in panel.items() if isinstance(item, pg.TextItem) and item.isVisible()]
        assert texts
        for text in texts:
            box = panel.mapFromScene(text.sceneBoundingRect()).boundingRect().translated(viewport.pos())
            assert not box.intersects(letter), (box, letter)
        tools.controller.undo()


def _dock(window, title: str) -> QtWidgets.QDockWidget:
    dock = next(d for d in window.findChildren(QtWidgets.QDockWidget) if d.windowTitle() == title)
    dock.raise_()
    QtWidgets.QApplication.processEvents()
    return dock


def _shown_names(table: QtWidgets.QTableWidget) -> list[str]:
    """The column names as the header draws them in its sections (elided where too long)."""
    header = table.horizontalHeader()
    metrics = header.fontMetrics()
    return [
        metrics.elidedText(table.horizontalHeaderItem(c).text(), header.textElideMode(), header.sectionSize(c) - 12)
        for c in range(table.columnCount())
        if not table.isColumnHidden(c)
    ]


def docked_window_1600x950(qtbot, viewer_settings):
    """The window as a reader has it at 1600x950: the application's theme, every tool dock, the
    dock column at the width the window gives it when it first shows."""
    from app.cli.file_services import file_services
    from app.ui.application import create_application, install_tool_docks
    from app.ui.main_window import MainWindow

    create_application([])  # the theme the application runs with (its sizes count here)
    window = MainWindow(viewer_settings, file_services())
    qtbot.addWidget(window)
    assert install_tool_docks(window) == []
    window.resize(1600, 950)
    window.show()
    qtbot.waitExposed(window)
    return window


def _assert_fits(table: QtWidgets.QTableWidget, figures_whole: bool = False) -> None:
    """Every column inside the table (no sideways scrolling), each told apart by its shown name;
    ``figures_whole``: every cell's text read whole, not elided."""
    last = table.columnCount() - 1
    assert table.columnViewportPosition(last) + table.columnWidth(last) <= table.viewport().width()
    assert table.horizontalScrollBarPolicy() == QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    shown = _shown_names(table)
    assert len(set(shown)) == len(shown), shown  # every volume's column told apart
    assert all(table.horizontalHeaderItem(c).toolTip() for c in range(table.columnCount()))
    if figures_whole:  # they were cut to '9…2', '-4…48' in ~45 px columns
        metrics = table.fontMetrics()
        for row in range(table.rowCount()):
            for column in range(table.columnCount()):
                text = table.item(row, column).text()
                assert metrics.horizontalAdvance(text) + 6 <= table.columnWidth(column), (text, row, column)


def test_roi_statistics_of_a_four_volume_compare_fit_the_docks_at_1600x950(
    qtbot, viewer_settings, phantom, synthetic_phantom, tmp_path
):
    # The statistics already fit the Annotations dock; the Measurements dock's figures did not
    # say which synthesized volume a column was: centred, unelided names were cut at both ends
    # ('nthesized', 'nthesized', 'nthesized', 'ifference'), and the annotation tables ended
    # three columns in the same 'synthesiz…'.
    window = docked_window_1600x950(qtbot, viewer_settings)
    others = [synthetic_phantom.with_voxels(synthetic_phantom.voxels + n, name=f"toy synth {n}") for n in (1, 2)]
    window.show_compare(phantom, [synthetic_phantom, *others])
    qtbot.waitUntil(lambda: window.view.width() > 600, timeout=3000)
    tools = window.dock_widget("Annotations")
    _dock(window, "Annotations")
    drag_with_tool(qtbot, window, tools, "ellipse", [8.0, 6.0, 0])
    QtWidgets.QApplication.processEvents()
    tools.grab().save(str(tmp_path / "annotations_dock.png"))
    _assert_fits(tools.table)
    _assert_fits(tools.stats_table, figures_whole=True)
    assert tools.stats_table.columnCount() == 5
    # The list of annotations keeps what it can show readably (label, type, measure: its eight
    # columns were ~39 px, 'L…l', 'T…e', '10… ± …'); each volume's figures are in the row's tooltip.
    listing = tools.table
    shown = [listing.horizontalHeaderItem(c).text() for c in range(listing.columnCount()) if not listing.isColumnHidden(c)]
    assert shown == ["Label", "Type", "Measure"]
    assert all(listing.columnWidth(c) >= 80 for c in range(3))
    assert "toy synth 1" not in listing.item(0, 1).toolTip()  # (the compare names them 'synthesized 2')
    assert "synthesized 2: 97." in listing.item(0, 1).toolTip()
    measurements = window.dock_widget("Measurements")
    _dock(window, "Measurements")
    qtbot.waitUntil(lambda: measurements.table.columnWidth(0) > 30, timeout=3000)
    measurements.grab().save(str(tmp_path / "measurements_dock.png"))
    _assert_fits(measurements.table, figures_whole=True)
    # A figure cut in a narrow column is whole in its tooltip, with what it is and where.
    mean_on_synthesized = measurements.table.item(0, 1)
    assert mean_on_synthesized.toolTip() == f"Mean inside the ROI, synthesized 1: {mean_on_synthesized.text()}"
    assert tools.stats_table.item(0, 0).toolTip().startswith("mean on original: ")

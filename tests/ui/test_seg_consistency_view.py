"""Segmentation consistency in the viewer, used as a reader does: choose a segmentation plugin in
the Hallucination check dock, run the check, see the label maps over their panels and the
disagreement column, click the listed region to go there."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from app.core.label_overlays import DISAGREEMENT_COLOUR
from app.core.volume import Geometry
from app.ui.docks import TOOLS
from tests.plugins.plugin_factory import make_segmentation_plugin
from tests.segmentation_fixtures import VentriclePhantom
from tests.ui.conftest import widget_pos_of_lps

# RAS-like direction (i runs to the patient's right): the centroid must come back in LPS.
GEOMETRY = Geometry(np.array([30.0, 40.0, -10.0]), np.array([1.0, 1.0, 2.0]), np.diag([-1.0, -1.0, 1.0]))
PHANTOM = VentriclePhantom(
    shape=(12, 64, 64),
    grey=(slice(1, 11), slice(8, 56), slice(8, 56)),
    white_band=(slice(2, 10), slice(14, 24), slice(12, 52)),
    ventricle=(slice(4, 8), slice(36, 46), slice(38, 48)),  # k, j, i: the synthesized image fills it
)
VENTRICLE_CENTRE_IJK = (42.5, 40.5, 5.5)
GREY_MATTER_RGB = (200, 120, 120)  # tiny-tissue-seg's label 1 (tests.plugins.plugin_factory)
SCREENSHOTS = os.environ.get("SYNTHVIEW_SCREENSHOTS")  # a folder: the test leaves its screenshots there


@pytest.fixture
def seg_pair(tmp_path):
    return (
        *PHANTOM.volumes(GEOMETRY, name="T1"),
        make_segmentation_plugin(tmp_path / "seg", input={"modality": "MR"}),
    )


@pytest.fixture
def compared(main_window, seg_pair):
    """The pair compared, the segmentation plugin known: (original, synthesized, the dock's box)."""
    original, synthesized, plugin_folder = seg_pair
    _install_docks(main_window)
    assert main_window.dock_widget("GAN plugins").add_plugin_folder(plugin_folder)
    main_window.show_compare(original, [synthesized])
    return original, synthesized, main_window.dock_widget("Hallucination check").segmentation


def _pixel(panel, lps_mm) -> tuple[int, int, int]:
    image = panel.grab().toImage()
    point = widget_pos_of_lps(panel, lps_mm) + panel.viewport().pos()
    colour = image.pixelColor(point)
    return colour.red(), colour.green(), colour.blue()


def _install_docks(window) -> None:
    docks = ("GAN plugins", "Hallucination check")
    assert window.install_tools(tuple(tool for tool in TOOLS if tool.name in docks)) == {}
    plugins = window.dock_widget("GAN plugins")  # discovers in a thread: wait for its answer
    deadline = QtCore.QDeadlineTimer(30000)
    while plugins.discovering and not deadline.hasExpired():
        QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)


def _save(widget, name: str) -> None:
    if SCREENSHOTS:
        widget.grab().save(os.path.join(SCREENSHOTS, name))


def test_consistency_check_overlays_column_and_region_list(qtbot, main_window, seg_pair):
    original, synthesized, plugin_folder = seg_pair
    _install_docks(main_window)
    assert main_window.dock_widget("GAN plugins").add_plugin_folder(plugin_folder)
    dock = main_window.dock_widget("Hallucination check")
    box = dock.segmentation
    dock.parentWidget().raise_()  # the dock's tab, as a reader clicks it
    dock.tabs.setCurrentWidget(box)
    assert not box.run_button.isEnabled()  # nothing compared yet
    main_window.show_compare(original, [synthesized])
    assert box.original_combo.findText("tiny-tissue-seg") >= 0
    box.original_combo.setCurrentText("tiny-tissue-seg")
    qtbot.mouseClick(box.run_button, QtCore.Qt.MouseButton.LeftButton)
    assert box.is_running()  # off the UI thread
    qtbot.waitUntil(lambda: not box.is_running(), timeout=30000)
    assert box.run is not None, box.status_label.text()
    qtbot.waitUntil(lambda: len(main_window.panels) == 12, timeout=5000)  # + a disagreement column
    centroid = GEOMETRY.lps_from_index(VENTRICLE_CENTRE_IJK)

    # One region listed: volume, voxels, labels involved, centroid in LPS mm.
    assert box.table.rowCount() == 1
    headers = [box.table.horizontalHeaderItem(c).text() for c in range(box.table.columnCount())]
    row = {headers[c]: box.table.item(0, c).text() for c in range(len(headers))}
    assert float(row["mL"]) == pytest.approx(4 * 10 * 10 * 2.0 / 1000, rel=1e-3)
    assert row["Voxels"] == "400"
    assert row["Labels involved"] == "white matter -> grey matter"
    assert np.allclose([float(v) for v in row["Centroid\nLPS (mm)"].split()], centroid, atol=0.051)
    assert "white matter</b>: Dice 0.9" in box.summary_label.text()
    assert 'rgb(200, 120, 120)">&#9632;</span> <b>grey matter' in box.summary_label.text()  # legend
    assert "background-color: #303030" in box.summary_label.text()  # a pale label colour shows too

    # Clicking the row moves the crosshair of every panel to the region's centroid.
    rect = box.table.visualRect(box.table.model().index(0, 0))
    qtbot.mouseClick(box.table.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=rect.center())
    cursor = main_window.state.cursor_lps_mm
    assert np.all(np.abs(cursor - centroid) <= GEOMETRY.spacing_mm)  # within a voxel
    main_window.resize(1600, 900)
    QtCore.QCoreApplication.processEvents()

    axial = [p for p in main_window.panels if p.plane.value == "axial"]
    synthesized_panel = next(p for p in axial if p.content.volume is synthesized)
    disagreement_panel = next(p for p in axial if p.content.title.startswith("labels differ"))
    original_panel = next(p for p in axial if p.content.volume is original and p is not disagreement_panel)
    # The region is outlined and the crosshair sits on it: read the colours a little off centre.
    probe = centroid + np.array([-2.0, -2.0, 0.0])
    # Disagreement column: magenta over the original image where the labels differ, nothing elsewhere.
    r, g, b = _pixel(disagreement_panel, probe)
    assert r > g + 80 and b > g + 80, (r, g, b)
    assert DISAGREEMENT_COLOUR == (255, 0, 255)
    outside = GEOMETRY.lps_from_index((20, 30, 5.5))  # grey matter, same label in both maps
    r, g, b = _pixel(disagreement_panel, outside)
    assert abs(r - g) < 8 and abs(g - b) < 8, (r, g, b)
    # The synthesized panel: its grey-matter label drawn in the label table's colour (reddish).
    r, g, b = _pixel(synthesized_panel, probe)
    assert r > g + 20 and r > b + 20, (r, g, b)
    assert "labels: tiny-tissue-seg (derived)" in synthesized_panel.shown_title()
    _save(main_window, "seg_consistency_window.png")
    _save(dock, "seg_consistency_dock.png")
    # The labels involved are read whole in the dock, without sideways scrolling.
    labels_column = box.table.columnCount() - 1
    assert box.table.horizontalScrollBar().maximum() == 0
    assert box.table.columnViewportPosition(labels_column) + box.table.columnWidth(labels_column) <= (
        box.table.viewport().width()
    )
    assert box.table.item(0, labels_column).toolTip() == "white matter -> grey matter"

    # SYNTHETIC-safe: the synthesized panel keeps its label; the label maps are no open volumes.
    assert synthesized_panel.synthetic_labels() and synthesized_panel._synthetic_label.isVisible()
    assert not original_panel.synthetic_labels() and not disagreement_panel.synthetic_labels()
    assert all(not volume.is_label_map for volume in main_window.session.volumes)
    overlays = main_window.session.segmentation
    assert overlays.synthesized_labels.is_label_map and not overlays.synthesized_labels.is_synthetic
    assert overlays.synthesized_labels.modality == "SEG"

    # Toggle and opacity: the overlay goes and comes back; the disagreement column stays.
    box.overlay_check.click()
    r, g, b = _pixel(synthesized_panel, probe)
    assert abs(r - g) < 8 and abs(g - b) < 8, (r, g, b)  # plain grey image
    r, g, b = _pixel(disagreement_panel, probe)
    assert r > g + 80
    box.overlay_check.click()
    box.opacity_slider.setValue(100)
    r, g, b = _pixel(synthesized_panel, probe)
    assert (r, g, b) == pytest.approx(GREY_MATTER_RGB, abs=6)
    # The label under the mouse is read out with the value.
    assert "label grey matter" in synthesized_panel.readout_at_scene(synthesized_panel.lps_to_scene(probe))
    assert "label white matter" in original_panel.readout_at_scene(original_panel.lps_to_scene(probe))
    # Flicker shows the synthesized image in the original panel: the original's labels are not
    # drawn over it.
    main_window.view.toggle_flicker()
    assert original_panel.volume is synthesized and original_panel.shown_label_layer() is None
    assert "+ labels" not in original_panel.shown_title()
    main_window.view.toggle_flicker()
    assert original_panel.shown_label_layer() is not None

    # Another pair: the check is forgotten, the disagreement column goes.
    main_window.show_compare(synthesized, [original])
    qtbot.waitUntil(lambda: len(main_window.panels) == 9, timeout=5000)
    assert box.table.rowCount() == 0 and main_window.session.segmentation is None


def test_a_plugin_that_refuses_the_synthesized_volume_is_one_message_and_nothing_drawn(
    qtbot, main_window, seg_pair, tmp_path
):
    original, synthesized, plugin_folder = seg_pair
    ct_only = make_segmentation_plugin(tmp_path / "ct-seg", name="ct-seg", input={"modality": "CT"})
    _install_docks(main_window)
    plugins = main_window.dock_widget("GAN plugins")
    assert plugins.add_plugin_folder(plugin_folder) and plugins.add_plugin_folder(ct_only)
    box = main_window.dock_widget("Hallucination check").segmentation
    main_window.show_compare(original, [synthesized])
    box.original_combo.setCurrentText("tiny-tissue-seg")
    box.synthesized_combo.setCurrentText("ct-seg")
    qtbot.mouseClick(box.run_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not box.is_running(), timeout=30000)
    message = box.status_label.text()
    assert message.startswith("Segmentation check failed: segmenting the synthesized volume"), message
    assert "\n" not in message and "Traceback" not in message
    assert box.run is None and main_window.session.segmentation is None and len(main_window.panels) == 9
    assert box.run_button.isEnabled()  # can be run again with another choice


def test_a_check_finishing_after_the_pair_changed_is_not_shown(qtbot, main_window, seg_pair, compared):
    original, synthesized, box = compared
    assert box.start()
    main_window.show_compare(synthesized, [original])  # while it runs
    qtbot.waitUntil(lambda: not box.is_running(), timeout=30000)
    assert "changed during the check" in box.status_label.text()
    assert box.run is None and main_window.session.segmentation is None
    assert box.table.rowCount() == 0 and len(main_window.panels) == 9


def test_cancel_leaves_nothing_drawn(qtbot, main_window, compared):
    box = compared[2]
    qtbot.mouseClick(box.run_button, QtCore.Qt.MouseButton.LeftButton)
    assert box.cancel_button.isEnabled()
    qtbot.mouseClick(box.cancel_button, QtCore.Qt.MouseButton.LeftButton)  # before the first slice
    qtbot.waitUntil(lambda: not box.is_running(), timeout=30000)
    assert box.status_label.text() == "Cancelled; no label maps were made."
    assert box.run is None and main_window.session.segmentation is None and len(main_window.panels) == 9
    assert box.run_button.isEnabled() and not box.cancel_button.isEnabled()


def test_the_smallest_region_listed_is_a_setting_in_mm3(qtbot, main_window, compared):
    """The filled ventricle is 400 voxels of 2 mm^3: listed at the default (50 mm^3, jitter
    ignored), not at 1000 mm^3, where it is still counted in the per-label figures."""
    box = compared[2]
    assert box.min_region_spin.value() == 50.0 and box.jitter_check.isChecked()
    box.original_combo.setCurrentText("tiny-tissue-seg")
    box.min_region_spin.setValue(1000.0)
    qtbot.mouseClick(box.run_button, QtCore.Qt.MouseButton.LeftButton)
    assert not box.min_region_spin.isEnabled()  # fixed while it runs
    qtbot.waitUntil(lambda: not box.is_running(), timeout=30000)
    assert box.run is not None and box.table.rowCount() == 0
    assert box.run.result.disagreement_voxels == 400 and box.run.result.unlisted_regions == 1
    status = box.status_label.text()
    assert "0 disagreement region(s) listed" in status and "at least 1000 mm^3" in status, status
    assert "1 smaller region(s)" in status and box.min_region_spin.isEnabled()
    box.min_region_spin.setValue(800.0)
    qtbot.mouseClick(box.run_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not box.is_running(), timeout=30000)
    assert box.table.rowCount() == 1

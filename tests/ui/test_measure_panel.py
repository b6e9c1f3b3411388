"""The Measurements dock as a reader uses it: draw a ruler, read one profile curve per panel;
draw a signal and a background ROI, read noise SD / CNR per panel and the NPS curves."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PySide6 import QtWidgets

from app.annotations.commands import AddAnnotation
from app.annotations.line_profile import compare_line_profile
from app.annotations.roi_stats import roi_statistics
from app.annotations.shapes import RectangleRoi, Ruler
from app.core.planes import Plane
from app.ui.annotation_panel import install_annotation_tools
from app.ui.measure_panel import NO_BACKGROUND, install_measure_panel
from tests.ui.test_annotation_tools import drag_with_tool


@pytest.fixture
def measure_window(qtbot, main_window, phantom, synthetic_phantom):
    tools = install_annotation_tools(main_window)
    measure = install_measure_panel(main_window)
    main_window.show_compare(phantom, [synthetic_phantom], planes=[Plane.AXIAL])
    qtbot.waitUntil(lambda: len(tools.controller.overlays) == 3)
    QtWidgets.QApplication.processEvents()
    return main_window, tools, measure


def test_a_ruler_plots_one_profile_per_panel_over_one_mm_axis(qtbot, measure_window):
    window, tools, measure = measure_window
    drag_with_tool(qtbot, window, tools, "ruler", [12.0, 9.0, 0.0])
    ruler = next(iter(tools.controller.document))
    assert isinstance(ruler, Ruler) and tools.controller.selected_id == ruler.annotation_id
    assert list(measure.curves) == ["original", "synthesized", "difference"]
    expected = compare_line_profile(tools.controller.volumes, ruler.start_lps, ruler.end_lps)
    for name, curve in measure.curves.items():
        x, y = curve.getData()
        assert x[-1] == pytest.approx(ruler.length_mm) and x[-1] == pytest.approx(15.0, abs=1.0)
        assert np.allclose(y, expected[name].values, equal_nan=True)
    original, synthesized = (measure.curves[n].getData()[1] for n in ("original", "synthesized"))
    assert not np.allclose(original, synthesized)  # the synthetic phantom carries noise
    assert "Line profile" in measure.title.text()
    assert measure.plot.getPlotItem().getAxis("bottom").labelText.startswith("distance")
    assert not measure.background_combo.isEnabled()  # a ruler has no background
    shot = os.environ.get("SYNTHVIEW_SCREENSHOT_DIR")
    if shot:
        measure.resize(520, 640)
        measure.grab().save(os.path.join(shot, "measure_profile.png"))


def test_rois_show_noise_cnr_and_nps_per_panel(qtbot, measure_window, tmp_path):
    window, tools, measure = measure_window
    tools.label_edit.setText("lesion")
    drag_with_tool(qtbot, window, tools, "rectangle", [16.0, 18.0, 0.0])
    lesion = tools.controller.document.get(tools.controller.selected_id)
    background = RectangleRoi(
        label="background",
        center_lps=lesion.center_lps + [0.0, -14.0, 0.0],
        half_width_mm=6.0,
        half_height_mm=4.0,
        axis_u_lps=lesion.axis_u_lps,
        axis_v_lps=lesion.axis_v_lps,
    )
    tools.controller.stack.push(AddAnnotation(tools.controller.document, background))
    tools.controller.select(lesion.annotation_id)
    assert isinstance(lesion, RectangleRoi)
    assert measure.background_combo.currentText() == "background"  # chosen by its label
    names = [measure.table.horizontalHeaderItem(c).text() for c in range(measure.table.columnCount())]
    assert names == ["original", "synthesized", "difference"]
    for column, name in enumerate(names):
        volume = tools.controller.volumes[name]
        signal, back = roi_statistics(lesion, volume), roi_statistics(background, volume)
        assert measure.table.item(1, column).text().split()[0] == f"{signal.sd:.4g}"
        assert measure.table.item(2, column).text() == str(signal.voxel_count)
        by_hand = abs(signal.mean - back.mean) / back.sd if back.sd > 0 else float("nan")
        cell = measure.table.item(3, column).text()
        assert cell == (f"{by_hand:.4g}" if np.isfinite(by_hand) else "—")
    assert list(measure.curves) == names  # an NPS curve per panel
    x, y = measure.curves["synthesized"].getData()
    assert x[0] == 0.0 and np.all(y >= 0) and y[1:].max() > 0
    assert measure.plot.getPlotItem().getAxis("bottom").labelText.startswith("spatial frequency")
    measure.background_combo.setCurrentIndex(measure.background_combo.findText(NO_BACKGROUND))
    assert measure.table.item(3, 0).text() == "—"
    dock = window.findChild(QtWidgets.QDockWidget, "dock_Measurements")
    assert dock is not None and dock.widget() is measure
    shot = os.environ.get("SYNTHVIEW_SCREENSHOT_DIR")
    if shot:
        measure.resize(520, 640)
        measure.grab().save(os.path.join(shot, "measure_nps.png"))


def test_an_roi_too_small_for_the_nps_is_said_once(qtbot, measure_window):
    # The reason was repeated for every panel ('original: the noise power spectrum needs an ROI
    # of at least 8 x 8 voxels, this one covers 7 x 3; synthesized: the noise power ...'):
    # ten lines of the dock with four volumes compared.
    window, tools, measure = measure_window
    drag_with_tool(qtbot, window, tools, "ellipse", [8.0, 6.0, 0])
    title = measure.title.text()
    assert "not measured on any panel: " in title
    assert title.count("needs an ROI of at least") == 1 and "original:" not in title

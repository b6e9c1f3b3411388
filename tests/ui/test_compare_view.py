"""Compare layout: linked panels, shared window, difference colour bar, modes, other geometries."""

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from app.core.orientation_phantom import LEFT_MARKER, orientation_phantom
from app.core.planes import Plane
from app.core.quantity_map import MapKind, QuantityMap
from app.core.resample import resample_onto
from app.core.viewer_state import ViewerState
from app.core.volume import Geometry
from app.ui.compare_view import CompareView
from tests.ui.conftest import pixel_at, widget_pos_of_lps


def make_compare(qtbot, original, others, planes=None):
    view = CompareView(ViewerState(original), original, others, planes or list(Plane))
    view.resize(1000, 700)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    view.grid.reset_zoom()
    QtWidgets.QApplication.processEvents()
    return view


def test_three_by_three_grid_is_linked_and_labelled(qtbot, phantom, synthetic_phantom):
    view = make_compare(qtbot, phantom, [synthetic_phantom])
    assert len(view.panels) == 9
    by_column = [view.panels[i::3] for i in range(3)]
    assert all(not p._synthetic_label.isVisible() for p in by_column[0])
    assert all(p._synthetic_label.isVisible() for p in by_column[1] + by_column[2])
    # Zoom one axial panel: the other axial panels follow.
    axial = view.grid.panels_for_plane(Plane.AXIAL)
    axial[0].view_box.scaleBy((0.5, 0.5))
    QtWidgets.QApplication.processEvents()
    reference_centre = axial[0].view_box.viewRect().center()
    for panel in axial[1:]:
        # Same centre and scale (panels may differ by a pixel in size, hence the tolerance).
        centre = panel.view_box.viewRect().center()
        assert abs(centre.x() - reference_centre.x()) < 0.2 and abs(centre.y() - reference_centre.y()) < 0.2
        assert np.allclose(panel.view_box.viewPixelSize(), axial[0].view_box.viewPixelSize(), rtol=0.02)
    # Original and synthesized share window/level; the difference keeps its symmetric range.
    view.state.apply_preset("Bone")
    assert axial[0].image_item.levels[0] == axial[1].image_item.levels[0] == pytest.approx(-500)
    span = view.difference.symmetric_range
    assert tuple(axial[2].image_item.levels) == pytest.approx((-span, span))
    assert view.color_bar.labels()[0].startswith(f"{span:+.4g}")


def test_difference_panel_is_neutral_where_volumes_agree(qtbot, phantom):
    brighter = phantom.with_voxels(phantom.voxels + (phantom.voxels == LEFT_MARKER) * 500.0, name="brighter")
    view = make_compare(qtbot, phantom, [brighter], [Plane.AXIAL])
    difference_panel = view.panels[2]
    left = widget_pos_of_lps(difference_panel, phantom.geometry.lps_from_index([29, 20, 12]))
    body = widget_pos_of_lps(difference_panel, phantom.geometry.lps_from_index([5, 5, 12]))
    # original - synthesized = -500 there: the negative (blue/cyan) end of the dark-centred map.
    red, green, blue = pixel_at(difference_panel.viewport(), left)
    assert blue > 200 and red < 120
    assert max(pixel_at(difference_panel.viewport(), body)) < 40  # zero: dark in a dark UI
    assert "original - synthesized" in view.sign_label.text()
    # The white-centred map stays on offer.
    view.difference_map_combo.setCurrentIndex(1)
    QtWidgets.QApplication.processEvents()
    assert min(pixel_at(difference_panel.viewport(), body)) > 240


def test_difference_window_follows_the_flag_level_and_the_bar_says_what_it_shows(qtbot, phantom):
    brighter = phantom.with_voxels(phantom.voxels + (phantom.voxels == LEFT_MARKER) * 500.0, name="brighter")
    view = make_compare(qtbot, phantom, [brighter], [Plane.AXIAL])
    bar = view.color_bar
    assert bar.title == "original - synthesized" and bar.units
    assert bar.units in bar.description() and "original - synthesized" in bar.description()
    view.set_flag_level(40.0)
    difference_panel = view.panels[2]
    assert tuple(difference_panel.image_item.levels) == pytest.approx((-80.0, 80.0))
    assert bar.labels()[0] == "+80" and bar.flag_level == 40.0 and "flag level" in bar.description()
    view.set_flag_level(None)
    span = view.difference.symmetric_range
    assert tuple(difference_panel.image_item.levels) == pytest.approx((-span, span))
    bar.grab().save("/tmp/color_bar.png")


def test_series_of_other_geometry_is_linked_by_world_position(qtbot, phantom):
    # Second series: RAS order, 0.8 mm grid, shifted field of view - same patient content.
    geometry = Geometry(np.array([30.0, 70.0, -5.0]), np.array([0.8, 0.8, 1.0]), np.diag([-1.0, -1.0, 1.0]))
    other = resample_onto(phantom, geometry, (48, 70, 55), linear=False)
    other.name, other.modality = "other grid", "MR"
    view = make_compare(qtbot, phantom, [other], [Plane.AXIAL, Plane.CORONAL])
    target = phantom.geometry.lps_from_index([29, 20, 12])
    qtbot.mouseClick(
        view.panels[0].viewport(),
        QtCore.Qt.MouseButton.LeftButton,
        pos=widget_pos_of_lps(view.panels[0], target),
    )
    cursor = view.state.cursor_lps_mm
    for panel in view.panels[:2]:
        assert f"value {LEFT_MARKER:g}" in panel.readout_at_scene(panel.lps_to_scene(cursor))
    # The second panel draws the marker at the same screen place as the first.
    for panel in view.panels[:2]:
        assert pixel_at(panel.viewport(), widget_pos_of_lps(panel, target))[0] > 40
    # Difference computed on the original grid after world resampling: zero inside the overlap.
    values = view.difference.volume.voxels
    assert np.nanmax(np.abs(values[10:14, 10:30, 10:25])) == 0


def test_overlay_checkerboard_and_flicker_modes(qtbot, phantom, synthetic_phantom):
    view = make_compare(qtbot, phantom, [synthetic_phantom], [Plane.AXIAL])
    original = view.panels[0]
    view.set_mode("overlay")
    assert original._overlay_item.isVisible() and view.opacity_slider.isEnabled()
    view.opacity_slider.setValue(20)
    assert original._overlay_item.opacity() == pytest.approx(0.2)
    view.set_mode("checkerboard")
    assert not original._overlay_item.isVisible()
    drawn = original.image_item.image
    tiles_from_partner = np.isclose(
        drawn, view._partner_on_grid.voxels[12][::1, ::1][: drawn.shape[0], : drawn.shape[1]]
    )
    assert tiles_from_partner.any() and not tiles_from_partner.all()
    view.set_mode("side by side")
    view.toggle_flicker()
    assert view.mode_combo.currentText() == "flicker" and original.volume is view._partner_on_grid
    assert original._synthetic_label.isVisible()
    view.toggle_flicker()
    assert original.volume is phantom and not original._synthetic_label.isVisible()


def test_a_row_holds_up_to_four_volumes(qtbot, phantom):
    others = [phantom.with_voxels(phantom.voxels * f, name=f"x{f}") for f in (1.1, 1.2, 1.3)]
    view = make_compare(qtbot, phantom, others, [Plane.CORONAL])
    assert len(view.panels) == 5  # four volumes + the difference of the first pair
    with pytest.raises(ValueError):
        CompareView(ViewerState(phantom), phantom, others + [phantom], [Plane.AXIAL])


def test_threshold_mask_shows_on_every_image_panel(qtbot, phantom, synthetic_phantom):
    view = make_compare(qtbot, phantom, [synthetic_phantom], [Plane.AXIAL])
    view.state.set_display(threshold=500.0)
    assert [p._mask_item.isVisible() for p in view.panels] == [True, True, False]


def test_orientation_phantom_constant(phantom):
    assert orientation_phantom().voxels.shape == phantom.voxels.shape


def test_other_modality_keeps_its_own_adjustable_window(qtbot, phantom):
    from tests.ui.conftest import drag

    ct = phantom.with_voxels(phantom.voxels - 1000.0, modality="CT", units="HU", name="ct")
    view = make_compare(qtbot, phantom, [ct], [Plane.AXIAL, Plane.CORONAL])
    shared_before = view.state.display.window
    ct_axial, ct_coronal = view.panels[1], view.panels[4]
    own_before = tuple(ct_axial.image_item.levels)
    assert own_before != pytest.approx((shared_before.low, shared_before.high))
    centre = ct_axial.viewport().rect().center()
    drag(ct_axial.viewport(), QtCore.Qt.MouseButton.RightButton, centre, centre + QtCore.QPoint(40, 0))
    assert view.state.display.window == shared_before  # the MR window did not move
    own_after = tuple(ct_axial.image_item.levels)
    assert own_after[1] - own_after[0] > own_before[1] - own_before[0]
    assert tuple(ct_coronal.image_item.levels) == pytest.approx(own_after)  # same series, other plane
    # The difference panel's symmetric range cannot be dragged away from zero.
    difference_panel = view.panels[2]
    levels = tuple(difference_panel.image_item.levels)
    drag(
        difference_panel.viewport(), QtCore.Qt.MouseButton.RightButton, centre, centre + QtCore.QPoint(0, 40)
    )
    assert tuple(difference_panel.image_item.levels) == pytest.approx(levels)


def test_one_plane_row_or_all_three(qtbot, phantom, synthetic_phantom):
    view = make_compare(qtbot, phantom, [synthetic_phantom])
    view.plane_combo.setCurrentText("coronal")
    visible = [panel for panel in view.panels if panel.isVisible()]
    assert len(visible) == 3 and all(panel.plane is Plane.CORONAL for panel in visible)
    axial = view.panels[0]
    view.state.step(Plane.AXIAL, 2)  # hidden rows skip the work, then catch up when shown
    assert axial._shown_position_mm != pytest.approx(view.state.cursor_lps_mm[2])
    view.show_planes("all planes")
    assert all(panel.isVisible() for panel in view.panels)
    assert axial._shown_position_mm == pytest.approx(view.state.cursor_lps_mm[2])


def test_a_map_column_gets_its_own_window_and_heat_colours(qtbot, phantom, synthetic_phantom):
    magnitude = np.abs(synthetic_phantom.voxels - phantom.voxels)
    heat = synthetic_phantom.with_voxels(
        magnitude, name="absolute difference", quantity_map=QuantityMap(MapKind.ABSOLUTE_DIFFERENCE)
    )
    view = make_compare(qtbot, phantom, [synthetic_phantom, heat], [Plane.AXIAL])
    map_panel = view.panels[2]
    assert map_panel.content.colormap == "hot" and map_panel.content.title.startswith("map:")
    low, high = map_panel.image_item.levels
    assert 0 <= low < high <= float(magnitude.max())  # its own range, not the MR window
    assert map_panel._synthetic_label.isVisible()  # derived from the synthesized volume


def test_what_is_on_screen_after_partial_redraws_equals_a_full_redraw(qtbot, phantom, synthetic_phantom):
    """Panels repaint only what changed (MinimalViewportUpdate: the crosshair's strips, a new
    slice, the corner text's band). The window's pixels after scrolls, a cursor move along every
    axis, a window change, a zoom and a pan must be those of a panel-by-panel full repaint."""
    view = make_compare(qtbot, phantom, [synthetic_phantom])
    state = view.state

    def on_screen() -> np.ndarray:  # the offscreen platform's copy of what was painted
        image = view.screen().grabWindow(view.winId()).toImage()
        image = image.convertToFormat(image.Format.Format_RGB32)
        return np.array(image.constBits(), dtype=np.uint8).reshape(image.height(), image.width(), 4).copy()

    steps = [
        lambda: state.step(Plane.AXIAL, 1),
        lambda: state.step(Plane.CORONAL, -2),
        lambda: state.set_cursor(state.cursor_lps_mm + np.array([3.0, -2.0, 4.0])),
        lambda: state.apply_preset("Bone"),
        lambda: state.step(Plane.SAGITTAL, 1),
        lambda: view.panels[0].view_box.scaleBy((0.7, 0.7)),  # zoom: linked panels follow
        lambda: view.panels[3].view_box.translateBy(x=6.0, y=-4.0),  # pan
    ]
    for step in steps:
        step()
        QtWidgets.QApplication.processEvents()
        partial = on_screen()
        for panel in view.panels:
            panel.viewport().repaint()
        full = on_screen()
        differing = np.argwhere(np.any(partial != full, axis=2))
        first = differing[:3].tolist()
        assert len(differing) == 0, f"{len(differing)} stale pixels, first at (row, column) {first}"

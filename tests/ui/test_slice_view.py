"""SliceView driven as a radiologist uses it: scroll, click, right-drag, read values."""

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from app.core.orientation_phantom import LEFT_MARKER, POSTERIOR_MARKER, orientation_phantom
from app.core.planes import Plane, slice_position_mm
from app.core.viewer_state import ViewerState
from app.ui.panel_grid import PanelGrid
from app.ui.slice_view import PanelContent
from tests.ui.conftest import drag, pixel_at, wheel, widget_pos_of_lps


def mpr_grid(qtbot, volume):
    """Axial, coronal and sagittal panels of ``volume`` in a row, shown and fitted."""
    state = ViewerState(volume)
    state.set_window(state.display.window.from_range(0, 3000))
    grid = PanelGrid(state, [[(PanelContent(volume), plane) for plane in Plane]])
    grid.resize(900, 320)
    qtbot.addWidget(grid)
    grid.show()
    qtbot.waitExposed(grid)
    grid.reset_zoom()
    QtWidgets.QApplication.processEvents()
    return state, grid


@pytest.fixture
def mpr(qtbot, phantom):
    return mpr_grid(qtbot, phantom)


def test_keys_and_wheel_scroll_one_slice_along_the_panel_normal(qtbot, mpr):
    state, grid = mpr
    axial, coronal, _ = grid.panels
    start = state.cursor_lps_mm
    axial.setFocus()
    qtbot.keyClick(axial, QtCore.Qt.Key.Key_Up)
    assert np.allclose(state.cursor_lps_mm - start, [0, 0, 2.0])  # 2 mm slices along k = S
    qtbot.keyClick(axial, QtCore.Qt.Key.Key_PageDown)
    assert np.allclose(state.cursor_lps_mm - start, [0, 0, -18.0])
    centre = coronal.viewport().rect().center()
    wheel(coronal.viewport(), centre, notches=-2)
    assert np.allclose(state.cursor_lps_mm - start, [0, -3.0, -18.0])  # 1.5 mm along j = P


def test_ctrl_wheel_zooms_instead_and_linked_panels_follow(qtbot, phantom):
    state = ViewerState(phantom)
    grid = PanelGrid(state, [[(PanelContent(phantom), Plane.AXIAL), (PanelContent(phantom), Plane.AXIAL)]])
    grid.resize(600, 300)
    qtbot.addWidget(grid)
    grid.show()
    qtbot.waitExposed(grid)
    first, second = grid.panels
    before_cursor = state.cursor_lps_mm
    before_range = np.array(first.view_box.viewRange())
    wheel(first.viewport(), first.viewport().rect().center(), 3, QtCore.Qt.KeyboardModifier.ControlModifier)
    QtWidgets.QApplication.processEvents()
    after_range = np.array(first.view_box.viewRange())
    assert np.allclose(state.cursor_lps_mm, before_cursor)
    assert np.ptp(after_range[0]) < np.ptp(before_range[0])
    assert np.allclose(second.view_box.viewRange(), first.view_box.viewRange(), atol=1e-6)


def test_click_moves_the_crosshair_in_world_coordinates_for_every_plane(qtbot, mpr):
    state, grid = mpr
    axial, coronal, sagittal = grid.panels
    target = phantom_point = orientation_phantom().geometry.lps_from_index([25, 10, 12])
    qtbot.mouseClick(
        axial.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=widget_pos_of_lps(axial, phantom_point)
    )
    cursor = state.cursor_lps_mm
    # In-plane position within one screen pixel (about 0.3 mm here); slice unchanged.
    assert abs(cursor[0] - target[0]) < 0.5 and abs(cursor[1] - target[1]) < 0.5
    assert coronal._vertical_line.value() == pytest.approx(cursor[0])
    assert sagittal._vertical_line.value() == pytest.approx(cursor[1])
    assert coronal._shown_position_mm == pytest.approx(slice_position_mm(Plane.CORONAL, cursor))


def test_right_drag_changes_the_shared_window_and_the_rendered_pixels(qtbot, mpr):
    state, grid = mpr
    axial = grid.panels[0]
    body_point = axial.state.cursor_lps_mm
    pos = widget_pos_of_lps(axial, body_point)
    before = pixel_at(axial.viewport(), pos)
    window_before = state.display.window
    centre = axial.viewport().rect().center()
    # Drag up: lower level -> brighter; drag right: wider window.
    drag(axial.viewport(), QtCore.Qt.MouseButton.RightButton, centre, centre + QtCore.QPoint(30, -60))
    window = state.display.window
    assert window.center < window_before.center and window.width > window_before.width
    after = pixel_at(axial.viewport(), pos)
    assert after[0] > before[0]
    # Every panel shows the same shared window.
    for panel in grid.panels:
        assert panel.image_item.levels[0] == pytest.approx(window.low)


def test_readout_gives_index_lps_and_value(qtbot, mpr):
    state, grid = mpr
    axial = grid.panels[0]
    phantom = axial.content.volume
    lps = phantom.geometry.lps_from_index([29, 20, 12])  # inside the left marker
    text = axial.readout_at_scene(axial.lps_to_scene(lps))
    assert "voxel (29, 20, 12)" in text
    assert f"LPS ({lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f}) mm" in text
    assert f"value {LEFT_MARKER:g}" in text


def test_rendered_markers_sit_on_the_radiological_sides(qtbot, mpr):
    state, grid = mpr
    axial = grid.panels[0]
    phantom = axial.content.volume
    left = widget_pos_of_lps(axial, phantom.geometry.lps_from_index([29, 20, 12]))
    posterior = widget_pos_of_lps(axial, phantom.geometry.lps_from_index([18, 34, 12]))
    centre = widget_pos_of_lps(axial, phantom.geometry.lps_from_index([16, 20, 12]))
    assert left.x() > centre.x() + 20 and abs(left.y() - centre.y()) < 3
    assert posterior.y() > centre.y() + 20
    grey_left, grey_posterior = pixel_at(axial.viewport(), left)[0], pixel_at(axial.viewport(), posterior)[0]
    assert grey_left == pytest.approx(LEFT_MARKER / 3000 * 255, abs=3)
    assert grey_posterior == pytest.approx(POSTERIOR_MARKER / 3000 * 255, abs=3)


def test_invert_colormap_and_threshold_mask_show_on_the_panel(qtbot, mpr):
    state, grid = mpr
    axial = grid.panels[0]
    phantom = axial.content.volume
    left = widget_pos_of_lps(axial, phantom.geometry.lps_from_index([29, 20, 12]))
    normal = pixel_at(axial.viewport(), left)
    state.set_display(invert=True)
    inverted = pixel_at(axial.viewport(), left)
    assert inverted[0] == pytest.approx(255 - normal[0], abs=3)
    state.set_display(invert=False, threshold=500.0)
    masked = pixel_at(axial.viewport(), left)
    assert masked[0] > masked[1] + 40  # red tint over voxels above the threshold
    body = widget_pos_of_lps(axial, phantom.geometry.lps_from_index([5, 5, 12]))
    r, g, b = pixel_at(axial.viewport(), body)
    assert abs(r - g) < 4  # below threshold: no tint


def test_panel_exposes_hooks_for_tools(qtbot, mpr):
    _, grid = mpr
    sagittal = grid.panels[2]
    point = np.array([3.0, 40.0, 10.0])
    assert sagittal.plane is Plane.SAGITTAL
    assert sagittal.image_item.getViewBox() is sagittal.view_box
    scene = sagittal.lps_to_scene(point)
    back = sagittal.scene_to_lps(scene)
    # In-plane coordinates come back exactly; the normal coordinate is the shown slice.
    assert back[1:] == pytest.approx(point[1:])
    assert back[0] == pytest.approx(sagittal.state.cursor_lps_mm[0])


def test_synthetic_label_follows_what_is_drawn(qtbot, phantom, synthetic_phantom):
    state = ViewerState(phantom)
    grid = PanelGrid(
        state, [[(PanelContent(phantom), Plane.AXIAL), (PanelContent(synthetic_phantom), Plane.AXIAL)]]
    )
    qtbot.addWidget(grid)
    grid.show()
    original, synthesized = grid.panels
    assert synthesized.synthetic_labels() == ["SYNTHETIC — toy-gan 0.1"]
    assert synthesized._synthetic_label.isVisible()
    assert not original._synthetic_label.isVisible()
    original.set_partner(synthetic_phantom, "overlay")
    assert original._synthetic_label.isVisible()
    original.set_partner(synthetic_phantom, "flicker")
    assert not original._synthetic_label.isVisible()
    original.toggle_flicker()
    assert original.volume is synthetic_phantom and original._synthetic_label.isVisible()
    # A hidden label comes back on the next redraw: it cannot be switched off.
    synthesized._synthetic_label.hide()
    state.step(Plane.AXIAL, 1)
    assert synthesized._synthetic_label.isVisible()


def test_ct_readout_is_in_hounsfield_units_and_presets_apply(qtbot):
    from app.core.volume import Geometry, Volume

    ct = Volume(
        np.full((5, 6, 7), -1000.0, np.float32), Geometry.identity(), modality="CT", units="HU", name="ct"
    )
    ct.voxels[2, 3, 4] = 130.0
    state = ViewerState(ct)
    grid = PanelGrid(state, [[(PanelContent(ct), Plane.AXIAL)]])
    qtbot.addWidget(grid)
    panel = grid.panels[0]
    assert state.display.window.center == 50 and state.display.window.width == 400  # soft tissue default
    assert panel.readout_at_scene(panel.lps_to_scene([4.0, 3.0, 2.0])).endswith("value 130 HU")
    assert "outside" in panel.readout_at_scene(panel.lps_to_scene([40.0, 3.0, 2.0]))
    state.apply_preset("Lung")
    assert tuple(panel.image_item.levels) == pytest.approx((-1350, 150))


def test_oblique_volume_is_drawn_in_world_orientation(qtbot):
    from app.core.volume import Geometry, Volume

    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    volume = Volume(
        np.ones((6, 20, 20), np.float32), Geometry(np.zeros(3), np.ones(3), rotation), name="oblique"
    )
    volume.voxels[:, :, 15:] = 5.0  # high i side
    state = ViewerState(volume)
    grid = PanelGrid(state, [[(PanelContent(volume), Plane.AXIAL)]])
    qtbot.addWidget(grid)
    panel = grid.panels[0]
    point = volume.geometry.lps_from_index([17, 10, 3])
    assert "value 5" in panel.readout_at_scene(panel.lps_to_scene(point))
    image = panel.image_item.image
    assert np.isnan(image).any() and np.nanmax(image) == 5.0


def test_middle_drag_pans_without_moving_the_cursor(qtbot, mpr):
    state, grid = mpr
    axial = grid.panels[0]
    cursor = state.cursor_lps_mm
    before = axial.view_box.viewRect().center()
    centre = axial.viewport().rect().center()
    drag(axial.viewport(), QtCore.Qt.MouseButton.MiddleButton, centre, centre + QtCore.QPoint(40, 0))
    after = axial.view_box.viewRect().center()
    assert after.x() < before.x() - 1  # content follows the hand: the view moves the other way
    assert abs(after.y() - before.y()) < 0.5
    assert np.allclose(state.cursor_lps_mm, cursor)


def test_corner_shows_slice_number_position_and_window(qtbot, mpr):
    state, grid = mpr
    axial, coronal, sagittal = grid.panels
    # Phantom: 24 slices of 2 mm from z = -5; the cursor starts on slice index 12 (z = 19).
    assert axial.position_text() == "13/24  S 19.0 mm  W 3000 L 1500"
    state.step(Plane.AXIAL, -2)
    assert axial.position_text().startswith("11/24  S 15.0 mm")
    assert coronal.position_text().startswith("21/40  P 50.0 mm")
    assert sagittal.position_text().startswith("17/32  L 6.0 mm")
    # 11.1 mm to the patient's right (LPS x = -11.1) reads as a radiologist says it.
    state.set_cursor(state.cursor_lps_mm * [0, 1, 1] + [-11.1, 0, 0])
    assert sagittal.position_text().split("  ")[1] == "R 11.1 mm"
    state.set_cursor(state.cursor_lps_mm * [1, 0, 1] + [0, -3.0, 0])
    assert coronal.position_text().split("  ")[1] == "A 3.0 mm"
    axial.viewport().repaint()
    assert axial.drawn_position_text == axial.position_text()


def test_window_changes_reuse_the_cut_slice(qtbot, mpr, monkeypatch):
    import app.ui.slice_view as slice_view_module

    state, grid = mpr
    calls = []
    original_extract = slice_view_module.extract_slice
    monkeypatch.setattr(
        slice_view_module, "extract_slice", lambda *a: calls.append(a) or original_extract(*a)
    )
    for width in (1000, 1200, 1400):
        state.set_window(state.display.window.from_range(0, width))
    assert calls == []  # the display changed, the slices did not
    state.step(Plane.AXIAL, 1)
    assert len(calls) == 1  # only the axial panel cuts a new slice


def test_a_reader_study_image_opened_in_the_viewer_says_it_may_be_synthetic(qtbot, phantom, tmp_path):
    """Package images carry no provenance (blinding) but one flag alike: outside the reading
    window the viewer labels them; the reading window does not (its readers know)."""
    from app.io.nifti import load_nifti, save_nifti
    from app.readerstudy.package import blinded_volume
    from app.ui.reading.session_window import ReadingSliceView

    path = save_nifti(blinded_volume(phantom, "c-1a2b"), tmp_path / "c-1a2b.nii.gz")
    package_image = load_nifti(path)
    assert not package_image.is_synthetic and package_image.blinded_study_image
    grid = PanelGrid(ViewerState(package_image), [[(PanelContent(package_image), Plane.AXIAL)]])
    qtbot.addWidget(grid)
    grid.show()
    (panel,) = grid.panels
    assert panel.synthetic_labels() == ["BLINDED STUDY IMAGE — MAY BE SYNTHETIC"]
    assert panel._synthetic_label.isVisible()
    reading = ReadingSliceView(
        ViewerState(package_image), PanelContent(package_image), allow_scroll=True, window_locked=False
    )
    qtbot.addWidget(reading)
    reading.show()
    assert reading.synthetic_labels() == [] and not reading._synthetic_label.isVisible()


def test_a_click_beside_a_two_slice_image_keeps_the_crosshair_on_it(qtbot):
    from app.core.volume import Geometry, Volume

    thin = Volume(
        np.random.default_rng(0).uniform(0, 100, (2, 40, 40)).astype(np.float32),
        Geometry(np.zeros(3), np.array([1.0, 1.0, 3.0]), np.eye(3)),
        "MR",
    )
    state, grid = mpr_grid(qtbot, thin)
    _axial, coronal, _sagittal = grid.panels
    far_above = np.array([20.0, 20.0, 15.0])  # 12 mm above the top slice, on the black
    qtbot.mouseClick(
        coronal.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=widget_pos_of_lps(coronal, far_above)
    )
    cursor = state.cursor_lps_mm
    assert cursor[2] == pytest.approx(3.0)  # the top slice's centre, not off the image
    assert abs(cursor[0] - 20.0) < 1.0  # the in-plane position clicked is kept

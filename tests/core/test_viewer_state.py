"""Linked cursor and shared display state, without any display."""

import numpy as np
import pytest

from app.core.display import CT_PRESETS_HU, WindowLevel
from app.core.orientation_phantom import orientation_phantom
from app.core.planes import Plane
from app.core.resample import resample_like, resample_onto
from app.core.viewer_state import ViewerState
from app.core.volume import Geometry, Volume


def test_step_moves_one_slice_along_the_normal_and_stays_inside():
    volume = orientation_phantom(spacing_mm=(1.0, 1.5, 2.0))
    state = ViewerState(volume)
    seen = []
    state.cursor_changed.connect(seen.append)
    start = state.cursor_lps_mm
    state.step(Plane.AXIAL, 1)
    assert np.allclose(state.cursor_lps_mm - start, [0, 0, 2.0])
    state.step(Plane.SAGITTAL, -3)
    assert np.allclose(state.cursor_lps_mm - start, [-3.0, 0, 2.0])
    state.step(Plane.CORONAL, 1000)
    _, high = volume.bounds_lps_mm()
    assert state.cursor_lps_mm[1] == pytest.approx(high[1])
    assert len(seen) == 3


def test_window_adjust_presets_and_events():
    volume = orientation_phantom()
    state = ViewerState(volume)
    changes = []
    state.display_changed.connect(changes.append)
    state.apply_preset("Lung")
    assert state.display.window == CT_PRESETS_HU["Lung"]
    state.adjust_window(10, -100)
    assert state.display.window.center == -590 and state.display.window.width == 1400
    state.set_display(invert=True)
    assert len(changes) == 3 and changes[-1].invert
    with pytest.raises(ValueError):
        state.apply_preset("nonsense")


def test_resample_goes_through_world_coordinates_not_voxel_index():
    # Source: 1 mm grid with value = x in mm. Target: 2 mm grid shifted by 3 mm in x, RAS order.
    nk, nj, ni = 6, 7, 20
    x_mm = np.arange(ni, dtype=np.float32)
    source = Volume(np.broadcast_to(x_mm, (nk, nj, ni)).copy(), Geometry.identity())
    target_geometry = Geometry(
        np.array([15.0, 6.0, 0.0]), np.array([2.0, 1.0, 1.0]), np.diag([-1.0, -1.0, 1.0])
    )
    result = resample_onto(source, target_geometry, (3, 4, 5))
    # Target i runs towards the right (-x): x = 15 - 2 i.
    assert np.allclose(result.voxels[0, 0], [15, 13, 11, 9, 7])
    assert np.allclose(resample_like(source, source).voxels, source.voxels)
    outside = resample_onto(source, Geometry.identity(origin_lps_mm=(100, 0, 0)), (1, 1, 1))
    assert np.isnan(outside.voxels).all()


def test_reorient_towards_lps_keeps_every_voxel_at_its_world_position():
    from app.core.orientation_phantom import orientation_phantom
    from app.core.resample import reorient_towards_lps

    permuted = np.array([[0, 0, 1.0], [1.0, 0, 0], [0, -1.0, 0]])
    volume = orientation_phantom(size_ijk=(7, 5, 6), direction=permuted)
    volume = volume.with_voxels(np.random.default_rng(2).random(volume.voxels.shape).astype(np.float32))
    aligned = reorient_towards_lps(volume)
    assert np.allclose(aligned.geometry.direction, np.eye(3))
    for ijk in [(0, 0, 0), (6, 4, 5), (3, 1, 2)]:
        lps = volume.geometry.lps_from_index(ijk)
        assert aligned.value_at_lps(lps) == volume.value_at_index(ijk)


def test_reorient_towards_lps_keeps_an_oblique_direction_exact():
    from app.core.orientation_phantom import orientation_phantom
    from app.core.resample import reorient_towards_lps

    angle = np.radians(25.0)
    cos, sin = np.cos(angle), np.sin(angle)
    tilted = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
    # An RAS-ordered, transposed array tilted 25 degrees about S: snapping it would move voxels.
    direction = tilted @ np.array([[0, -1.0, 0], [-1.0, 0, 0], [0, 0, 1.0]])
    volume = orientation_phantom(size_ijk=(7, 5, 6), spacing_mm=(1.0, 1.5, 2.0), direction=direction)
    volume = volume.with_voxels(np.random.default_rng(3).random(volume.voxels.shape).astype(np.float32))
    aligned = reorient_towards_lps(volume)
    assert np.allclose(aligned.geometry.direction, tilted)
    assert aligned.size_ijk == (5, 7, 6)
    for ijk in [(0, 0, 0), (6, 4, 5), (3, 1, 2), (6, 0, 0)]:
        lps = volume.geometry.lps_from_index(ijk)
        assert np.allclose(
            aligned.geometry.index_from_lps(lps), np.round(aligned.geometry.index_from_lps(lps))
        )
        assert aligned.value_at_lps(lps) == volume.value_at_index(ijk)


def test_initial_window_comes_from_the_header_when_present():
    from app.core.viewer_state import initial_window

    volume = orientation_phantom()
    volume.metadata.update(WindowCenter=1600.0, WindowWidth=3200.0)
    assert ViewerState(volume).display.window == initial_window(volume)
    assert initial_window(volume).center == 1600.0 and initial_window(volume).width == 3200.0
    volume.metadata["WindowWidth"] = 0  # invalid: fall back to the modality default
    assert initial_window(volume).width != 3200.0


def _brain_like(header_window=None) -> Volume:
    """Background 0, tissue 100..1000 and a few vessels up to 1020, as the demo MR."""
    voxels = np.zeros((20, 40, 40), dtype=np.float32)
    rng = np.random.default_rng(0)
    voxels[4:16, 8:32, 8:32] = rng.uniform(100, 1000, (12, 24, 24))
    voxels[10, 20, 20:24] = 1020
    metadata = {} if header_window is None else {"WindowCenter": header_window[0], "WindowWidth": header_window[1]}
    return Volume(voxels, Geometry(np.zeros(3), np.ones(3), np.eye(3)), "MR", metadata=metadata)


def test_an_mr_header_window_that_whites_out_anatomy_is_replaced_by_the_robust_window():
    from app.core.display import clipped_fraction

    volume = _brain_like(header_window=(450, 900))  # the demo's header: up to 900 of ~1020
    header = WindowLevel(450, 900)
    assert clipped_fraction(volume.voxels, header) > 0.05
    window = ViewerState(volume).display.window
    assert window != header and clipped_fraction(volume.voxels, window) <= 0.01
    assert window.low == 0.0  # background stays black
    sensible = _brain_like(header_window=(510, 1020))
    assert ViewerState(sensible).display.window == WindowLevel(510, 1020)  # a sensible header is kept
    ct = _brain_like(header_window=(450, 900))
    ct.modality = "CT"
    assert ViewerState(ct).display.window == header  # CT windows are in HU: the header's is meant


def test_presets_are_the_modality_s():
    from app.core.viewer_state import presets_for

    assert "Lung" in presets_for("CT") and "Lung" not in presets_for("MR") and "Robust" in presets_for("")

"""Reslicing puts each patient direction on the screen side the radiological convention says."""

import numpy as np
import pytest

from app.core.orientation_phantom import (
    LEFT_MARKER,
    POSTERIOR_MARKER,
    SUPERIOR_MARKER,
    orientation_phantom,
)
from app.core.planes import (
    Plane,
    edge_letters,
    extract_slice,
    lps_from_scene,
    scene_from_lps,
    slice_position_mm,
    slice_step_mm,
)
from app.core.volume import Geometry, Volume

DIRECTIONS = {
    "LPS": np.eye(3),
    "RAS": np.diag([-1.0, -1.0, 1.0]),
    "permuted": np.array([[0, 0, 1.0], [1.0, 0, 0], [0, -1.0, 0]]),  # i->P, j->I, k->L
}


def _centre(volume):
    low, high = volume.bounds_lps_mm()
    return (low + high) / 2


def _marker_side(image, value):
    """(mean row, mean col) of a marker as fractions of the image size."""
    rows, cols = np.nonzero(image == value)
    assert rows.size, f"marker {value} not visible"
    return rows.mean() / image.shape[0], cols.mean() / image.shape[1]


@pytest.mark.parametrize("name", DIRECTIONS)
def test_axial_shows_left_on_the_right_and_posterior_down(name):
    volume = orientation_phantom(direction=DIRECTIONS[name])
    image = extract_slice(volume, Plane.AXIAL, slice_position_mm(Plane.AXIAL, _centre(volume))).pixels
    row, col = _marker_side(image, LEFT_MARKER)
    assert col > 0.75 and 0.3 < row < 0.7
    row, col = _marker_side(image, POSTERIOR_MARKER)
    assert row > 0.75 and 0.3 < col < 0.7


@pytest.mark.parametrize("name", DIRECTIONS)
def test_coronal_shows_left_on_the_right_and_superior_up(name):
    volume = orientation_phantom(direction=DIRECTIONS[name])
    image = extract_slice(volume, Plane.CORONAL, slice_position_mm(Plane.CORONAL, _centre(volume))).pixels
    assert _marker_side(image, LEFT_MARKER)[1] > 0.75
    assert _marker_side(image, SUPERIOR_MARKER)[0] < 0.25


@pytest.mark.parametrize("name", DIRECTIONS)
def test_sagittal_shows_posterior_on_the_right_and_superior_up(name):
    volume = orientation_phantom(direction=DIRECTIONS[name])
    image = extract_slice(volume, Plane.SAGITTAL, slice_position_mm(Plane.SAGITTAL, _centre(volume))).pixels
    assert _marker_side(image, POSTERIOR_MARKER)[1] > 0.75
    assert _marker_side(image, SUPERIOR_MARKER)[0] < 0.25


def test_pixel_spacing_and_origin_come_from_the_geometry():
    volume = orientation_phantom(spacing_mm=(1.0, 1.5, 2.0), origin_lps_mm=(-10, 20, -5))
    cut = extract_slice(volume, Plane.CORONAL, 20.0 + 1.5 * 5)
    assert (cut.du_mm, cut.dv_mm) == (1.0, 2.0)
    # Top-left pixel: rightmost patient side is screen left -> smallest x; top = most superior.
    top_left_lps = lps_from_scene(Plane.CORONAL, cut.u0_mm, cut.v0_mm, cut.position_mm)
    assert np.allclose(top_left_lps, [-10, 27.5, -5 + 2.0 * 23])
    assert cut.pixels.shape == (24, 32)


def test_every_pixel_maps_back_to_its_voxel_in_world_coordinates():
    volume = orientation_phantom(direction=DIRECTIONS["permuted"])
    volume = volume.with_voxels(np.random.default_rng(0).random(volume.voxels.shape).astype(np.float32))
    position = slice_position_mm(Plane.SAGITTAL, volume.geometry.lps_from_index([3, 4, 5]))
    cut = extract_slice(volume, Plane.SAGITTAL, position)
    for row, col in [(0, 0), (7, 11), (cut.pixels.shape[0] - 1, cut.pixels.shape[1] - 1)]:
        lps = lps_from_scene(
            Plane.SAGITTAL, cut.u0_mm + col * cut.du_mm, cut.v0_mm + row * cut.dv_mm, position
        )
        assert cut.pixels[row, col] == volume.value_at_lps(lps)


def test_position_outside_the_volume_gives_an_empty_slice_not_the_edge():
    volume = orientation_phantom()
    cut = extract_slice(volume, Plane.AXIAL, 10_000.0)
    assert not cut.in_volume and np.all(np.isnan(cut.pixels))


def test_oblique_volume_is_resampled_in_world_coordinates():
    angle = np.deg2rad(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    volume = Volume(
        np.arange(8 * 10 * 12, dtype=np.float32).reshape(8, 10, 12),
        Geometry(np.zeros(3), np.ones(3), rotation),
    )
    point = volume.geometry.lps_from_index([5, 4, 3])
    cut = extract_slice(volume, Plane.AXIAL, slice_position_mm(Plane.AXIAL, point))
    u, v = scene_from_lps(Plane.AXIAL, point)
    col = int(round((u - cut.u0_mm) / cut.du_mm))
    row = int(round((v - cut.v0_mm) / cut.dv_mm))
    assert cut.pixels[row, col] == volume.voxels[3, 4, 5]
    assert np.isnan(cut.pixels).any()  # corners outside the rotated box


def test_scene_round_trip_and_letters():
    point = np.array([12.0, -7.0, 33.0])
    for plane in Plane:
        u, v = scene_from_lps(plane, point)
        assert np.allclose(lps_from_scene(plane, u, v, slice_position_mm(plane, point)), point)
    assert edge_letters(Plane.AXIAL) == {"right": "L", "left": "R", "bottom": "P", "top": "A"}
    assert edge_letters(Plane.CORONAL) == {"right": "L", "left": "R", "bottom": "I", "top": "S"}
    assert edge_letters(Plane.SAGITTAL) == {"right": "P", "left": "A", "bottom": "I", "top": "S"}


def test_slice_step_follows_the_spacing_along_the_normal():
    volume = orientation_phantom(spacing_mm=(1.0, 1.5, 2.0))
    assert slice_step_mm(volume, Plane.AXIAL) == 2.0
    assert slice_step_mm(volume, Plane.CORONAL) == 1.5
    assert slice_step_mm(volume, Plane.SAGITTAL) == 1.0

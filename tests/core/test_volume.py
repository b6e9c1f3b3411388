import numpy as np
import pytest

from app.core.volume import Geometry, Volume, axis_letter


def _oblique_geometry():
    angle = np.deg2rad(20)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    return Geometry(np.array([-100.0, 50.0, 20.0]), np.array([0.5, 0.7, 2.5]), rot)


def test_index_world_round_trip_on_oblique_grid():
    geometry = _oblique_geometry()
    ijk = np.array([[0, 0, 0], [10.5, 3, 7], [99, 1, 0]])
    assert np.allclose(geometry.index_from_lps(geometry.lps_from_index(ijk)), ijk)
    # Matches the 4x4 affine.
    homog = np.c_[ijk, np.ones(len(ijk))]
    assert np.allclose((geometry.lps_from_ijk @ homog.T).T[:, :3], geometry.lps_from_index(ijk))


def test_origin_is_the_centre_of_voxel_zero():
    geometry = _oblique_geometry()
    assert np.allclose(geometry.lps_from_index([0, 0, 0]), [-100, 50, 20])
    # One step along k moves by spacing_k along the third direction column.
    assert np.allclose(geometry.lps_from_index([0, 0, 1]) - geometry.origin_lps_mm, [0, 0, 2.5])


def test_ras_affine_flips_x_and_y_only():
    geometry = Geometry.identity(spacing_mm=(1, 2, 3), origin_lps_mm=(10, 20, 30))
    ras = geometry.ras_from_ijk
    assert np.allclose(ras[:3, 3], [-10, -20, 30])
    assert np.allclose(np.diag(ras)[:3], [-1, -2, 3])


def test_orientation_code_and_letters():
    assert Geometry.identity().orientation_code() == "LPS"
    flipped = Geometry(np.zeros(3), np.ones(3), np.diag([-1.0, -1.0, 1.0]))
    assert flipped.orientation_code() == "RAS"
    assert axis_letter([0, 0, -1]) == "I"


def test_invalid_geometry_is_refused():
    with pytest.raises(ValueError):
        Geometry(np.zeros(3), np.array([1.0, 0.0, 1.0]), np.eye(3))
    with pytest.raises(ValueError):
        Geometry(np.zeros(3), np.ones(3), np.ones((3, 3)))


def test_volume_value_lookup_uses_kji_order():
    voxels = np.zeros((4, 5, 6), dtype=np.int16)  # k, j, i
    voxels[3, 1, 2] = 42
    volume = Volume(voxels, Geometry.identity(spacing_mm=(2, 2, 2)))
    assert volume.size_ijk == (6, 5, 4)
    assert volume.value_at_index((2, 1, 3)) == 42
    assert volume.value_at_lps((4.0, 2.0, 6.0)) == 42
    assert np.isnan(volume.value_at_index((6, 0, 0)))


def test_with_voxels_keeps_the_grid_and_refuses_another_shape():
    volume = Volume(np.zeros((2, 3, 4)), Geometry.identity())
    other = volume.with_voxels(np.ones((2, 3, 4)), name="x")
    assert other.geometry is volume.geometry and other.name == "x"
    with pytest.raises(ValueError):
        volume.with_voxels(np.ones((3, 3, 4)))

"""Lazy resampling answers every read exactly as the eager resampler would."""

import numpy as np
import pytest

from app.core.compare_pair import difference
from app.core.lazy_voxels import DifferenceVoxels, ResampledVoxels
from app.core.orientation_phantom import orientation_phantom
from app.core.planes import Plane, extract_slice
from app.core.resample import lazy_resample_like, resample_onto
from app.core.volume import Geometry, Volume


@pytest.fixture
def pair():
    source = orientation_phantom(size_ijk=(12, 10, 8))
    source = source.with_voxels(np.random.default_rng(3).random(source.voxels.shape).astype(np.float32) * 100)
    target_geometry = Geometry(
        np.array([5.0, 35.0, -3.0]), np.array([0.8, 1.2, 1.5]), np.diag([-1.0, -1.0, 1.0])
    )
    return source, target_geometry, (9, 11, 13)


def _rotated(geometry):
    angle = np.deg2rad(25)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    return Geometry(geometry.origin_lps_mm, geometry.spacing_mm, rotation @ geometry.direction)


@pytest.mark.parametrize("oblique", [False, True], ids=["axis-aligned (separable)", "oblique (general)"])
def test_every_kind_of_read_matches_the_eager_result(pair, oblique):
    source, geometry, shape = pair
    geometry = _rotated(geometry) if oblique else geometry
    eager = resample_onto(source, geometry, shape).voxels
    lazy = ResampledVoxels(source.voxels, source.geometry, geometry, shape)
    assert lazy.shape == eager.shape and lazy.ndim == 3
    for key in [4, (2, 3), (slice(None), 5), (slice(1, 7, 2), slice(None), -1), (3, 4, 5), (-1, -2, -3)]:
        np.testing.assert_allclose(lazy[key], eager[key], rtol=1e-5)
        assert np.array_equal(np.isnan(lazy[key]), np.isnan(eager[key]))
    rows, cols = np.array([[0, 1], [2, 3]]), np.array([[4, 5], [6, 7]])
    np.testing.assert_allclose(
        lazy[np.array([[1, 2], [3, 4]]), rows, cols], eager[np.array([[1, 2], [3, 4]]), rows, cols], rtol=1e-5
    )
    np.testing.assert_allclose(np.asarray(lazy), eager, rtol=1e-5)
    with pytest.raises(IndexError):
        lazy[9]
    with pytest.raises(IndexError):
        lazy[np.array([0]), :, 1]


def test_lazy_volume_slices_like_an_eager_one(pair):
    source, geometry, shape = pair
    reference = Volume(np.zeros(shape, np.float32), geometry)
    lazy_volume = lazy_resample_like(source, reference)
    eager_volume = resample_onto(source, geometry, shape)
    for plane in Plane:
        cut_lazy = extract_slice(
            lazy_volume, plane, 0.0 if plane is Plane.AXIAL else 40.0 if plane is Plane.CORONAL else 0.0
        )
        cut_eager = extract_slice(eager_volume, plane, cut_lazy.position_mm)
        np.testing.assert_allclose(cut_lazy.pixels, cut_eager.pixels, rtol=1e-5)
    index = (4, 5, 6)
    assert lazy_volume.value_at_index(index) == eager_volume.value_at_index(index) or np.isnan(
        eager_volume.value_at_index(index)
    )
    assert lazy_resample_like(source, source) is source


def test_difference_on_other_grids_is_lazy_and_right(pair):
    source, geometry, shape = pair
    original = Volume(np.full(shape, 10.0, np.float32), geometry)
    result = difference(original, source)
    assert isinstance(result.volume.voxels, DifferenceVoxels)
    expected = 10.0 - resample_onto(source, geometry, shape).voxels
    np.testing.assert_allclose(result.volume.voxels[3], expected[3], rtol=1e-5)
    assert 0 < result.symmetric_range <= np.nanmax(np.abs(expected))


def test_nearest_neighbour_reads_match_too(pair):
    source, geometry, shape = pair
    eager = resample_onto(source, geometry, shape, linear=False).voxels
    lazy = ResampledVoxels(source.voxels, source.geometry, geometry, shape, linear=False)
    np.testing.assert_array_equal(lazy[4], eager[4])
    np.testing.assert_array_equal(lazy[:, 3], eager[:, 3])


def test_a_resampled_partner_is_filled_once_in_the_background_and_reused_per_pair():
    from app.core.orientation_phantom import orientation_phantom
    from app.core.resample import lazy_resample_like, resample_like
    from app.core.volume import Geometry

    reference = orientation_phantom(size_ijk=(20, 24, 12))
    other_grid = Geometry(np.array([-9.0, 21.0, -4.0]), np.array([0.9, 1.4, 1.9]), np.eye(3))
    source = resample_like(orientation_phantom(size_ijk=(22, 26, 13)), reference)
    source.geometry = other_grid
    lazy = lazy_resample_like(source, reference)
    assert lazy_resample_like(source, reference) is lazy  # the compare rebuilt: not again
    expected = [np.array(lazy.voxels._resampled((k, slice(None), slice(None)))) for k in (0, 5, 11)]
    lazy.voxels._filling.join(timeout=30)
    assert lazy.voxels.is_filled
    for k, slice_before in zip((0, 5, 11), expected, strict=True):
        np.testing.assert_array_equal(lazy.voxels[k], slice_before)  # same values, from the fill
    other_reference = orientation_phantom(size_ijk=(20, 24, 12))
    assert lazy_resample_like(source, other_reference) is not lazy  # another pair, its own

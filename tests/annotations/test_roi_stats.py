"""ROI statistics against numpy on masks built independently, on several grids."""

from __future__ import annotations

import numpy as np
import pytest

from app.annotations.roi_stats import compare_roi, mask_statistics, region_mask, roi_statistics
from app.annotations.shapes import EllipseRoi, FreehandRoi, RectangleRoi
from app.core.volume import Geometry, Volume


def ramp_volume(geometry: Geometry, shape=(6, 20, 24), modality="CT") -> Volume:
    voxels = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) * 0.5 - 100.0
    return Volume(voxels, geometry, modality=modality)


def numpy_stats(values):
    return values.mean(), values.std(ddof=1), values.min(), values.max(), values.size


def test_rectangle_matches_numpy_box():
    geometry = Geometry.identity((0.5, 0.5, 2.0), origin_lps_mm=(10.0, 20.0, 30.0))
    volume = ramp_volume(geometry)
    # Centre at voxel (i=8, j=6, k=3); half sizes 1.0 x 1.5 mm -> i 6..10, j 3..9.
    center = geometry.lps_from_index([8, 6, 3])
    rectangle = RectangleRoi(center_lps=center, half_width_mm=1.0, half_height_mm=1.5)
    stats = roi_statistics(rectangle, volume)
    expected = volume.voxels[3, 3:10, 6:11]
    mean, sd, low, high, count = numpy_stats(expected)
    assert (stats.mean, stats.sd, stats.minimum, stats.maximum) == pytest.approx((mean, sd, low, high))
    assert stats.voxel_count == count == 35
    assert stats.area_mm2 == pytest.approx(6.0)
    assert stats.voxel_area_mm2 == pytest.approx(35 * 0.25)
    assert stats.units == "HU"


def test_ellipse_matches_numpy_disk_on_oblique_grid():
    angle = 0.4
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1.0]])
    geometry = Geometry(np.array([-5.0, 3.0, 7.0]), np.array([0.7, 0.9, 1.5]), rotation)
    volume = ramp_volume(geometry, modality="MR")
    center = geometry.lps_from_index([11, 9, 2])
    ellipse = EllipseRoi(
        center_lps=center,
        axis_u_lps=rotation[:, 0],
        axis_v_lps=rotation[:, 1],
        half_width_mm=3.0,
        half_height_mm=2.0,
    )
    k, j, i = np.mgrid[0:6, 0:20, 0:24]
    u = (i - 11) * 0.7
    v = (j - 9) * 0.9
    expected_mask = (k == 2) & ((u / 3.0) ** 2 + (v / 2.0) ** 2 <= 1.0)
    np.testing.assert_array_equal(region_mask(ellipse, geometry, volume.shape_kji), expected_mask)
    stats = roi_statistics(ellipse, volume)
    mean, sd, low, high, count = numpy_stats(volume.voxels[expected_mask])
    assert (stats.mean, stats.sd, stats.minimum, stats.maximum, stats.voxel_count) == pytest.approx(
        (mean, sd, low, high, count)
    )
    assert stats.units == ""


def test_freehand_triangle_matches_numpy():
    geometry = Geometry.identity((1.0, 1.0, 1.0))
    volume = ramp_volume(geometry, shape=(4, 12, 12))
    triangle = FreehandRoi(vertices_lps=[[0.5, 0.5, 2.0], [9.5, 0.5, 2.0], [0.5, 9.5, 2.0]])
    k, j, i = np.mgrid[0:4, 0:12, 0:12]
    expected_mask = (k == 2) & (i >= 1) & (j >= 1) & (i + j <= 9)
    np.testing.assert_array_equal(region_mask(triangle, geometry, volume.shape_kji), expected_mask)
    assert roi_statistics(triangle, volume).mean == pytest.approx(volume.voxels[expected_mask].mean())


def test_sagittal_region_selects_one_column_plane():
    geometry = Geometry.identity((1.0, 1.0, 1.0))
    volume = ramp_volume(geometry, shape=(8, 8, 8))
    # Drawn in a sagittal view: u = anterior (-y), v = inferior (-z); plane x = 4.
    rectangle = RectangleRoi(
        center_lps=[4.0, 4.0, 4.0],
        axis_u_lps=[0, -1, 0],
        axis_v_lps=[0, 0, -1],
        half_width_mm=1,
        half_height_mm=2,
    )
    mask = region_mask(rectangle, geometry, volume.shape_kji)
    assert set(np.argwhere(mask)[:, 2]) == {4}
    assert mask.sum() == 3 * 5


def test_same_world_region_on_two_grids_measures_same_anatomy():
    """A 1 mm grid and a 2 mm grid of the same linear field: same mean in the same place."""
    fine = Geometry.identity((1.0, 1.0, 1.0))
    coarse = Geometry.identity((2.0, 2.0, 2.0), origin_lps_mm=(0.5, 0.5, 0.0))

    def field(geometry, shape):
        k, j, i = np.indices(shape)
        lps = geometry.lps_from_index(np.stack([i, j, k], -1).reshape(-1, 3))
        return (3 * lps[:, 0] + 2 * lps[:, 1]).reshape(shape)

    original = Volume(field(fine, (10, 40, 40)), fine)
    other = Volume(field(coarse, (5, 20, 20)), coarse)
    disk = EllipseRoi(center_lps=[20.5, 20.5, 4.0], half_width_mm=6, half_height_mm=6)
    table = compare_roi(disk, {"original": original, "synthesized": other})
    assert table["original"].mean == pytest.approx(3 * 20.5 + 2 * 20.5, abs=0.5)
    assert table["synthesized"].mean == pytest.approx(table["original"].mean, abs=1.0)
    assert table["synthesized"].voxel_count < table["original"].voxel_count


def test_region_outside_the_volume_is_empty_not_an_error():
    volume = ramp_volume(Geometry.identity())
    far = EllipseRoi(center_lps=[500, 500, 500], half_width_mm=2, half_height_mm=2)
    stats = roi_statistics(far, volume)
    assert stats.voxel_count == 0 and np.isnan(stats.mean)


def test_mask_statistics_match_numpy():
    volume = ramp_volume(Geometry.identity((0.5, 0.25, 3.0)))
    mask = np.zeros(volume.shape_kji, bool)
    mask[2, 4:8, 5:9] = True
    stats = mask_statistics(mask, volume)
    assert stats.mean == pytest.approx(volume.voxels[mask].mean())
    assert stats.voxel_count == 16
    assert stats.area_mm2 == pytest.approx(16 * 0.125)
    with pytest.raises(ValueError, match="does not match"):
        mask_statistics(mask[:1], volume)

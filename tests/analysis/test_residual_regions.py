"""The region list finds an inserted blob at the right place and size."""

from __future__ import annotations

import numpy as np
import pytest

from app.analysis.residual_regions import ResidualSettings, default_threshold, find_regions, residual, smooth
from app.core.volume import Geometry


def ball(shape_kji, centre_kji, radius_vox):
    k, j, i = np.indices(shape_kji)
    return (k - centre_kji[0]) ** 2 + (j - centre_kji[1]) ** 2 + (i - centre_kji[2]) ** 2 <= radius_vox**2


def test_blob_found_at_its_lps_centroid_with_its_volume():
    # Anisotropic, LPS-flipped geometry: i along -L (R), spacing 0.8 x 0.8 x 2 mm.
    direction = np.diag([-1.0, 1.0, 1.0])
    geometry = Geometry(np.array([10.0, -20.0, 5.0]), np.array([0.8, 0.8, 2.0]), direction)
    shape = (20, 50, 50)
    original = np.full(shape, 100.0, np.float32)
    k, j, i = np.indices(shape)
    inside = ((i - 30) * 0.8) ** 2 + ((j - 20) * 0.8) ** 2 + ((k - 10) * 2.0) ** 2 <= 6.0**2
    original[inside] += 50  # a 12 mm lesion
    healthy = np.full(shape, 100.0, np.float32)  # the generator erased it
    regions, labels = find_regions(
        residual(original, healthy), geometry, ResidualSettings(threshold=25.0, smoothing_sigma_mm=0.0)
    )
    assert len(regions) == 1
    region = regions[0]
    expected_lps = geometry.lps_from_index([30, 20, 10])
    assert np.allclose(region.centroid_lps_mm, expected_lps, atol=0.05)
    assert expected_lps[0] == pytest.approx(10.0 - 30 * 0.8)  # i runs towards the right
    assert region.volume_ml == pytest.approx(inside.sum() * 0.8 * 0.8 * 2.0 / 1000)
    assert region.volume_ml == pytest.approx(4 / 3 * np.pi * 6.0**3 / 1000, rel=0.15)
    assert region.peak_residual == pytest.approx(50.0) and region.mean_residual == pytest.approx(50.0)
    assert (labels == region.label).sum() == region.voxel_count == inside.sum()


def test_threshold_sign_and_minimum_volume():
    geometry = Geometry.identity()
    values = np.zeros((20, 20, 20), np.float32)
    values[ball(values.shape, (5, 5, 5), 2)] = 10.0  # lost signal
    values[ball(values.shape, (14, 14, 14), 3)] = -20.0  # added signal
    values[0, 19, 19] = 30.0  # a single voxel
    absolute, _ = find_regions(values, geometry, ResidualSettings(5.0, 0.0))
    assert len(absolute) == 3
    positive, _ = find_regions(values, geometry, ResidualSettings(5.0, 0.0, signed="positive"))
    assert sorted(r.peak_residual for r in positive) == [10.0, 30.0]
    negative, _ = find_regions(values, geometry, ResidualSettings(5.0, 0.0, signed="negative"))
    assert [r.peak_residual for r in negative] == [-20.0]
    large, _ = find_regions(values, geometry, ResidualSettings(5.0, 0.0, min_volume_ml=0.01))
    assert len(large) == 2  # the single voxel (0.001 mL) is dropped
    high, _ = find_regions(values, geometry, ResidualSettings(15.0, 0.0))
    assert [r.peak_residual for r in high] == [-20.0, 30.0] or [r.peak_residual for r in high] == [
        30.0,
        -20.0,
    ]
    with pytest.raises(ValueError):
        find_regions(values, geometry, ResidualSettings(5.0, 0.0, signed="both"))


def test_smoothing_uses_millimetres_and_removes_noise():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 5, size=(16, 32, 32)).astype(np.float32)
    geometry = Geometry.identity(spacing_mm=(1.0, 1.0, 2.0))
    noisy_regions, _ = find_regions(noise, geometry, ResidualSettings(10.0, 0.0))
    smooth_regions, _ = find_regions(noise, geometry, ResidualSettings(10.0, 1.5))
    assert len(noisy_regions) > 20 and len(smooth_regions) == 0
    impulse = np.zeros((9, 9, 9), np.float32)
    impulse[4, 4, 4] = 1.0
    blurred = smooth(impulse, (1.0, 1.0, 2.0), 2.0)
    # sigma 2 mm = 1 voxel along k (2 mm slices) and 2 voxels along i and j.
    assert (
        blurred[4, 4, 5] < blurred[4, 4, 4]
        and blurred[3, 4, 4] / blurred[4, 4, 4] < blurred[4, 4, 5] / blurred[4, 4, 4]
    )


def test_default_threshold_is_ten_percent_of_the_range():
    values = np.linspace(0, 1000, 100_001)
    assert default_threshold(values.reshape(1, 1, -1)) == pytest.approx(99.0, rel=1e-3)
    assert default_threshold(np.zeros((2, 2, 2))) == 1.0

"""Metrics equal scikit-image's on the same arrays (to 1e-6), whole volume and in a mask."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import metrics as skm

from app.analysis.metrics import (
    compute_metrics,
    mean_absolute_error,
    normalized_cross_correlation,
    peak_signal_noise_ratio,
    ssim_map,
    structural_similarity,
)


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(3)
    reference = rng.normal(100, 30, size=(12, 20, 18)).astype(np.float32)
    test = (reference * 0.9 + rng.normal(0, 8, size=reference.shape)).astype(np.float32)
    return reference, test


def test_mse_psnr_ssim_equal_skimage(pair):
    reference, test = pair
    data_range = float(reference.max()) - float(reference.min())
    result = compute_metrics(reference, test)
    assert result.data_range == pytest.approx(data_range, abs=1e-9)
    assert result.data_range_source == "reference max - min"
    assert abs(result.mse - skm.mean_squared_error(reference.astype(float), test.astype(float))) < 1e-6
    expected_psnr = skm.peak_signal_noise_ratio(
        reference.astype(float), test.astype(float), data_range=data_range
    )
    assert abs(result.psnr_db - expected_psnr) < 1e-6
    expected_ssim = skm.structural_similarity(
        reference.astype(float), test.astype(float), data_range=data_range
    )
    assert abs(result.ssim - expected_ssim) < 1e-6
    assert result.voxel_count == reference.size and not result.masked


def test_ssim_map_equals_skimage_full_map(pair):
    reference, test = pair
    _, expected = skm.structural_similarity(
        reference.astype(float), test.astype(float), data_range=200.0, full=True
    )
    assert np.max(np.abs(ssim_map(reference, test, 200.0) - expected)) < 1e-6


def test_given_data_range_is_used_and_stated(pair):
    reference, test = pair
    result = compute_metrics(reference, test, data_range=255.0)
    assert result.data_range == 255.0 and result.data_range_source == "given"
    expected = skm.peak_signal_noise_ratio(reference.astype(float), test.astype(float), data_range=255.0)
    assert abs(result.psnr_db - expected) < 1e-6


def test_masked_metrics_use_only_the_mask(pair):
    reference, test = pair
    mask = np.zeros(reference.shape, bool)
    mask[3:9, 5:15, 4:12] = True
    result = compute_metrics(reference, test, mask=mask)
    inside_ref, inside_test = reference[mask].astype(float), test[mask].astype(float)
    assert abs(result.mae - np.mean(np.abs(inside_test - inside_ref))) < 1e-6
    assert abs(result.mse - skm.mean_squared_error(inside_ref, inside_test)) < 1e-6
    assert abs(result.ncc - np.corrcoef(inside_ref, inside_test)[0, 1]) < 1e-6
    data_range = inside_ref.max() - inside_ref.min()
    assert result.data_range == pytest.approx(data_range)
    _, full = skm.structural_similarity(
        reference.astype(float), test.astype(float), data_range=data_range, full=True
    )
    assert abs(result.ssim - full[mask].mean()) < 1e-6
    # Changing voxels outside the mask changes nothing.
    altered = test.copy()
    altered[0] += 1000
    assert compute_metrics(reference, altered, mask=mask, data_range=data_range).mse == pytest.approx(
        result.mse
    )


def test_known_values():
    reference = np.zeros((8, 8, 8))
    test = np.full((8, 8, 8), 2.0)
    assert mean_absolute_error(reference, test) == 2.0
    assert peak_signal_noise_ratio(reference, test, data_range=20.0) == pytest.approx(20.0)  # 10 log10(400/4)
    assert peak_signal_noise_ratio(reference, reference, data_range=1.0) == float("inf")
    assert structural_similarity(test, test, data_range=1.0) == pytest.approx(1.0)
    ramp = np.arange(512.0).reshape(8, 8, 8)
    assert normalized_cross_correlation(ramp, 3 * ramp + 7) == pytest.approx(1.0)
    assert normalized_cross_correlation(ramp, -ramp) == pytest.approx(-1.0)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="shape"):
        compute_metrics(np.zeros((8, 8, 8)), np.zeros((8, 8, 9)))
    with pytest.raises(ValueError, match="no voxels"):
        compute_metrics(np.zeros((8, 8, 8)), np.zeros((8, 8, 8)), mask=np.zeros((8, 8, 8), bool))


def test_nan_outside_grid_is_left_out():
    reference = np.arange(1000.0).reshape(10, 10, 10)
    test = reference + 1
    test[0] = np.nan
    result = compute_metrics(reference, test)
    assert result.voxel_count == 900 and result.mae == pytest.approx(1.0)


def test_float32_and_integer_arrays_match_skimage_as_given(pair):
    reference, test = pair  # float32: skimage computes in float32, we in float64
    result = compute_metrics(reference, test)
    assert abs(result.ssim - skm.structural_similarity(reference, test, data_range=result.data_range)) < 1e-6
    assert abs(result.mse - skm.mean_squared_error(reference, test)) < 1e-6 * max(1.0, result.mse)
    ct_reference, ct_test = (reference * 10).astype(np.int16), (test * 10).astype(np.int16)  # e.g. stored HU
    result = compute_metrics(ct_reference, ct_test)
    assert (
        abs(result.ssim - skm.structural_similarity(ct_reference, ct_test, data_range=result.data_range))
        < 1e-6
    )
    expected = skm.peak_signal_noise_ratio(ct_reference, ct_test, data_range=result.data_range)
    assert abs(result.psnr_db - expected) < 1e-6

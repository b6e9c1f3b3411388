"""calibrated_threshold: the percentile of the smoothed healthy residual, inside the masks."""

from __future__ import annotations

import numpy as np
import pytest

from app.analysis.residual_regions import calibrated_threshold


def test_threshold_is_the_percentile_of_healthy_residual_inside_the_mask():
    rng = np.random.default_rng(0)
    healthy = rng.normal(0.0, 1.0, (6, 20, 20)).astype(np.float32)
    healthy[:, :, :10] = 100.0  # outside the mask: must not raise the threshold
    mask = np.zeros(healthy.shape, bool)
    mask[:, :, 10:] = True
    unsmoothed = calibrated_threshold([healthy], (1.0, 1.0, 1.0), 0.0, 90.0, [mask])
    assert unsmoothed == pytest.approx(np.percentile(np.abs(healthy[mask]), 90.0))
    assert unsmoothed < 3.0
    # Smoothing averages the noise down, so the same percentile gives a lower threshold.
    smoothed = calibrated_threshold([healthy[:, :, 12:]], (1.0, 1.0, 1.0), 1.0, 90.0)
    assert smoothed < unsmoothed


def test_pools_several_scans_and_rejects_empty_input():
    zeros, ones = np.zeros((4, 4, 4), np.float32), np.ones((4, 4, 4), np.float32)
    assert calibrated_threshold([zeros, ones], (1.0, 1.0, 1.0), 0.0, 25.0) == 0.0
    assert calibrated_threshold([zeros, ones], (1.0, 1.0, 1.0), 0.0, 75.0) == 1.0
    with pytest.raises(ValueError):
        calibrated_threshold([], (1.0, 1.0, 1.0))
    with pytest.raises(ValueError):
        calibrated_threshold([zeros], (1.0, 1.0, 1.0), masks=[np.zeros((4, 4, 4), bool)])

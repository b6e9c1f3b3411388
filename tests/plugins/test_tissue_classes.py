"""The classical tissue classification that labels the tissue plugin's training head."""

from __future__ import annotations

import numpy as np
import pytest

from app.plugins.training.tissue_classes import (
    BACKGROUND,
    CSF,
    GREY_MATTER,
    WHITE_MATTER,
    classify_tissues,
    fit_mixture,
    wm_median_by_position,
)

MEANS = {CSF: 30.0, GREY_MATTER: 85.0, WHITE_MATTER: 115.0}


def phantom(noise_sd: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nested boxes: CSF shell, grey matter shell, white matter core, inside a brain mask."""
    truth = np.zeros((30, 32, 34), np.uint8)
    truth[3:27, 3:29, 3:31] = CSF
    truth[6:24, 6:26, 6:28] = GREY_MATTER
    truth[10:20, 10:22, 10:24] = WHITE_MATTER
    t1 = np.zeros(truth.shape, np.float32)
    for label, mean in MEANS.items():
        t1[truth == label] = mean
    t1 += np.random.default_rng(seed).normal(0, noise_sd, t1.shape).astype(np.float32)
    return t1, truth > 0, truth


def test_the_mixture_finds_three_class_means_in_order():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(m, 4.0, n) for m, n in ((30, 3000), (85, 9000), (115, 5000))])
    means, sds, weights = fit_mixture(values)
    np.testing.assert_allclose(means, [30, 85, 115], atol=1.0)
    np.testing.assert_allclose(sds, 4.0, atol=0.5)
    np.testing.assert_allclose(weights, np.array([3, 9, 5]) / 17, atol=0.01)


def test_classification_recovers_the_phantom_and_the_mrf_removes_noise_flips():
    t1, mask, truth = phantom(noise_sd=11.0)
    plain = classify_tissues(t1, mask, beta=0.0)
    smooth = classify_tissues(t1, mask)
    errors_plain = int((plain.labels != truth).sum())
    errors_smooth = int((smooth.labels != truth).sum())
    assert errors_plain > 300  # noise of 11 units flips GM/WM voxels without the prior
    assert errors_smooth < errors_plain / 4
    assert (smooth.labels[~mask] == BACKGROUND).all()
    assert (smooth.labels == truth).mean() > 0.99
    assert smooth.means[0] < smooth.means[1] < smooth.means[2]


def test_an_empty_mask_is_refused_in_one_line():
    t1, _, _ = phantom(1.0)
    with pytest.raises(ValueError, match="fewer than 100 voxels"):
        classify_tissues(t1, np.zeros(t1.shape, bool))


def test_the_white_matter_drift_is_measured_per_axis():
    t1, _, truth = phantom(0.0)
    ramp = np.linspace(0.9, 1.1, t1.shape[2], dtype=np.float32)  # a 20 % bias along i
    medians = wm_median_by_position(t1 * ramp, truth)
    assert max(medians[0]) - min(medians[0]) < 1.0 and max(medians[1]) - min(medians[1]) < 1.0
    assert medians[2][0] < 112 and medians[2][-1] > 118  # along i: the ramp

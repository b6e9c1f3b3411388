"""MS-SSIM against reference formulas; diversity and nearest-real-neighbour search."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import convolve2d
from skimage.metrics import structural_similarity

from app.analysis.diversity import (
    MS_SSIM_WEIGHTS,
    Alignment,
    diversity,
    mean_pairwise_ms_ssim,
    ms_ssim,
    nearest_real_images,
    weights_for_shape,
)


def reference_ms_ssim(x, y, data_range, weights=MS_SSIM_WEIGHTS):
    """Wang et al. 2003 written out directly: explicit 11x11 Gaussian, 'valid' convolution, 2x2 mean pooling."""
    taps = np.arange(-5, 6)
    g = np.exp(-(taps**2) / (2 * 1.5**2))
    kernel = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for scale in range(len(weights)):
        mx, my = convolve2d(x, kernel, "valid"), convolve2d(y, kernel, "valid")
        sxx = convolve2d(x * x, kernel, "valid") - mx**2
        syy = convolve2d(y * y, kernel, "valid") - my**2
        sxy = convolve2d(x * y, kernel, "valid") - mx * my
        cs = (2 * sxy + c2) / (sxx + syy + c2)
        lum = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
        values.append((lum * cs).mean() if scale == len(weights) - 1 else cs.mean())
        x = (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4
        y = (y[0::2, 0::2] + y[1::2, 0::2] + y[0::2, 1::2] + y[1::2, 1::2]) / 4
    return float(np.prod([max(v, 0) ** w for v, w in zip(values, weights, strict=True)]))


def textured(seed, size=192):
    rng = np.random.default_rng(seed)
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(rng.normal(size=(size, size)), 3) * 100 + 100


def test_ms_ssim_matches_the_written_out_formula():
    x, y = textured(0), textured(0) + np.random.default_rng(9).normal(0, 3, (192, 192))
    assert abs(ms_ssim(x, y, 255.0) - reference_ms_ssim(x, y, 255.0)) < 1e-9
    z = textured(1)
    assert abs(ms_ssim(x, z, 255.0) - reference_ms_ssim(x, z, 255.0)) < 1e-9


def test_single_scale_equals_skimage_gaussian_ssim():
    x, y = textured(2, 64), textured(3, 64)
    expected = structural_similarity(
        x, y, data_range=200.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert abs(ms_ssim(x, y, 200.0, weights=(1.0,)) - expected) < 1e-6


def test_identity_and_ordering():
    x = textured(4)
    assert ms_ssim(x, x, 255.0) == pytest.approx(1.0)
    slightly = x + np.random.default_rng(1).normal(0, 2, x.shape)
    assert ms_ssim(x, slightly, 255.0) > ms_ssim(x, textured(5), 255.0)
    with pytest.raises(ValueError, match="too small"):
        ms_ssim(np.zeros((40, 40)), np.zeros((40, 40)), 1.0)


def test_collapsed_generator_is_less_diverse_than_real_images_and_memorised_sample_is_found():
    real = [textured(10 + s) for s in range(4)]
    base = textured(99)
    rng = np.random.default_rng(0)
    collapsed = [base + rng.normal(0, 1, base.shape) for _ in range(4)]
    report = diversity(collapsed, real, 255.0)
    assert report.samples_ms_ssim > 0.9 and report.collapse_suspected
    assert not diversity([textured(20 + s) for s in range(4)], real, 255.0).collapse_suspected
    assert mean_pairwise_ms_ssim(real, 255.0) == pytest.approx(report.real_ms_ssim)
    memorised = real[2] + rng.normal(0, 0.5, base.shape)
    (neighbours,) = nearest_real_images([memorised], real, 255.0, count=2)
    assert neighbours[0].index == 2 and neighbours[0].ms_ssim > 0.99 and neighbours[1].ms_ssim < 0.9


def test_a_flipped_and_shifted_copy_is_found_exactly_only_with_the_alignment():
    real = [textured(30 + s, 64) for s in range(5)]
    copy = np.roll(real[3][:, ::-1], (2, -1), axis=(0, 1))
    weights = weights_for_shape((64, 64))
    (plain,) = nearest_real_images([copy], real, 255.0, weights=weights)
    ((aligned,),) = nearest_real_images([copy], real, 255.0, weights=weights, alignment=Alignment(2, True))
    assert plain[0].ms_ssim < 0.9
    assert aligned.index == 3 and aligned.ms_ssim == pytest.approx(1.0) and aligned.mse < 1e-20
    assert aligned.flipped and aligned.shift_px in {(-2, -1), (-2, 1)}
    too_far = np.roll(real[3], 3, axis=0)  # beyond the allowed shift
    (beyond,) = nearest_real_images([too_far], real, 255.0, weights=weights, alignment=Alignment(2, True))
    assert beyond[0].ms_ssim < 0.99

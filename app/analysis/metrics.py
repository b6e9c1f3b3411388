"""Image-quality metrics of a synthesized volume against a reference, whole volume or in a mask.

Each metric states the data range it used (PSNR and SSIM depend on it). The formulas follow
scikit-image's ``skimage.metrics`` (uniform 7-voxel window, sample covariance, K1 0.01, K2 0.03
for SSIM) so that the numbers agree with it to 1e-6; the tests check that.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

SSIM_WINDOW = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03


@dataclass(frozen=True)
class Metrics:
    """Metrics of ``test`` against ``reference``; ``voxel_count`` voxels took part."""

    mae: float
    mse: float
    psnr_db: float
    ssim: float
    ncc: float
    data_range: float
    data_range_source: str  # "given" or "reference min..max"
    voxel_count: int
    masked: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _pair(reference: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    reference = np.asarray(reference, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    if reference.shape != test.shape:
        raise ValueError(
            f"arrays differ in shape: {reference.shape} vs {test.shape}; resample onto one grid first"
        )
    return reference, test


def _selected(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return values.reshape(-1) if mask is None else values[np.asarray(mask, dtype=bool)]


def mean_absolute_error(reference: np.ndarray, test: np.ndarray, mask: np.ndarray | None = None) -> float:
    reference, test = _pair(reference, test)
    return float(np.mean(np.abs(_selected(test - reference, mask))))


def mean_squared_error(reference: np.ndarray, test: np.ndarray, mask: np.ndarray | None = None) -> float:
    reference, test = _pair(reference, test)
    return float(np.mean(_selected(test - reference, mask) ** 2))


def reference_data_range(reference: np.ndarray, mask: np.ndarray | None = None) -> float:
    """max - min of the reference (inside the mask): the range used when none is given."""
    values = _selected(np.asarray(reference, dtype=np.float64), mask)
    return float(values.max() - values.min()) if values.size else 0.0


def peak_signal_noise_ratio(
    reference: np.ndarray, test: np.ndarray, data_range: float, mask: np.ndarray | None = None
) -> float:
    """10 log10(data_range^2 / MSE) in dB; infinite for identical inputs."""
    mse = mean_squared_error(reference, test, mask)
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(data_range**2 / mse))


def ssim_map(
    reference: np.ndarray, test: np.ndarray, data_range: float, window: int = SSIM_WINDOW
) -> np.ndarray:
    """Per-voxel SSIM with a uniform ``window``-wide box (scikit-image's default settings)."""
    reference, test = _pair(reference, test)
    if data_range <= 0:
        raise ValueError("data_range must be positive for SSIM")
    if min(reference.shape) < window:
        raise ValueError(f"SSIM needs every side >= {window} voxels, got {reference.shape}")
    count = window**reference.ndim
    covariance_norm = count / (count - 1)
    mean_x = ndimage.uniform_filter(reference, window)
    mean_y = ndimage.uniform_filter(test, window)
    var_x = covariance_norm * (ndimage.uniform_filter(reference * reference, window) - mean_x * mean_x)
    var_y = covariance_norm * (ndimage.uniform_filter(test * test, window) - mean_y * mean_y)
    cov_xy = covariance_norm * (ndimage.uniform_filter(reference * test, window) - mean_x * mean_y)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    numerator = (2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)
    denominator = (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    return numerator / denominator


def structural_similarity(
    reference: np.ndarray, test: np.ndarray, data_range: float, mask: np.ndarray | None = None
) -> float:
    """Mean SSIM: over the map with a half-window border cropped (as scikit-image), or over ``mask``."""
    values = ssim_map(reference, test, data_range)
    if mask is not None:
        return float(np.mean(values[np.asarray(mask, dtype=bool)]))
    pad = (SSIM_WINDOW - 1) // 2
    cropped = values[tuple(slice(pad, s - pad) for s in values.shape)]
    return float(cropped.mean(dtype=np.float64))


def normalized_cross_correlation(
    reference: np.ndarray, test: np.ndarray, mask: np.ndarray | None = None
) -> float:
    """Pearson correlation of the voxel values (1 = same up to gain and offset); 0 if one is flat."""
    reference, test = _pair(reference, test)
    x = _selected(reference, mask)
    y = _selected(test, mask)
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denominator) if denominator > 0 else 0.0


def compute_metrics(
    reference: np.ndarray,
    test: np.ndarray,
    mask: np.ndarray | None = None,
    data_range: float | None = None,
) -> Metrics:
    """All metrics at once; ``data_range`` defaults to the reference's max - min (stated in the result)."""
    reference, test = _pair(reference, test)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != reference.shape:
            raise ValueError(f"mask shape {mask.shape} differs from image shape {reference.shape}")
        if not mask.any():
            raise ValueError("the mask selects no voxels")
    finite = np.isfinite(reference) & np.isfinite(test)
    if not finite.all():
        # Voxels outside one grid after resampling are NaN: leave them out.
        mask = finite if mask is None else (mask & finite)
        reference = np.where(finite, reference, 0.0)
        test = np.where(finite, test, 0.0)
    source = "given"
    if data_range is None:
        data_range = reference_data_range(reference, mask)
        source = "reference max - min"
    if data_range <= 0:
        data_range, source = 1.0, "1 (reference is constant)"
    try:
        ssim = structural_similarity(reference, test, data_range, mask)
    except ValueError:
        ssim = float("nan")  # too small for a 7-voxel window
    return Metrics(
        mae=mean_absolute_error(reference, test, mask),
        mse=mean_squared_error(reference, test, mask),
        psnr_db=peak_signal_noise_ratio(reference, test, data_range, mask),
        ssim=ssim,
        ncc=normalized_cross_correlation(reference, test, mask),
        data_range=float(data_range),
        data_range_source=source,
        voxel_count=int(reference.size if mask is None else mask.sum()),
        masked=mask is not None,
    )

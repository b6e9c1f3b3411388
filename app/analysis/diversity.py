"""Diversity of generated samples (mode collapse) and nearest-real-neighbour search (memorisation).

MS-SSIM (Wang, Simoncelli & Bovik 2003) of 2D images, implemented here in numpy/scipy: a
Gaussian window (sigma 1.5, 11 taps), five scales with 2x2 average downsampling, contrast x
structure terms at every scale and luminance at the coarsest, weighted by the paper's
exponents. Samples from a collapsed generator look alike: their mean pairwise MS-SSIM is higher
than that of real images. A sample whose nearest real image is almost identical may be a
memorised training image (a privacy risk).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy import ndimage

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
GAUSSIAN_SIGMA = 1.5
GAUSSIAN_TRUNCATE = 3.5  # 11 taps at sigma 1.5, as in the reference implementation
K1, K2 = 0.01, 0.03


def _filtered(image: np.ndarray) -> np.ndarray:
    return ndimage.gaussian_filter(image, GAUSSIAN_SIGMA, truncate=GAUSSIAN_TRUNCATE, mode="reflect")


def ssim_components(x: np.ndarray, y: np.ndarray, data_range: float) -> tuple[float, float]:
    """(mean SSIM, mean contrast-structure term) with a Gaussian window and population covariance.

    Only pixels whose whole window lies inside the image are averaged (MATLAB's ``filter2
    'valid'`` of the reference implementation).
    """
    mu_x, mu_y = _filtered(x), _filtered(y)
    var_x = _filtered(x * x) - mu_x**2
    var_y = _filtered(y * y) - mu_y**2
    cov = _filtered(x * y) - mu_x * mu_y
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    contrast_structure = (2 * cov + c2) / (var_x + var_y + c2)
    pad = int(GAUSSIAN_TRUNCATE * GAUSSIAN_SIGMA + 0.5)
    crop = tuple(slice(pad, s - pad) if s > 2 * pad else slice(None) for s in x.shape)
    return float((luminance * contrast_structure)[crop].mean()), float(contrast_structure[crop].mean())


def ms_ssim(
    x: np.ndarray, y: np.ndarray, data_range: float, weights: Sequence[float] = MS_SSIM_WEIGHTS
) -> float:
    """Multi-scale SSIM of two same-shape 2D images; the number of scales is ``len(weights)``.

    ``prod_{s < S} mean(cs_s) ** w_s * mean(ssim_S) ** w_S`` (negative terms clipped to 0).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"MS-SSIM needs two 2D images of one shape, got {x.shape} and {y.shape}")
    scales = len(weights)
    if min(x.shape) < 2 ** (scales - 1) * 11:
        raise ValueError(
            f"images of {x.shape} are too small for {scales} scales (need {2 ** (scales - 1) * 11})"
        )
    result = 1.0
    for scale, weight in enumerate(weights):
        ssim, contrast_structure = ssim_components(x, y, data_range)
        if scale == scales - 1:
            result *= max(ssim, 0.0) ** weight
        else:
            result *= max(contrast_structure, 0.0) ** weight
            x, y = _downsample(x), _downsample(y)
    return float(result)


def _downsample(image: np.ndarray) -> np.ndarray:
    rows, cols = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
    image = image[:rows, :cols]
    return 0.25 * (image[0::2, 0::2] + image[1::2, 0::2] + image[0::2, 1::2] + image[1::2, 1::2])


def weights_for_shape(shape: Sequence[int]) -> tuple[float, ...]:
    """The MS-SSIM weights for as many scales as images of ``shape`` allow (at most five),
    renormalised to sum to 1: a 64 x 64 image allows three (its coarsest scale is 16 x 16)."""
    scales = len(MS_SSIM_WEIGHTS)
    while scales > 1 and min(shape) < 2 ** (scales - 1) * 11:
        scales -= 1
    if min(shape) < 11:
        raise ValueError(f"images of {tuple(shape)} are too small for MS-SSIM (need 11 pixels a side)")
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales])
    return tuple(float(w) for w in weights / weights.sum())


def mean_pairwise_ms_ssim(
    images: Sequence[np.ndarray], data_range: float, weights: Sequence[float] = MS_SSIM_WEIGHTS
) -> float:
    """Mean MS-SSIM over all unordered pairs (higher = less diverse)."""
    if len(images) < 2:
        raise ValueError("diversity needs at least two images")
    return float(np.mean([ms_ssim(a, b, data_range, weights) for a, b in combinations(images, 2)]))


@dataclass(frozen=True)
class DiversityReport:
    samples_ms_ssim: float
    real_ms_ssim: float
    data_range: float

    @property
    def collapse_suspected(self) -> bool:
        """Samples clearly more alike than real images are (a 0.05 margin on MS-SSIM)."""
        return self.samples_ms_ssim > self.real_ms_ssim + 0.05


def diversity(
    samples: Sequence[np.ndarray],
    real: Sequence[np.ndarray],
    data_range: float,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
) -> DiversityReport:
    return DiversityReport(
        mean_pairwise_ms_ssim(samples, data_range, weights),
        mean_pairwise_ms_ssim(real, data_range, weights),
        data_range,
    )


@dataclass(frozen=True)
class Neighbour:
    index: int  # into the real images
    ms_ssim: float
    mse: float


def nearest_real_neighbours(
    sample: np.ndarray,
    real: Sequence[np.ndarray],
    data_range: float,
    count: int = 3,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
) -> list[Neighbour]:
    """The ``count`` real images most similar to ``sample`` by MS-SSIM (best first)."""
    sample = np.asarray(sample, dtype=np.float64)
    found = [
        Neighbour(
            i,
            ms_ssim(sample, r, data_range, weights),
            float(np.mean((sample - np.asarray(r, dtype=np.float64)) ** 2)),
        )
        for i, r in enumerate(real)
    ]
    found.sort(key=lambda n: (-n.ms_ssim, n.mse))
    return found[:count]


MEMORISATION_MS_SSIM = 0.95  # a sample this close to a real image may be a memorised copy
NEAR_DUPLICATE_MS_SSIM = 0.95  # two samples this alike: partial mode collapse (one mode, two seeds)


@dataclass(frozen=True)
class GeneratorCheck:
    """Diversity of a generator's samples against real images, and each sample's nearest real one."""

    report: DiversityReport
    nearest: list[Neighbour]  # one per sample, into the real images
    weights: tuple[float, ...]
    memorisation_ms_ssim: float = MEMORISATION_MS_SSIM
    near_duplicates: tuple[tuple[int, int, float], ...] = ()  # sample pairs, most alike first

    @property
    def possibly_memorised(self) -> list[int]:
        """Indices of samples whose nearest real image reaches the memorisation threshold."""
        return [n for n, near in enumerate(self.nearest) if near.ms_ssim >= self.memorisation_ms_ssim]

    def to_dict(self) -> dict:
        return {
            "samples_mean_pairwise_ms_ssim": self.report.samples_ms_ssim,
            "real_mean_pairwise_ms_ssim": self.report.real_ms_ssim,
            "data_range": self.report.data_range,
            "ms_ssim_scales": len(self.weights),
            "collapse_suspected": self.report.collapse_suspected,
            "memorisation_ms_ssim": self.memorisation_ms_ssim,
            "possibly_memorised": self.possibly_memorised,
            "near_duplicate_ms_ssim": NEAR_DUPLICATE_MS_SSIM,
            "near_duplicate_pairs": [
                {"samples": [a, b], "ms_ssim": value} for a, b, value in self.near_duplicates
            ],
            "nearest_real": [
                {"real_index": n.index, "ms_ssim": n.ms_ssim, "mse": n.mse} for n in self.nearest
            ],
        }


def check_generator(
    samples: Sequence[np.ndarray],
    real: Sequence[np.ndarray],
    data_range: float,
    memorisation_ms_ssim: float = MEMORISATION_MS_SSIM,
) -> GeneratorCheck:
    """Mode collapse (pairwise MS-SSIM, samples vs real) and memorisation (nearest real image)."""
    shapes = {np.shape(image) for image in (*samples, *real)}
    if len(shapes) != 1:
        raise ValueError(f"samples and real images must share one shape, got {sorted(shapes)}")
    weights = weights_for_shape(shapes.pop())
    pairs = [
        (a, b, ms_ssim(samples[a], samples[b], data_range, weights))
        for a, b in combinations(range(len(samples)), 2)
    ]
    if not pairs:
        raise ValueError("diversity needs at least two images")
    report = DiversityReport(
        float(np.mean([value for _, _, value in pairs])),
        mean_pairwise_ms_ssim(real, data_range, weights),
        data_range,
    )
    nearest = [nearest_real_neighbours(s, real, data_range, 1, weights)[0] for s in samples]
    duplicates = sorted((p for p in pairs if p[2] >= NEAR_DUPLICATE_MS_SSIM), key=lambda p: -p[2])
    return GeneratorCheck(report, nearest, weights, memorisation_ms_ssim, tuple(duplicates))

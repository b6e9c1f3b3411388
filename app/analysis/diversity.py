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


def _filtered(images: np.ndarray) -> np.ndarray:
    """Gaussian window over the last two axes of one image or a stack of them."""
    sigma = (0.0,) * (images.ndim - 2) + (GAUSSIAN_SIGMA, GAUSSIAN_SIGMA)
    return ndimage.gaussian_filter(images, sigma, truncate=GAUSSIAN_TRUNCATE, mode="reflect")


def _ssim_maps(x: np.ndarray, y: np.ndarray, data_range: float) -> tuple[np.ndarray, np.ndarray]:
    """Per image (last two axes, 'valid' part only): mean SSIM and mean contrast-structure."""
    mu_x, mu_y = _filtered(x), _filtered(y)
    var_x = _filtered(x * x) - mu_x**2
    var_y = _filtered(y * y) - mu_y**2
    cov = _filtered(x * y) - mu_x * mu_y
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    contrast_structure = (2 * cov + c2) / (var_x + var_y + c2)
    pad = int(GAUSSIAN_TRUNCATE * GAUSSIAN_SIGMA + 0.5)
    crop = (...,) + tuple(slice(pad, s - pad) if s > 2 * pad else slice(None) for s in x.shape[-2:])
    return (
        (luminance * contrast_structure)[crop].mean(axis=(-2, -1)),
        contrast_structure[crop].mean(axis=(-2, -1)),
    )


def ms_ssim(
    x: np.ndarray, y: np.ndarray, data_range: float, weights: Sequence[float] = MS_SSIM_WEIGHTS
) -> float:
    """Multi-scale SSIM of two same-shape 2D images; the number of scales is ``len(weights)``.

    ``prod_{s < S} mean(cs_s) ** w_s * mean(ssim_S) ** w_S`` (negative terms clipped to 0).
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"MS-SSIM needs two 2D images of one shape, got {x.shape} and {y.shape}")
    return float(ms_ssim_pairs(x[None], y[None], data_range, weights)[0])


def ms_ssim_pairs(
    xs: np.ndarray, ys: np.ndarray, data_range: float, weights: Sequence[float] = MS_SSIM_WEIGHTS
) -> np.ndarray:
    """MS-SSIM of ``xs[n]`` with ``ys[n]`` for every n, two (n, rows, cols) stacks at once."""
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 3:
        raise ValueError(f"MS-SSIM pairs need two stacks of one shape, got {x.shape} and {y.shape}")
    scales = len(weights)
    if min(x.shape[1:]) < 2 ** (scales - 1) * 11:
        raise ValueError(
            f"images of {x.shape[1:]} are too small for {scales} scales (need {2 ** (scales - 1) * 11})"
        )
    result = np.ones(len(x))
    for scale, weight in enumerate(weights):
        ssim, contrast_structure = _ssim_maps(x, y, data_range)
        if scale == scales - 1:
            result *= np.maximum(ssim, 0.0) ** weight
        else:
            result *= np.maximum(contrast_structure, 0.0) ** weight
            x, y = _downsample(x), _downsample(y)
    return result


def _downsample(images: np.ndarray) -> np.ndarray:
    """2 x 2 average over the last two axes (an odd last row or column is dropped)."""
    rows, cols = (images.shape[-2] // 2) * 2, (images.shape[-1] // 2) * 2
    i = images[..., :rows, :cols]
    return 0.25 * (i[..., 0::2, 0::2] + i[..., 1::2, 0::2] + i[..., 0::2, 1::2] + i[..., 1::2, 1::2])


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
    return float(np.mean([value for _, _, value in pairwise_ms_ssim(images, data_range, weights)]))


def pairwise_ms_ssim(
    images: Sequence[np.ndarray],
    data_range: float,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    chunk: int = 256,
) -> list[tuple[int, int, float]]:
    """(a, b, MS-SSIM) for every unordered pair a < b of ``images`` (``chunk`` pairs at a time)."""
    stack = np.asarray(images, dtype=np.float64)
    pairs = list(combinations(range(len(stack)), 2))
    values: list[float] = []
    for start in range(0, len(pairs), chunk):
        first, second = np.array(pairs[start : start + chunk]).T
        values.extend(ms_ssim_pairs(stack[first], stack[second], data_range, weights).tolist())
    return [(a, b, value) for (a, b), value in zip(pairs, values, strict=True)]


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
class Alignment:
    """How a sample may be moved before it is compared with a real image: the transformations
    its generator saw its training images under (augmentation), so a copy of any is a copy."""

    max_shift_px: int = 0  # circular shifts of up to this many pixels along rows and columns
    left_right_flip: bool = False  # also compare the sample mirrored left-right

    def variants(self, image: np.ndarray) -> tuple[np.ndarray, list[tuple[bool, int, int]]]:
        """(m, rows, cols) moved copies of ``image`` and, for each, (flipped, row shift, column shift)."""
        shifts = range(-self.max_shift_px, self.max_shift_px + 1)
        moves = [
            (f, r, c)
            for f in ((False, True) if self.left_right_flip else (False,))
            for r in shifts
            for c in shifts
        ]
        copies = [np.roll(image[:, ::-1] if f else image, (r, c), axis=(0, 1)) for f, r, c in moves]
        return np.stack(copies), moves


@dataclass(frozen=True)
class Neighbour:
    index: int  # into the real images
    ms_ssim: float
    mse: float
    flipped: bool = False  # the sample was mirrored left-right to match it
    shift_px: tuple[int, int] = (0, 0)  # then shifted by (rows, columns)


CANDIDATES = 16  # real images scored by MS-SSIM per sample: the best correlated (after alignment)


def nearest_real_images(
    samples: Sequence[np.ndarray],
    real: Sequence[np.ndarray],
    data_range: float,
    count: int = 1,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    alignment: Alignment = Alignment(),
    candidates: int = CANDIDATES,
    chunk: int = 16,
) -> list[list[Neighbour]]:
    """For each sample, the ``count`` real images most similar to it by MS-SSIM (best first).

    Each real image is paired with the ``alignment`` move of the sample (flip, shift) that
    correlates best with it (Pearson, so a change of gain or offset does not hide a copy); the
    ``candidates`` best-correlated real images are then scored by MS-SSIM of the moved sample.
    ``chunk`` samples share one matrix product.
    """
    stack = np.asarray(real, dtype=np.float64)
    standard_real = _standardised(stack).T / stack[0].size
    found = []
    for start in range(0, len(samples), chunk):
        batch = [alignment.variants(np.asarray(s, dtype=np.float64)) for s in samples[start : start + chunk]]
        moved_all = np.concatenate([moved for moved, _ in batch])
        correlations = (_standardised(moved_all) @ standard_real).reshape(len(batch), -1, len(stack))
        for (moved, moves), correlation in zip(batch, correlations, strict=True):
            found.append(_scored(moved, moves, correlation, stack, data_range, count, weights, candidates))
    return found


def _scored(
    moved: np.ndarray,
    moves: list[tuple[bool, int, int]],
    correlation: np.ndarray,
    stack: np.ndarray,
    data_range: float,
    count: int,
    weights: Sequence[float],
    candidates: int,
) -> list[Neighbour]:
    """MS-SSIM of the moved sample with its best-correlated real images, best first.
    ``correlation[m, r]``: of move ``m`` of the sample with real image ``r``."""
    best = np.argmax(correlation, axis=0)  # per real image: the move that matches it best
    best_correlation = correlation[best, np.arange(len(stack))]
    chosen = np.argsort(-best_correlation, kind="stable")[: max(candidates, count)]
    pairs = moved[best[chosen]]
    similarity = ms_ssim_pairs(pairs, stack[chosen], data_range, weights)
    mse = ((pairs - stack[chosen]) ** 2).mean(axis=(1, 2))
    found = [
        Neighbour(int(i), float(v), float(e), moves[best[i]][0], moves[best[i]][1:])
        for i, v, e in zip(chosen, similarity, mse, strict=True)
    ]
    found.sort(key=lambda n: (-n.ms_ssim, n.mse))
    return found[:count]


def _standardised(images: np.ndarray) -> np.ndarray:
    """Each image flattened to zero mean and unit standard deviation (a flat image to zeros)."""
    flat = images.reshape(len(images), -1)
    centred = flat - flat.mean(axis=1, keepdims=True)
    spread = centred.std(axis=1, keepdims=True)
    return centred / np.where(spread > 0, spread, 1.0)


# A sample this close to a real image may be a memorised copy. Judged on the TRAINING head only:
# it lies below every near-copy of the shipped generator's training images (its card's table).
MEMORISATION_MS_SSIM = 0.95
PAIRWISE_REAL = 48  # real images whose mean pairwise MS-SSIM is the diversity reference
NEAR_DUPLICATE_MS_SSIM = 0.95  # two samples this alike: partial mode collapse (one mode, two seeds)


@dataclass(frozen=True)
class GeneratorCheck:
    """Diversity of a generator's samples against real images, and each sample's nearest real one."""

    report: DiversityReport
    nearest: list[Neighbour]  # one per sample, into the real images
    weights: tuple[float, ...]
    memorisation_ms_ssim: float = MEMORISATION_MS_SSIM
    near_duplicates: tuple[tuple[int, int, float], ...] = ()  # sample pairs, most alike first
    alignment: Alignment = Alignment()  # how samples were moved to meet their nearest real image

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
            "alignment": {
                "max_shift_px": self.alignment.max_shift_px,
                "left_right_flip": self.alignment.left_right_flip,
            },
            "nearest_real": [
                {
                    "real_index": n.index,
                    "ms_ssim": n.ms_ssim,
                    "mse": n.mse,
                    "flipped": n.flipped,
                    "shift_px": list(n.shift_px),
                }
                for n in self.nearest
            ],
        }


def check_generator(
    samples: Sequence[np.ndarray],
    real: Sequence[np.ndarray],
    data_range: float,
    memorisation_ms_ssim: float = MEMORISATION_MS_SSIM,
    alignment: Alignment = Alignment(),
    pairwise_real: int = PAIRWISE_REAL,
) -> GeneratorCheck:
    """Mode collapse (pairwise MS-SSIM, samples vs real) and memorisation (nearest real image).

    Every real image is searched for each sample's nearest (moved by ``alignment``); the real
    images' own mean pairwise MS-SSIM is taken over ``pairwise_real`` of them, evenly spaced.
    """
    shapes = {np.shape(image) for image in (*samples, *real)}
    if len(shapes) != 1:
        raise ValueError(f"samples and real images must share one shape, got {sorted(shapes)}")
    weights = weights_for_shape(shapes.pop())
    pairs = pairwise_ms_ssim(samples, data_range, weights)
    if not pairs:
        raise ValueError("diversity needs at least two images")
    report = DiversityReport(
        float(np.mean([value for _, _, value in pairs])),
        mean_pairwise_ms_ssim(evenly_spaced(real, pairwise_real), data_range, weights),
        data_range,
    )
    nearest = [found[0] for found in nearest_real_images(samples, real, data_range, 1, weights, alignment)]
    duplicates = sorted((p for p in pairs if p[2] >= NEAR_DUPLICATE_MS_SSIM), key=lambda p: -p[2])
    return GeneratorCheck(report, nearest, weights, memorisation_ms_ssim, tuple(duplicates), alignment)


def evenly_spaced(images: Sequence[np.ndarray], count: int) -> list[np.ndarray]:
    """At most ``count`` of ``images``, evenly spaced, first and last included."""
    chosen = np.unique(np.linspace(0, len(images) - 1, min(count, len(images))).round().astype(int))
    return [images[i] for i in chosen]

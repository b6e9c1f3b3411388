"""A calibrated detection statistic for a residual map: noise-normalised, multi-scale z maps
thresholded at a stated number of false regions per volume.

A fixed threshold in image units (say 10 % of the intensity range) ignores what the residual's
noise is: a denoiser's residual on a noisy acquisition is mostly the removed noise, a
pseudo-healthy generator's residual is dominated by edges it redraws. Here the residual
``r = original - synthesized`` is read against its own null distribution:

1. Local noise: ``sigma(x)``, the robust SD (1.4826 x median |.|) of a high-pass residual
   (``r`` minus its 1-voxel Gaussian blur, rescaled to white-noise units) in blocks of about
   8 mm, the loudest of each block's neighbours, brought back to the full grid. A lesion
   barely moves a block's median.
2. Lesion scales: ``r`` smoothed with Gaussians matched to spheres of 3-10 mm (the scales a
   radiologist worries about), divided by ``sigma(x)``, for plugins whose residual has a
   systematic part (``ResidualModel.tissue_offset``, declared in their calibration: a
   magnitude-image denoiser taking the Rician noise floor off dark tissue) that part removed
   (the median of the map over the tissue that looks alike in the input: intensity x local
   contrast), and scaled by its own robust SD inside the analysed tissue (the larger of the MAD and the
   99th-percentile estimate, so heavy tails count), so each scale's map is a z map whose null
   is about N(0, 1) even when the noise is spatially correlated.
3. ``z`` is, at each voxel, the scale of largest |z| (sign kept).
4. The threshold ``t`` gives ``false_regions_per_volume`` expected regions on a healthy pair:
   from Gaussian random-field theory (expected Euler characteristic of the excursion set,
   with the smoothness measured from the z map, both signs, summed over the scales), raised to
   a plugin's own calibration when it has one (``NullCalibration``: its healthy residuals on the
   TRAINING head, as false regions per litre against z), because a generator's residual has
   heavier tails than a Gaussian field.

What residual is read, and how, is the plugin's ``ResidualModel`` (in its calibration): the
plain ``original - synthesized``, or for a super-resolution plugin the slab-consistency residual
``original - slab_average(synthesized)`` (the output averaged back over the input's thick
slices and interpolated as the input was: zero for a perfect restoration, whatever detail it
adds between the slices, so only changes the acquired data contradict are read).

Numpy/scipy only; a volume of 9 million voxels takes a few seconds.
"""

from __future__ import annotations

import json
import math
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

LESION_DIAMETERS_MM = (3.0, 6.0, 10.0)
DEFAULT_FALSE_REGIONS_PER_VOLUME = 1.0
NOISE_BLOCK_MM = 8.0
CALIBRATION_FILE = "calibration.json"
# 2: structural SDs as shares of the input's robust range (1 held them in image units).
CALIBRATION_SCHEMA = "synthview-null-calibration/2"
MIN_Z_THRESHOLD = 3.0
# The z thresholds a calibration tabulates: fine steps where the shipped plugins' operating
# points lie, then coarser up to 30 (MAX_CALIBRATION_Z, what a calibration file may hold, follows),
# so a plugin whose healthy residual has heavy tails (the pseudo-healthy plugin's stays above one
# false region per volume at z 12) gets the threshold its stated rate asks for instead of the
# table's last row.
_Z_STEPS = (np.arange(3.0, 12.01, 0.25), np.arange(12.5, 20.01, 0.5), np.arange(21.0, 30.01, 1.0))
CALIBRATION_Z_THRESHOLDS = tuple(float(v) for v in np.round(np.concatenate(_Z_STEPS), 2))
MAD_TO_SD = 1.4826
# A change smaller than this share of the image's robust range (0.5-99.5 percentiles), after
# smoothing at the lesion scale, is never called significant however quiet the residual is: a
# generator that reproduces a clean input almost exactly would otherwise have every faint edge
# it redraws flagged. With z thresholds near 5 it puts the floor of detection at about 5 %.
MIN_CHANGE_FRACTION = 0.01


def sigma_for_diameter(diameter_mm: float) -> float:
    """Gaussian sigma (mm) that best matches a soft sphere of ``diameter_mm`` (R / 2)."""
    return diameter_mm / 4.0


def _kernel_sigmas(sigma_mm: float, spacing_mm_ijk) -> list[float]:
    return [sigma_mm / s for s in np.asarray(spacing_mm_ijk, dtype=float)[::-1]]


def analysis_mask(image: np.ndarray, spacing_mm_ijk, fraction: float = 0.15) -> np.ndarray:
    """The imaged tissue: the image blurred by 2 mm above ``fraction`` of its robust range, holes
    filled (dark ventricles and dark lesions inside stay in). Air and background, where a
    magnitude image's noise floor is all there is, are not tested; NaN is never tested."""
    values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0)
    finite = values[:: max(1, values.size // 500_000)]
    low, high = np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 0.0)
    finite = np.isfinite(np.asarray(image))
    if low > fraction * abs(high):  # no dark background at all (a phantom, a cropped field): all tissue
        return finite
    blurred = ndimage.gaussian_filter(values, _kernel_sigmas(2.0, spacing_mm_ijk), mode="nearest")
    mask = ndimage.binary_fill_holes(blurred > low + fraction * (high - low))
    return mask & finite


# Magnitude (Rician) images: where the signal is under this many noise SDs the noise is not
# Gaussian and has a floor a denoiser rightly removes (on the training head's noisy acquisition the
# residual's median there is 0.15-0.3 noise SDs, over whole tissue classes); not tested.
NOISE_FLOOR_SNR = 4.0


def input_noise_sd(image: np.ndarray, mask: np.ndarray) -> float:
    """Robust noise SD of ``image`` itself inside ``mask``: the MAD of its high-pass (the image
    minus its 1-voxel Gaussian blur, in white-noise units). On a clean image it measures fine
    texture instead, so it never underestimates."""
    values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0)
    high = (values - ndimage.gaussian_filter(values, 1.0, mode="nearest")) / _white_noise_gain(1.0)
    inside = high[mask]
    return MAD_TO_SD * float(np.median(np.abs(inside))) if inside.size else 0.0


def tested_mask(image: np.ndarray, spacing_mm_ijk, noise_floor_snr: float | None = NOISE_FLOOR_SNR) -> np.ndarray:
    """``analysis_mask`` without the tissue whose local mean (1 mm) lies under ``noise_floor_snr``
    noise SDs of the input (none removed when it is None): the voxels the z map tests."""
    mask = analysis_mask(image, spacing_mm_ijk)
    if noise_floor_snr is None:
        return mask
    noise = input_noise_sd(image, mask)
    if noise <= 0:
        return mask
    values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0)
    level = ndimage.gaussian_filter(values, _kernel_sigmas(1.0, spacing_mm_ijk), mode="nearest")
    return mask & (level > noise_floor_snr * noise)


RESIDUAL_PLAIN = "plain"  # original - synthesized
RESIDUAL_SLAB_CONSISTENCY = "slab_consistency"  # original - synthesized averaged over the input's slices


@dataclass(frozen=True)
class ResidualModel:
    """How a plugin's residual is read; declared in its calibration (``calibrate_null`` writes
    it), so the calibration and every later check read the same statistic.

    ``residual``: ``plain`` or ``slab_consistency`` (a super-resolution plugin's own null: the
    output averaged back over the input's thick slices should give the input back).
    ``tissue_offset``: each scale's median over each kind of tissue removed (a magnitude-image
    denoiser takes the Rician noise floor off whole dark tissue classes: not many lesions).
    ``noise_floor_snr``: tissue under this many input-noise SDs is not tested (a magnitude
    image's noise floor); None tests all imaged tissue."""

    residual: str = RESIDUAL_PLAIN
    tissue_offset: bool = False
    noise_floor_snr: float | None = None

    def __post_init__(self):
        if self.residual not in (RESIDUAL_PLAIN, RESIDUAL_SLAB_CONSISTENCY):
            raise ValueError(f"calibration: unknown residual {self.residual!r}")
        if self.noise_floor_snr is not None and not (math.isfinite(self.noise_floor_snr) and self.noise_floor_snr > 0):
            raise ValueError("calibration: noise_floor_snr must be positive")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> ResidualModel:
        if data is None:
            # Files written before the model was declared (2133a39 .. this field) were all
            # measured with the tissue-offset removal and the noise floor on.
            return LEGACY_MODEL
        floor = data.get("noise_floor_snr")
        return cls(
            str(data.get("residual", RESIDUAL_PLAIN)),
            bool(data.get("tissue_offset", False)),
            None if floor is None else float(floor),
        )


PLAIN_MODEL = ResidualModel()
MAGNITUDE_DENOISER_MODEL = ResidualModel(RESIDUAL_PLAIN, True, NOISE_FLOOR_SNR)
LEGACY_MODEL = MAGNITUDE_DENOISER_MODEL
SLAB_CONSISTENCY_MODEL = ResidualModel(RESIDUAL_SLAB_CONSISTENCY)


@dataclass(frozen=True)
class SlabStructure:
    """A thick-slice acquisition linearly interpolated onto a finer grid: along array ``axis``
    (k=0, j=1, i=2) slab ``n`` averages voxels ``phase + n * thickness`` .. ``+ thickness - 1``."""

    axis: int
    thickness: int
    phase: int

    def describe(self) -> str:
        return f"{self.thickness}-voxel slices along array axis {'kji'[self.axis]}"


SLAB_THICKNESSES = range(3, 9)  # voxels: thinner is no thick slice, thicker no acquisition
SLAB_KINK_SHARE = 0.9  # of the second-difference energy on the slab centres


def slab_average(values: np.ndarray, axis: int, thickness: int, phase: int = 0) -> np.ndarray:
    """Average ``values`` over each slab along ``axis`` and interpolate linearly between the slab
    centres back to every voxel (nearest slab beyond the first/last centre): a thick-slice
    acquisition as interpolated onto the fine grid (float32)."""
    moved = np.moveaxis(np.asarray(values, dtype=np.float32), axis, 0)
    count = moved.shape[0]
    starts = np.arange(phase % thickness, count - thickness + 1, thickness)
    if thickness == 1 or starts.size < 2:
        return np.asarray(values, dtype=np.float32).copy()
    slabs = np.stack([moved[s : s + thickness].mean(axis=0) for s in starts])
    centres = starts + (thickness - 1) / 2.0
    positions = np.clip(np.arange(count, dtype=np.float64), centres[0], centres[-1])
    upper = np.clip(np.searchsorted(centres, positions, side="right"), 1, len(centres) - 1)
    lower = upper - 1
    weight = ((positions - centres[lower]) / (centres[upper] - centres[lower])).astype(np.float32)
    shape = (count,) + (1,) * (moved.ndim - 1)
    resampled = slabs[lower] * (1 - weight.reshape(shape)) + slabs[upper] * weight.reshape(shape)
    return np.moveaxis(resampled, 0, axis).astype(np.float32)


def slab_structure(image: np.ndarray) -> SlabStructure | None:
    """The thick slices a fine-grid ``image`` was interpolated from, or None: linear
    interpolation between slab centres leaves the second difference along the slice axis zero
    everywhere but at the centres (at the two voxels around a half-voxel centre), so nearly all
    of its energy falls on one lattice; the thickest lattice that holds ``SLAB_KINK_SHARE`` of
    it (a lattice of 10 voxels also lies on one of 5)."""
    values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
    best = None
    for axis in range(values.ndim):
        count = values.shape[axis]
        if count < 3 * SLAB_THICKNESSES[0]:
            continue
        second = np.abs(np.diff(values, n=2, axis=axis))
        energy = second.sum(axis=tuple(a for a in range(values.ndim) if a != axis))  # at voxels 1..count-2
        total = float(energy.sum())
        if total <= 0:
            continue
        positions = np.arange(1, count - 1)
        for thickness in SLAB_THICKNESSES:
            if count < 3 * thickness:
                continue
            for phase in range(thickness):
                centre = (positions - phase - (thickness - 1) / 2.0) % thickness
                on = (centre < 0.51) | (centre > thickness - 0.51)  # the voxel(s) at a slab centre
                share = float(energy[on].sum()) / total
                if share >= SLAB_KINK_SHARE and (best is None or thickness > best[0].thickness or (thickness == best[0].thickness and share > best[1])):
                    best = (SlabStructure(axis, thickness, phase), share)
    return best[0] if best is not None else None


def slab_consistency_residual(original: np.ndarray, synthesized: np.ndarray, slabs: SlabStructure) -> np.ndarray:
    """``original - slab_average(synthesized)`` on the original's fine grid: what of the output
    the acquired thick slices contradict."""
    averaged = slab_average(synthesized, slabs.axis, slabs.thickness, slabs.phase)
    return (np.asarray(original, np.float32) - averaged).astype(np.float32)


def _white_noise_gain(sigma_voxels: float) -> float:
    """SD of (x - gaussian(x, sigma)) for unit white noise x, per axis combined (3D)."""
    delta = np.zeros((9, 9, 9), np.float32)
    delta[4, 4, 4] = 1.0
    high_pass = delta - ndimage.gaussian_filter(delta, sigma_voxels, mode="constant")
    return float(np.sqrt((high_pass**2).sum()))


def _robust_sd(values: np.ndarray) -> float:
    if values.size == 0:
        return 0.0
    centre = np.median(values)
    return float(MAD_TO_SD * np.median(np.abs(values - centre)))


TAIL_QUANTILE = 99.0  # percent: the null's SD is also read from this quantile of |z|


def _null_spread(centred: np.ndarray) -> float:
    """The null SD of a smoothed map: the larger of the robust SD (MAD) and the 99th percentile
    of |value| over its Gaussian value (2.576). A residual with heavier tails than a Gaussian
    (the structure a generator redraws) is read against those tails, up to three times the
    MAD's; a handful of lesions cover far less than 1 % of the tissue and barely move either."""
    if centred.size == 0:
        return 0.0
    body = _robust_sd(centred)
    tail = float(np.percentile(np.abs(centred), TAIL_QUANTILE)) / 2.5758
    # At most three times the body's: a large change in a small volume is not the null's tail.
    return max(body, min(tail, 3.0 * body))


def local_noise_sigma(residual: np.ndarray, spacing_mm_ijk, mask: np.ndarray) -> np.ndarray:
    """Robust local noise SD of ``residual`` (float32, same shape), from a high-pass residual in
    ``NOISE_BLOCK_MM`` blocks (the loudest of each block's neighbours); blocks with little
    tissue take the global value; floored at a fifth of the median so an exactly reproduced
    background is not divided by zero."""
    values = np.nan_to_num(np.asarray(residual, dtype=np.float32), nan=0.0)
    high = np.abs(values - ndimage.gaussian_filter(values, 1.0, mode="nearest")) / _white_noise_gain(1.0)
    spacing_kji = np.asarray(spacing_mm_ijk, dtype=float)[::-1]
    block = np.maximum(1, np.round(NOISE_BLOCK_MM / spacing_kji)).astype(int)
    grid = [int(math.ceil(n / b)) for n, b in zip(values.shape, block, strict=True)]
    padded_shape = [g * b for g, b in zip(grid, block, strict=True)]
    pad = [(0, p - n) for p, n in zip(padded_shape, values.shape, strict=True)]
    blocks_high = np.pad(np.where(mask, high, np.nan), pad, constant_values=np.nan)
    blocks_high = blocks_high.reshape(grid[0], block[0], grid[1], block[1], grid[2], block[2])
    blocks_high = blocks_high.transpose(0, 2, 4, 1, 3, 5).reshape(*grid, -1)
    counted = np.isfinite(blocks_high).sum(axis=-1)
    global_sigma = MAD_TO_SD * float(np.median(high[mask])) if mask.any() else 0.0
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            per_block = MAD_TO_SD * np.nanmedian(blocks_high, axis=-1)
    enough = counted >= 0.25 * blocks_high.shape[-1]
    per_block = np.where(enough & np.isfinite(per_block), per_block, global_sigma).astype(np.float32)
    # Each block takes the loudest of its neighbours: where the noise changes, the louder level
    # wins (a little less sensitive there, never a row of false regions along the change).
    per_block = ndimage.maximum_filter(per_block, size=3, mode="nearest")
    full = ndimage.zoom(per_block, block.astype(float), order=1, mode="nearest", grid_mode=True)
    full = full[: values.shape[0], : values.shape[1], : values.shape[2]]
    floor = max(0.2 * global_sigma, 1e-6 * max(float(np.abs(values).max()), 1.0))
    return np.maximum(full, floor).astype(np.float32)


@dataclass
class ZMap:
    """The detection statistic: signed z (float32), the analysed mask, and per scale its
    diameter and resel count (the field's volume in units of its smoothness)."""

    z: np.ndarray
    mask: np.ndarray
    diameters_mm: tuple[float, ...]
    resels: tuple[float, ...]
    voxel_ml: float
    null_sd_median: tuple[float, ...] = ()  # per scale, image units: what z = 1 means there

    def flag_level(self, z_threshold: float) -> float:
        """The smoothed change (image units) flagged at ``z_threshold`` in typical tissue, at the
        scale nearest a 6 mm lesion: ties a display window to the operating point."""
        if not self.null_sd_median:
            return 0.0
        index = int(np.argmin([abs(d - 6.0) for d in self.diameters_mm]))
        return float(z_threshold * self.null_sd_median[index])

    @property
    def litres(self) -> float:
        return float(self.mask.sum()) * self.voxel_ml / 1000.0


def _resels(z: np.ndarray, mask: np.ndarray) -> float:
    """Resel count of a smooth field inside ``mask`` from lag-1 correlations per axis
    (Gaussian autocorrelation: FWHM = sqrt(8 ln 2) * sqrt(-1 / (4 ln rho)))."""
    fwhm = []
    field_variance = _robust_sd(z[mask]) ** 2 if mask.any() else 1.0
    for axis in range(3):
        if z.shape[axis] < 2:
            fwhm.append(1.0)
            continue
        front = [slice(None)] * 3
        back = [slice(None)] * 3
        front[axis], back[axis] = slice(1, None), slice(None, -1)
        both = mask[tuple(front)] & mask[tuple(back)]
        diffs = (z[tuple(front)] - z[tuple(back)])[both]
        variance = _robust_sd(diffs) ** 2 if diffs.size > 10 else 2.0 * field_variance
        rho = float(np.clip(1.0 - variance / (2.0 * max(field_variance, 1e-12)), 1e-3, 0.999))
        fwhm.append(max(1.0, math.sqrt(8 * math.log(2)) * math.sqrt(-1.0 / (4 * math.log(rho)))))
    return float(mask.sum()) / float(np.prod(fwhm))


def _masked_smooth(values: np.ndarray, weights: np.ndarray, sigmas_kji: list[float]) -> np.ndarray:
    """Gaussian smoothing inside the mask only (normalised convolution), scaled so white noise
    keeps one variance everywhere: near the mask's edge fewer voxels are averaged, and without
    this the edge would be noisier than the interior and flag false regions there."""
    # The normalised average sum(w v) / sum(w) of white noise has variance sum(w^2) / sum(w)^2;
    # relative to the interior's that is squared / total^2, with squared the mask blurred by the
    # Gaussian of sigma / sqrt(2) (both kernels normalised to sum 1). Dividing the average by
    # its square root leaves smoothed / sqrt(squared).
    total = ndimage.gaussian_filter(weights, sigmas_kji, mode="constant")
    smoothed = ndimage.gaussian_filter(values, sigmas_kji, mode="constant")
    squared = ndimage.gaussian_filter(weights, [s / math.sqrt(2.0) for s in sigmas_kji], mode="constant")
    inside = total > 1e-3
    out = np.zeros_like(smoothed)
    np.divide(smoothed, np.sqrt(np.maximum(squared, 1e-12)), out=out, where=inside)
    return out


def robust_range(image: np.ndarray) -> float:
    values = np.asarray(image, dtype=np.float32).reshape(-1)
    values = values[:: max(1, values.size // 1_000_000)]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0
    low, high = np.percentile(values, [0.5, 99.5])
    return float(high - low)


def residual_z_map(
    residual: np.ndarray,
    image: np.ndarray,
    spacing_mm_ijk,
    calibration: NullCalibration | None = None,
) -> ZMap:
    """The z map of ``residual`` read over ``image``'s tissue (``tested_mask`` with the noise
    floor of the plugin's ``ResidualModel``), with the ``MIN_CHANGE_FRACTION`` floor of
    ``image``'s robust range, the plugin's structural null when its calibration has one and
    its tissue-offset removal when its model asks for it: what compare and the calibration use.
    Without a calibration: the plain model (all tissue tested, nothing removed)."""
    structure = calibration.structure if calibration is not None else None
    diameters = calibration.diameters_mm if calibration is not None else LESION_DIAMETERS_MM
    model = calibration.model if calibration is not None else PLAIN_MODEL
    return z_map(
        residual,
        spacing_mm_ijk,
        tested_mask(image, spacing_mm_ijk, model.noise_floor_snr),
        diameters,
        MIN_CHANGE_FRACTION * robust_range(image),
        image,
        structure,
        model.tissue_offset,
    )


def _white_gain(sigmas_kji: list[float]) -> float:
    """SD of white noise of unit SD after the (normalised) Gaussian: sqrt(sum of squared weights)."""
    size = [2 * int(math.ceil(4 * s)) + 1 for s in sigmas_kji]
    delta = np.zeros(size, np.float32)
    delta[tuple(n // 2 for n in size)] = 1.0
    return float(np.sqrt((ndimage.gaussian_filter(delta, sigmas_kji, mode="constant") ** 2).sum()))


def z_map(
    residual: np.ndarray,
    spacing_mm_ijk,
    mask: np.ndarray,
    diameters_mm: tuple[float, ...] = LESION_DIAMETERS_MM,
    floor: float = 0.0,
    image: np.ndarray | None = None,
    structure: StructuralNull | None = None,
    tissue_offset: bool = False,
) -> ZMap:
    """The multi-scale, noise-normalised z map of ``residual`` (see the module docstring).

    ``floor`` (image units) is the least null SD of a Gaussian-smoothed map; ``structure`` (a
    plugin's calibration) adds, in quadrature to the local noise, the SD its residual has on
    healthy tissue that looks like ``image`` there (intensity and local contrast). With
    ``tissue_offset`` (and ``image``) each scale's map loses its median over each such kind of
    tissue (the systematic part of the residual)."""
    values = np.nan_to_num(np.asarray(residual, dtype=np.float32), nan=0.0)
    mask = np.asarray(mask, bool)
    sigma = local_noise_sigma(values, spacing_mm_ijk, mask)
    wants_bins = image is not None and (structure is not None or tissue_offset)
    bins, image_range = StructuralNull.bins(image, spacing_mm_ijk) if wants_bins else (None, 1.0)
    best = np.zeros(values.shape, np.float32)
    resels, null_medians = [], []
    sample = mask.copy()
    if sample.sum() > 2_000_000:  # the robust SD from a regular subsample: the same to 3 digits
        sample &= (np.indices(mask.shape).sum(axis=0) % 4) == 0
    weights = mask.astype(np.float32)
    masked = values * weights
    for index, diameter in enumerate(diameters_mm):
        kernel = _kernel_sigmas(sigma_for_diameter(diameter), spacing_mm_ijk)
        # Plain smoothed image units (edge-corrected): white noise of SD sigma has SD sigma * gain.
        smoothed = _masked_smooth(masked, weights, kernel)
        null_sd = sigma * _white_gain(kernel)
        if bins is not None and structure is not None:
            null_sd = np.sqrt(null_sd**2 + structure.sd_map(index, bins, image_range) ** 2)
        if floor > 0:
            null_sd = np.maximum(null_sd, floor)
        smoothed /= null_sd
        if bins is not None and tissue_offset:
            smoothed -= _median_by_bin(smoothed[sample], bins[sample])[bins]
        inside = smoothed[sample]
        centre = float(np.median(inside)) if inside.size else 0.0
        # Never below 1: a residual quieter than its noise estimate (or than the floor) is not
        # read as louder than it is.
        spread = max(_null_spread(inside - centre), 1.0)
        smoothed -= centre
        smoothed /= spread
        null_medians.append(float(np.median(null_sd[sample])) * spread if sample.any() else 0.0)
        smoothed[~mask] = 0.0
        resels.append(_resels(smoothed, mask))
        larger = np.abs(smoothed) > np.abs(best)
        best[larger] = smoothed[larger]
    spacing = np.asarray(spacing_mm_ijk, dtype=float)
    return ZMap(best, mask, tuple(diameters_mm), tuple(resels), float(np.prod(spacing)) / 1000.0, tuple(null_medians))


MIN_BIAS_BIN_SAMPLES = 500


def _median_by_bin(values: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Per tissue bin (``StructuralNull.bins``), the median of ``values`` there; bins with fewer
    than ``MIN_BIAS_BIN_SAMPLES`` voxels take the overall median."""
    count = (len(INTENSITY_EDGES) + 1) * (len(CONTRAST_EDGES) + 1)
    medians = np.full(count, float(np.median(values)) if values.size else 0.0, np.float32)
    order = np.argsort(bins, kind="stable")
    edges = np.cumsum(np.bincount(bins.astype(np.int64), minlength=count))
    for index, group in enumerate(np.split(values[order], edges[:-1])):
        if group.size >= MIN_BIAS_BIN_SAMPLES:
            medians[index] = float(np.median(group))
    return medians


INTENSITY_EDGES = (0.1, 0.25, 0.4, 0.55, 0.7, 0.85)  # of the robust range: 7 bins
CONTRAST_EDGES = (0.01, 0.02, 0.04, 0.07, 0.12)  # local contrast, of the robust range: 6 bins
MIN_BIN_VOXELS = 1000
STRUCTURE_QUANTILE = 99.5  # percent of |smoothed residual| in a bin, read as
STRUCTURE_Z = 2.807  # ... this many SDs of a Gaussian


@dataclass(frozen=True)
class StructuralNull:
    """How much a plugin changes healthy tissue, by what the tissue looks like: per lesion
    scale, the SD (noise removed in quadrature) of its smoothed residual on healthy training
    inputs, in bins of intensity x local contrast of the input. SDs are shares of the input's
    robust range (``robust_range``, about the 99.5th percentile the plugins normalise by), so the
    table reads the same on a 0-255 NIfTI and a 0-4095 DICOM of the same head: in the
    calibration head's own units (schema 1) a DICOM scaled 4x had its z values more than
    doubled (the pseudo-healthy plugin: 16 false regions instead of 0 on the same demo head)."""

    sd: tuple[tuple[float, ...], ...]  # [scale][intensity bin * contrast bins + contrast bin]

    @staticmethod
    def bins(image: np.ndarray, spacing_mm_ijk) -> tuple[np.ndarray, float]:
        """Each voxel's bin, and the robust range its bins (and the table's shares) are of."""
        values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0)
        scale = robust_range(values) or 1.0
        low = float(np.percentile(values[:: max(1, values.size // 1_000_000)], 0.5))
        level = ndimage.gaussian_filter(values, _kernel_sigmas(1.0, spacing_mm_ijk), mode="nearest")
        detail = np.abs(values - ndimage.gaussian_filter(values, _kernel_sigmas(2.0, spacing_mm_ijk), mode="nearest"))
        contrast = ndimage.gaussian_filter(detail, _kernel_sigmas(2.0, spacing_mm_ijk), mode="nearest")
        intensity_bin = np.digitize((level - low) / scale, INTENSITY_EDGES)
        contrast_bin = np.digitize(contrast / scale, CONTRAST_EDGES)
        return (intensity_bin * (len(CONTRAST_EDGES) + 1) + contrast_bin).astype(np.int16), scale

    def sd_map(self, scale_index: int, bins: np.ndarray, image_range: float) -> np.ndarray:
        """The SD at each voxel in image units: its bin's share times ``image_range``."""
        return np.asarray(self.sd[scale_index], np.float32)[bins] * np.float32(image_range)

    @staticmethod
    def measure(
        residual: np.ndarray,
        image: np.ndarray,
        spacing_mm_ijk,
        diameters_mm=LESION_DIAMETERS_MM,
        noise_floor_snr: float | None = None,
    ) -> StructuralNull:
        """The table from one healthy (residual, input image) pair, over ``tested_mask``."""
        values = np.nan_to_num(np.asarray(residual, dtype=np.float32), nan=0.0)
        mask = tested_mask(image, spacing_mm_ijk, noise_floor_snr)
        sigma = local_noise_sigma(values, spacing_mm_ijk, mask)
        bins, image_range = StructuralNull.bins(image, spacing_mm_ijk)
        count = (len(INTENSITY_EDGES) + 1) * (len(CONTRAST_EDGES) + 1)
        weights = mask.astype(np.float32)
        table = []
        for diameter in diameters_mm:
            kernel = _kernel_sigmas(sigma_for_diameter(diameter), spacing_mm_ijk)
            smoothed = _masked_smooth(values * weights, weights, kernel)
            gain = _white_gain(kernel)
            overall = []
            per_bin = []
            for index in range(count):
                chosen = mask & (bins == index)
                if chosen.sum() < MIN_BIN_VOXELS:
                    per_bin.append(None)
                    continue
                a = smoothed[chosen]
                # A high quantile, not the MAD: a generator's changes to healthy tissue are
                # sparse (mostly exactly nothing, now and then a large change).
                spread = float(np.percentile(np.abs(a - np.median(a)), STRUCTURE_QUANTILE)) / STRUCTURE_Z
                noise = float(np.median(sigma[chosen] ** 2)) * gain**2
                per_bin.append(math.sqrt(max(spread**2 - noise, 0.0)) / image_range)
                overall.append(per_bin[-1])
            fallback = float(np.max(overall)) if overall else 0.0
            table.append(tuple(fallback if v is None else float(v) for v in per_bin))
        return StructuralNull(tuple(table))

    def combined(self, other: StructuralNull) -> StructuralNull:
        """The larger SD of two tables, bin by bin (the worst input kind)."""
        return StructuralNull(
            tuple(tuple(max(a, b) for a, b in zip(x, y, strict=True)) for x, y in zip(self.sd, other.sd, strict=True))
        )


def expected_false_regions(z_threshold: float, resels: tuple[float, ...]) -> float:
    """Expected number of regions above +t or below -t in a smooth Gaussian null field of
    these resel counts (3D Euler characteristic density, plus the 0-dimensional term for a
    small search volume), summed over the scales."""
    t = float(z_threshold)
    tail = 0.5 * math.erfc(t / math.sqrt(2.0))
    density = (4 * math.log(2)) ** 1.5 / (2 * math.pi) ** 2 * max(t * t - 1.0, 0.0) * math.exp(-t * t / 2)
    return 2.0 * sum(r * density + tail for r in resels)


def random_field_threshold(resels: tuple[float, ...], false_regions_per_volume: float) -> float:
    """The z threshold with ``false_regions_per_volume`` expected false regions (bisection),
    never below ``MIN_Z_THRESHOLD`` (a tiny or featureless volume would otherwise get z ~ 1)."""
    low, high = MIN_Z_THRESHOLD, 12.0
    for _ in range(60):
        middle = (low + high) / 2
        if expected_false_regions(middle, resels) > false_regions_per_volume:
            low = middle
        else:
            high = middle
    return high


@dataclass(frozen=True)
class NullCalibration:
    """A plugin's healthy-residual calibration: false regions per litre of analysed tissue when
    thresholding this module's z map at each of ``z_thresholds``, measured on lesion-free
    inputs (the plugin's training head) run through the plugin. Stored as ``calibration.json``
    in the plugin folder."""

    source: str
    z_thresholds: tuple[float, ...]
    false_regions_per_litre: tuple[float, ...]
    diameters_mm: tuple[float, ...] = LESION_DIAMETERS_MM
    structure: StructuralNull | None = None
    model: ResidualModel = PLAIN_MODEL

    def threshold_for(self, false_regions_per_volume: float, litres: float) -> float:
        """The lowest tabulated z whose false-region count for ``litres`` stays within the rate;
        the highest tabulated z when none does."""
        for threshold, rate in zip(self.z_thresholds, self.false_regions_per_litre, strict=True):
            if rate * litres <= false_regions_per_volume:
                return float(threshold)
        return float(self.z_thresholds[-1])

    def to_dict(self) -> dict:
        data = {"schema": CALIBRATION_SCHEMA, **asdict(self)}
        data["structure"] = (
            {"intensity_edges": list(INTENSITY_EDGES), "contrast_edges": list(CONTRAST_EDGES), "sd": self.structure.sd}
            if self.structure is not None
            else None
        )
        data["model"] = self.model.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> NullCalibration:
        """Every value checked: a calibration raises the z threshold and sets the lesion scales,
        so an infinite or absurd threshold, or no (or a zero) scale, would silently stop every
        region from being flagged; a file that is not one is a ValueError, never another error."""
        if isinstance(data, dict) and data.get("schema") == "synthview-null-calibration/1":
            raise ValueError(
                "a schema-1 calibration (its structural SDs in the calibration head's intensity units, so"
                " it misreads inputs of another scale): run calibrate_null again"
            )
        if not isinstance(data, dict) or data.get("schema") != CALIBRATION_SCHEMA:
            raise ValueError(f"not a SynthView null calibration (schema {CALIBRATION_SCHEMA})")
        thresholds = _numbers(data.get("z_thresholds"), "z_thresholds")
        rates = _numbers(data.get("false_regions_per_litre"), "false_regions_per_litre")
        if not thresholds or len(thresholds) != len(rates) or list(thresholds) != sorted(thresholds):
            raise ValueError("calibration: z_thresholds must be increasing, one rate each")
        if any(not 0 < v <= MAX_CALIBRATION_Z for v in thresholds):
            raise ValueError(f"calibration: z_thresholds must lie in (0, {MAX_CALIBRATION_Z:g}]")
        if any(not math.isfinite(v) or v < 0 for v in rates):
            raise ValueError("calibration: rates must be finite and non-negative")
        diameters = _numbers(data.get("diameters_mm", LESION_DIAMETERS_MM), "diameters_mm")
        if not 0 < len(diameters) <= MAX_CALIBRATION_SCALES or any(
            not 0 < v <= MAX_LESION_DIAMETER_MM for v in diameters
        ):
            raise ValueError(
                f"calibration: diameters_mm must be 1 to {MAX_CALIBRATION_SCALES} lesion sizes in"
                f" (0, {MAX_LESION_DIAMETER_MM:g}] mm"
            )
        model = data.get("model")
        if model is not None and not isinstance(model, dict):
            raise ValueError("calibration: model must be a mapping")
        return cls(
            str(data.get("source", "")),
            thresholds,
            rates,
            diameters,
            _structure(data.get("structure"), diameters),
            ResidualModel.from_dict(model),
        )

    @classmethod
    def load(cls, path: str | Path) -> NullCalibration:
        """The calibration in ``path``; ValueError (or OSError) for anything else, read no
        further than ``MAX_CALIBRATION_BYTES`` (a device or a huge file is not read whole)."""
        path = Path(path)
        if not stat.S_ISREG(path.stat().st_mode):
            raise ValueError(f"{path.name} is not a regular file")
        with open(path, "rb") as stream:
            raw = stream.read(MAX_CALIBRATION_BYTES + 1)
        if len(raw) > MAX_CALIBRATION_BYTES:
            raise ValueError(f"larger than {MAX_CALIBRATION_BYTES // 1024} KiB: not a calibration")
        try:
            data = json.loads(raw.decode("utf-8"))
        except RecursionError as error:  # nested deeper than the interpreter's stack
            raise ValueError("nested too deeply: not a calibration") from error
        return cls.from_dict(data)


# A calibration file is a few kB (a table of 63 thresholds and a 3 x 42 structure table).
MAX_CALIBRATION_BYTES = 1 << 20
# The measured table runs to CALIBRATION_Z_THRESHOLDS[-1] (30: a generator's healthy residual can
# still make regions at z 12); a table reaching 2.5 times that was not measured by calibrate_null.
MAX_CALIBRATION_Z = 2.5 * CALIBRATION_Z_THRESHOLDS[-1]
MAX_CALIBRATION_SCALES = 8  # each lesion scale is a full smoothing pass over the volume
MAX_LESION_DIAMETER_MM = 100.0


def _numbers(values, name: str) -> tuple[float, ...]:
    """A JSON list of numbers as floats (a string or a mapping is not one)."""
    if not isinstance(values, (list, tuple)) or any(
        isinstance(v, bool) or not isinstance(v, (int, float)) for v in values
    ):
        raise ValueError(f"calibration: {name} must be a list of numbers")
    return tuple(float(v) for v in values)


def measure_calibration(
    healthy: list[tuple[np.ndarray, np.ndarray]],  # (residual, input image)
    spacing_mm_ijk,
    source: str,
    z_thresholds: tuple[float, ...] = CALIBRATION_Z_THRESHOLDS,
    with_structure: bool = True,
    model: ResidualModel = PLAIN_MODEL,
) -> NullCalibration:
    """The structural null of lesion-free (residual, input image) pairs (the largest SD over
    them, bin by bin), then false regions per litre against z with it: every region found on
    them is false. The residuals are the ones ``model`` reads (the caller makes them)."""
    from app.analysis.residual_regions import signed_components

    structure = None
    if with_structure:
        for residual, image in healthy:
            table = StructuralNull.measure(residual, image, spacing_mm_ijk, noise_floor_snr=model.noise_floor_snr)
            structure = table if structure is None else structure.combined(table)
    partial = NullCalibration(
        source, tuple(float(t) for t in z_thresholds), (0.0,) * len(z_thresholds), LESION_DIAMETERS_MM, structure, model
    )
    counts = np.zeros(len(z_thresholds))
    litres = 0.0
    for residual, image in healthy:
        zmap = residual_z_map(residual, image, spacing_mm_ijk, partial)
        litres += zmap.litres
        for index, threshold in enumerate(z_thresholds):
            _, positive, negative = signed_components(zmap.z, threshold)
            counts[index] += positive + negative
    rates = tuple(float(c / max(litres, 1e-9)) for c in counts)
    return NullCalibration(source, tuple(float(t) for t in z_thresholds), rates, LESION_DIAMETERS_MM, structure, model)


def _structure(data, diameters: tuple[float, ...]) -> StructuralNull | None:
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("sd"), list):
        raise ValueError("calibration: structure must be a mapping with an sd table")
    if list(data.get("intensity_edges", [])) != list(INTENSITY_EDGES) or list(
        data.get("contrast_edges", [])
    ) != list(CONTRAST_EDGES):
        raise ValueError("calibration: structural null made with other bins; run calibrate_null again")
    count = (len(INTENSITY_EDGES) + 1) * (len(CONTRAST_EDGES) + 1)
    table = tuple(_numbers(row, "structure sd rows") for row in data["sd"])
    if len(table) != len(diameters) or any(len(row) != count for row in table):
        raise ValueError("calibration: structural null table has the wrong shape")
    if any(not math.isfinite(v) or v < 0 for row in table for v in row):
        raise ValueError("calibration: structural null SDs must be finite and non-negative")
    return StructuralNull(table)


@dataclass(frozen=True)
class OperatingPoint:
    """The z threshold used and how it was chosen (recorded in every report)."""

    z_threshold: float
    false_regions_per_volume: float
    random_field_threshold: float
    calibration_threshold: float | None
    source: str

    def to_dict(self) -> dict:
        return asdict(self)


def operating_point(
    zmap: ZMap, false_regions_per_volume: float, calibration: NullCalibration | None = None
) -> OperatingPoint:
    """The default threshold: random-field theory for the stated rate, raised to the plugin's
    calibration when it asks for more."""
    field = random_field_threshold(zmap.resels, false_regions_per_volume)
    calibrated = (
        calibration.threshold_for(false_regions_per_volume, zmap.litres) if calibration is not None else None
    )
    if calibrated is not None and calibrated > field:
        source = f"plugin calibration ({calibration.source})"
        chosen = calibrated
    else:
        source = "Gaussian random-field theory on the measured noise"
        chosen = field
    return OperatingPoint(float(chosen), float(false_regions_per_volume), float(field), calibrated, source)

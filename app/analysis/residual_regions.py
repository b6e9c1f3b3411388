"""Residual maps and the connected regions where they exceed a threshold.

For a pseudo-healthy generator the residual original - healthy is where the generator changed
the anatomy: lesions it removed, or structure it invented. The residual is smoothed (Gaussian,
sigma in millimetres so anisotropic voxels are treated fairly), thresholded and split into
26-connected regions, each reported with its volume in mL, peak and mean residual and centroid
in LPS millimetres.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from app.core.volume import Geometry

CONNECTIVITY_26 = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class ResidualSettings:
    """How a residual is turned into regions; recorded in every report."""

    threshold: float  # on the smoothed |residual|, in the image's units
    smoothing_sigma_mm: float = 1.0
    min_volume_ml: float = 0.0
    signed: str = "absolute"  # "absolute", "positive" (original brighter) or "negative"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Region:
    """One connected region above threshold. Volumes in mL (1 mL = 1000 mm^3)."""

    label: int
    voxel_count: int
    volume_ml: float
    peak_residual: float  # signed value of largest magnitude inside the region (smoothed map)
    mean_residual: float  # mean signed smoothed residual inside the region
    centroid_lps_mm: tuple[float, float, float]
    centroid_ijk: tuple[float, float, float]
    bbox_kji: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]  # [start, stop) per axis

    def to_dict(self) -> dict:
        data = asdict(self)
        data["centroid_lps_mm"] = [round(v, 3) for v in self.centroid_lps_mm]
        data["centroid_ijk"] = [round(v, 3) for v in self.centroid_ijk]
        data["bbox_kji"] = [list(b) for b in self.bbox_kji]
        return data


def residual(original: np.ndarray, output: np.ndarray) -> np.ndarray:
    """original - output as float32 (positive where the generator darkened / removed something bright)."""
    return np.asarray(original, dtype=np.float32) - np.asarray(output, dtype=np.float32)


def smooth(values: np.ndarray, spacing_mm_ijk, sigma_mm: float) -> np.ndarray:
    """Gaussian smoothing with ``sigma_mm`` converted to voxels per axis; NaNs count as 0."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0)
    if sigma_mm <= 0:
        return values
    sigma_kji = [sigma_mm / s for s in np.asarray(spacing_mm_ijk, dtype=float)[::-1]]
    return ndimage.gaussian_filter(values, sigma_kji, mode="nearest")


def find_regions(
    residual_map: np.ndarray, geometry: Geometry, settings: ResidualSettings
) -> tuple[list[Region], np.ndarray]:
    """Regions of the smoothed residual above ``settings.threshold``, largest first, and the label map."""
    smoothed = smooth(residual_map, geometry.spacing_mm, settings.smoothing_sigma_mm)
    if settings.signed == "positive":
        above = smoothed > settings.threshold
    elif settings.signed == "negative":
        above = smoothed < -settings.threshold
    elif settings.signed == "absolute":
        above = np.abs(smoothed) > settings.threshold
    else:
        raise ValueError(f"signed must be 'absolute', 'positive' or 'negative', not {settings.signed!r}")
    labels, count = ndimage.label(above, structure=CONNECTIVITY_26)
    voxel_ml = float(np.prod(geometry.spacing_mm)) / 1000.0
    regions: list[Region] = []
    slices = ndimage.find_objects(labels)
    for index, box in enumerate(slices, start=1):
        if box is None:
            continue
        inside = labels[box] == index
        values = smoothed[box][inside]
        voxel_count = int(inside.sum())
        volume_ml = voxel_count * voxel_ml
        if volume_ml < settings.min_volume_ml:
            continue
        kji = np.argwhere(inside).mean(axis=0) + np.array([s.start for s in box])
        ijk = kji[::-1]
        lps = geometry.lps_from_index(ijk)
        peak = float(values[np.argmax(np.abs(values))])
        regions.append(
            Region(
                label=index,
                voxel_count=voxel_count,
                volume_ml=volume_ml,
                peak_residual=peak,
                mean_residual=float(values.mean()),
                centroid_lps_mm=tuple(float(v) for v in lps),
                centroid_ijk=tuple(float(v) for v in ijk),
                bbox_kji=tuple((s.start, s.stop) for s in box),
            )
        )
    regions.sort(key=lambda r: (-abs(r.peak_residual) * r.voxel_count, r.label))
    return regions, labels


def default_threshold(original: np.ndarray, fraction: float = 0.1) -> float:
    """A starting threshold: ``fraction`` of the original's robust intensity range (0.5-99.5 percentiles).

    A change of 10 % of the image's contrast range is far above generator noise and well below a
    lesion's contrast; the user adjusts it in the panel or with ``--threshold``.
    """
    values = np.asarray(original, dtype=np.float32)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 1.0
    low, high = np.percentile(values[:: max(1, values.size // 1_000_000)], [0.5, 99.5])
    scale = float(high - low)
    return fraction * scale if scale > 0 else 1.0


def calibrated_threshold(
    healthy_residuals: list[np.ndarray],
    spacing_mm_ijk,
    smoothing_sigma_mm: float = 1.0,
    percentile: float = 99.9,
    masks: list[np.ndarray] | None = None,
) -> float:
    """A threshold calibrated the way a user would: on lesion-free scans run through the same plugin.

    ``healthy_residuals`` are original - output of lesion-free inputs (any shapes, same voxel
    spacing); they are smoothed as ``find_regions`` smooths, and the threshold is the
    ``percentile`` of the smoothed |residual| over all their voxels (inside ``masks`` when given,
    e.g. the brain). About (100 - percentile) % of healthy voxels then lie above it: the plugin's
    own level of change on normal tissue, not a guess from the image's intensity range.
    """
    if not healthy_residuals:
        raise ValueError("calibration needs at least one lesion-free residual")
    if masks is not None and len(masks) != len(healthy_residuals):
        raise ValueError("give one mask per calibration residual")
    values = []
    for index, values_map in enumerate(healthy_residuals):
        smoothed = np.abs(smooth(values_map, spacing_mm_ijk, smoothing_sigma_mm))
        values.append(smoothed[np.asarray(masks[index], bool)] if masks is not None else smoothed.ravel())
    pooled = np.concatenate(values)
    if pooled.size == 0:
        raise ValueError("the calibration masks select no voxels")
    return float(np.percentile(pooled, percentile))

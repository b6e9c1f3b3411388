"""Residual maps and the connected regions where they exceed a threshold.

For a pseudo-healthy generator the residual original - healthy is where the generator changed
the anatomy: lesions it removed, or structure it invented. The residual is smoothed (Gaussian,
sigma in millimetres so anisotropic voxels are treated fairly), thresholded and split into
26-connected regions, each reported with its volume in mL, peak and mean residual and centroid
in LPS millimetres.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import ndimage

from app.core.volume import Geometry

CONNECTIVITY_26 = np.ones((3, 3, 3), dtype=bool)
REGION_RESIDUAL = "residual"
REGION_OUTSIDE_RANGE = "outside_input_range"
REGION_KINDS = {
    REGION_RESIDUAL: "changed by the generator",
    REGION_OUTSIDE_RANGE: "input outside the plugin's range, not synthesized",
}


@dataclass(frozen=True)
class ResidualSettings:
    """How a residual is turned into regions; recorded in every report."""

    threshold: float  # on the statistic: z (see app.analysis.detection) or the smoothed |residual|
    smoothing_sigma_mm: float = 1.0
    min_volume_ml: float = 0.0
    signed: str = "absolute"  # "absolute", "positive" (original brighter) or "negative"
    statistic: str = "residual"  # "z": calibrated z map; "residual": image units (--threshold)

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
    peak_z: float | None = None  # signed z of largest magnitude (statistic "z")
    kind: str = REGION_RESIDUAL

    @property
    def sign(self) -> str:
        """'+' where the original is brighter than the synthesized (signal removed), '-' where darker."""
        return "+" if self.peak_residual >= 0 else "-"

    @property
    def description(self) -> str:
        return REGION_KINDS.get(self.kind, self.kind)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["sign"] = self.sign
        data["description"] = self.description
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


def signed_components(statistic: np.ndarray, threshold: float) -> tuple[np.ndarray, int, int]:
    """Labels of the 26-connected regions above +threshold (1..P) and below -threshold
    (P+1..P+N): a region has one sign, so a bright and a dark change side by side stay two."""
    positive, count_positive = ndimage.label(statistic > threshold, structure=CONNECTIVITY_26)
    negative, count_negative = ndimage.label(statistic < -threshold, structure=CONNECTIVITY_26)
    labels = positive.astype(np.int32)
    labels[negative > 0] = negative[negative > 0] + count_positive
    return labels, count_positive, count_negative


# A change's own peak is looked for this far around each voxel (half the largest lesion scale):
# two changes further apart keep one half-peak level each, however different their strengths.
LOCAL_PEAK_RADIUS_MM = 5.0


def _trim_to_half_peak(labels: np.ndarray, smoothed: np.ndarray, spacing_mm_ijk=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Each z region cut down to where the smoothed residual reaches half its local peak (the
    largest |value| of the region within ``LOCAL_PEAK_RADIUS_MM``), then split into its
    26-connected pieces, each a region: the evidence spreads as far as the largest lesion scale
    smooths it, the change itself does not. Half of the region's one peak would drop a second,
    weaker change that the smoothing joined to a strong one (a 25-unit change 12 mm from a
    60-unit one vanished) and report two changes as one region centred between them."""
    spacing_kji = np.asarray(spacing_mm_ijk, dtype=float)[::-1]
    reach = [int(np.floor(LOCAL_PEAK_RADIUS_MM / s)) for s in spacing_kji]
    axes = np.ogrid[tuple(slice(-r, r + 1) for r in reach)]
    ball = sum((a * s) ** 2 for a, s in zip(axes, spacing_kji, strict=True)) <= LOCAL_PEAK_RADIUS_MM**2
    trimmed = np.zeros_like(labels)
    count = 0
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        inside = labels[box] == index
        magnitude = np.where(inside, np.abs(smoothed[box]), 0.0)
        local_peak = ndimage.maximum_filter(magnitude, footprint=ball, mode="constant", cval=0.0)
        keep = inside & (magnitude >= 0.5 * local_peak) & (magnitude > 0)
        pieces, found = ndimage.label(keep, structure=CONNECTIVITY_26)
        trimmed[box][keep] = pieces[keep] + count
        count += found
    return trimmed


def find_regions(
    residual_map: np.ndarray,
    geometry: Geometry,
    settings: ResidualSettings,
    statistic: np.ndarray | None = None,
) -> tuple[list[Region], np.ndarray]:
    """Regions above ``settings.threshold``, largest first, and the label map.

    With ``statistic`` (a signed z map, ``settings.statistic == "z"``) the regions are where
    |z| exceeds the threshold, one sign each, with their peak z, each cut to where the smoothed
    residual reaches half its peak (its volume is the change's, not the smoothing's); otherwise
    where the smoothed residual exceeds the threshold (image units). Peak and mean residual are
    always the smoothed residual's.
    """
    smoothed = smooth(residual_map, geometry.spacing_mm, settings.smoothing_sigma_mm)
    if statistic is not None:
        labels, _, _ = signed_components(statistic, settings.threshold)
        labels = _trim_to_half_peak(labels, smoothed, geometry.spacing_mm)
        return _describe_regions(labels, smoothed, geometry, settings, statistic), labels
    if settings.signed == "positive":
        above = smoothed > settings.threshold
    elif settings.signed == "negative":
        above = smoothed < -settings.threshold
    elif settings.signed == "absolute":
        above = np.abs(smoothed) > settings.threshold
    else:
        raise ValueError(f"signed must be 'absolute', 'positive' or 'negative', not {settings.signed!r}")
    labels, _ = ndimage.label(above, structure=CONNECTIVITY_26)
    return _describe_regions(labels, smoothed, geometry, settings, None), labels


def _describe_regions(
    labels: np.ndarray,
    smoothed: np.ndarray,
    geometry: Geometry,
    settings: ResidualSettings,
    statistic: np.ndarray | None,
    kind: str = REGION_RESIDUAL,
) -> list[Region]:
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
        peak_z = None
        if statistic is not None:
            z_values = statistic[box][inside]
            peak_z = float(z_values[np.argmax(np.abs(z_values))])
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
                peak_z=peak_z,
                kind=kind,
            )
        )
    if statistic is not None:
        regions.sort(key=lambda r: (-abs(r.peak_z), r.label))
    else:
        regions.sort(key=lambda r: (-abs(r.peak_residual) * r.voxel_count, r.label))
    return regions


def outside_range_regions(
    original: np.ndarray,
    geometry: Geometry,
    low: float,
    high: float,
    margin: float,
    min_volume_ml: float,
    first_label: int,
) -> tuple[list[Region], np.ndarray]:
    """Regions where the input lies more than ``margin`` outside the plugin's input range
    [low, high]: the generator never saw those values (they were clipped or passed through),
    so what it shows there is not synthesized. Labels start at ``first_label``. A missing (NaN)
    voxel has no value: it is outside no range."""
    values = np.asarray(original, dtype=np.float32)
    measured = np.isfinite(values)
    values = np.where(measured, values, np.float32(0.0))
    outside = measured & ((values > high + margin) | (values < low - margin))
    labels, _ = ndimage.label(outside, structure=CONNECTIVITY_26)
    excess = np.where(values > high, values - high, np.where(values < low, values - low, 0.0))
    settings = ResidualSettings(threshold=margin, smoothing_sigma_mm=0.0, min_volume_ml=min_volume_ml)
    regions = _describe_regions(labels, excess, geometry, settings, None, REGION_OUTSIDE_RANGE)
    shifted = np.where(labels > 0, labels + first_label - 1, 0).astype(np.int32)
    regions = [replace(r, label=r.label + first_label - 1) for r in regions]
    return regions, shifted


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

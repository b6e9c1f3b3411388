"""Noise and contrast between ROIs: noise SD, contrast-to-noise and contrast-to-background.

Definitions (as in image-quality phantom work, e.g. AAPM TG-233):

- noise SD: the sample standard deviation (n - 1) of the voxels in a uniform ROI;
- CNR = |mean_signal - mean_background| / SD_background;
- contrast-to-background CB = (mean_signal - mean_background) / mean_background (signed; not
  defined when the background mean is 0, e.g. on a difference map).

Regions are in world coordinates, so each figure is measured on every compare volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.annotations.roi_stats import region_extends_outside, roi_statistics
from app.annotations.shapes import PlanarRegion
from app.core.volume import Volume


@dataclass(frozen=True)
class NoiseMeasurement:
    """Noise in a uniform ROI: mean, sample SD and how many voxels they come from; ``note`` says
    why a figure is missing or that the ROI reaches beyond the volume (only the voxels inside
    are measured)."""

    mean: float
    sd: float
    voxel_count: int
    units: str = ""
    note: str = ""

    def to_dict(self) -> dict:
        data = {
            "mean": _json_float(self.mean),
            "sd": _json_float(self.sd),
            "voxel_count": self.voxel_count,
            "units": self.units,
        }
        if self.note:
            data["note"] = self.note
        return data


@dataclass(frozen=True)
class ContrastMeasurement:
    """Contrast between a signal ROI and a background ROI on one volume."""

    mean_signal: float
    mean_background: float
    sd_background: float
    cnr: float
    contrast_to_background: float
    signal_voxels: int
    background_voxels: int
    note: str = ""

    def to_dict(self) -> dict:
        data = {
            "mean_signal": _json_float(self.mean_signal),
            "mean_background": _json_float(self.mean_background),
            "sd_background": _json_float(self.sd_background),
            "cnr": _json_float(self.cnr),
            "contrast_to_background": _json_float(self.contrast_to_background),
            "signal_voxels": self.signal_voxels,
            "background_voxels": self.background_voxels,
        }
        if self.note:
            data["note"] = self.note
        return data


def noise_sd(volume: Volume, roi: PlanarRegion) -> NoiseMeasurement:
    """Sample SD (n - 1) of ``volume``'s voxels inside ``roi``: NaN when it covers fewer than two
    (one voxel has no sample SD; 0 would read as a noiseless region), with a note saying so."""
    stats = roi_statistics(roi, volume)
    sd = stats.sd if stats.voxel_count >= 2 else float("nan")
    return NoiseMeasurement(stats.mean, sd, stats.voxel_count, stats.units, _coverage_note(roi, volume, stats.voxel_count))


def _coverage_note(roi: PlanarRegion, volume: Volume, voxel_count: int) -> str:
    if voxel_count == 0:
        return "the ROI covers no voxel of this volume"
    notes = []
    if voxel_count < 2:
        notes.append("one voxel: no sample SD (n - 1)")
    if region_extends_outside(roi, volume.geometry, volume.shape_kji):
        notes.append(f"the ROI reaches beyond the volume: only the {voxel_count} voxel(s) inside are measured")
    return "; ".join(notes)


def contrast_measures(
    mean_signal: float, mean_background: float, sd_background: float
) -> tuple[float, float]:
    """(CNR, contrast-to-background); NaN where the denominator is 0 or unknown."""
    difference = mean_signal - mean_background
    cnr = abs(difference) / sd_background if sd_background > 0 else float("nan")
    cb = difference / mean_background if mean_background != 0 else float("nan")
    return float(cnr), float(cb)


def cnr(volume: Volume, roi_signal: PlanarRegion, roi_background: PlanarRegion) -> ContrastMeasurement:
    """CNR and contrast-to-background of ``roi_signal`` against ``roi_background`` on ``volume``."""
    signal = noise_sd(volume, roi_signal)
    background = noise_sd(volume, roi_background)
    ratio, cb = contrast_measures(signal.mean, background.mean, background.sd)
    notes = [f"{role}: {m.note}" for role, m in (("signal", signal), ("background", background)) if m.note]
    if not np.isfinite(ratio) and np.isfinite(background.sd):
        notes.append("CNR undefined: the background SD is 0")
    if not np.isfinite(cb) and background.mean == 0:
        notes.append("contrast-to-background undefined: the background mean is 0")
    return ContrastMeasurement(
        signal.mean,
        background.mean,
        background.sd,
        ratio,
        cb,
        signal.voxel_count,
        background.voxel_count,
        "; ".join(notes),
    )


def _json_float(value: float) -> float | None:
    """JSON has no NaN: an undefined figure is written as null."""
    return float(value) if np.isfinite(value) else None

"""Line profiles: the values along a ruler, sampled at the same world points on every volume.

A ruler is stored in world LPS millimetres, so its profile on the original, the synthesized
volume (same or another grid) and the difference map is read at the same anatomical points:
the curves share one distance axis and can be laid over each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.annotations.roi_stats import volume_units
from app.core.resample import sample_at_index
from app.core.volume import Volume

MAX_PROFILE_SAMPLES = 200_000  # a hostile file's 1e12 mm ruler is refused, not allocated


@dataclass(frozen=True)
class LineProfile:
    """Values along a line: ``values[n]`` at ``distance_mm[n]`` from the start (NaN outside)."""

    distance_mm: np.ndarray
    values: np.ndarray
    start_lps: np.ndarray
    end_lps: np.ndarray
    units: str = ""

    def to_dict(self) -> dict:
        return {
            "start_lps": [float(c) for c in self.start_lps],
            "end_lps": [float(c) for c in self.end_lps],
            "units": self.units,
            "distance_mm": [round(float(d), 6) for d in self.distance_mm],
            "values": [None if not np.isfinite(v) else float(v) for v in self.values],
        }


def default_step_mm(volumes) -> float:
    """Half the finest voxel spacing of the volumes: no volume is undersampled along the line."""
    spacings = [float(np.min(volume.geometry.spacing_mm)) for volume in volumes]
    return 0.5 * min(spacings) if spacings else 0.5


def profile_distances_mm(length_mm: float, step_mm: float) -> np.ndarray:
    """0, step, 2 step, ... and the end point itself (the last interval may be shorter)."""
    if not (step_mm > 0 and np.isfinite(step_mm)):
        raise ValueError(f"the profile step must be a positive number of mm, got {step_mm}")
    if length_mm <= 0:
        return np.zeros(1)
    if length_mm / step_mm > MAX_PROFILE_SAMPLES:
        raise ValueError(
            f"a {length_mm:.0f} mm line in {step_mm:g} mm steps needs more than {MAX_PROFILE_SAMPLES} samples"
        )
    count = int(np.floor(length_mm / step_mm + 1e-9))
    distances = np.arange(count + 1) * step_mm
    if length_mm - distances[-1] > 1e-9 * max(1.0, length_mm):
        distances = np.append(distances, length_mm)
    return distances


def line_profile(volume: Volume, start_lps, end_lps, step_mm: float | None = None) -> LineProfile:
    """Trilinearly interpolated values of ``volume`` from ``start_lps`` to ``end_lps``."""
    if volume.is_colour:
        raise ValueError(f"{volume.name or 'this volume'} is a colour image: it has no profile of values")
    start = np.asarray(start_lps, dtype=float).reshape(3)
    end = np.asarray(end_lps, dtype=float).reshape(3)
    length = float(np.linalg.norm(end - start))
    distances = profile_distances_mm(length, step_mm if step_mm is not None else default_step_mm([volume]))
    direction = (end - start) / length if length > 0 else np.zeros(3)
    points = start + distances[:, None] * direction
    values = sample_at_index(volume.voxels, volume.geometry.index_from_lps(points), linear=True)
    return LineProfile(distances, values.astype(np.float64), start, end, volume_units(volume))


def compare_line_profile(
    volumes: dict[str, Volume], start_lps, end_lps, step_mm: float | None = None
) -> dict[str, LineProfile]:
    """One profile per volume, all at the same world points (one shared distance axis)."""
    scalar = {name: volume for name, volume in volumes.items() if not volume.is_colour}
    step = step_mm if step_mm is not None else default_step_mm(scalar.values())
    return {name: line_profile(volume, start_lps, end_lps, step) for name, volume in scalar.items()}


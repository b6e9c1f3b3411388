"""How a volume is displayed: window/level, colormap, inversion. Kept apart from the data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowLevel:
    center: float
    width: float

    def __post_init__(self) -> None:
        if not self.width > 0:
            raise ValueError(f"window width must be positive, got {self.width}")

    @property
    def low(self) -> float:
        return self.center - self.width / 2.0

    @property
    def high(self) -> float:
        return self.center + self.width / 2.0

    @classmethod
    def from_range(cls, low: float, high: float) -> WindowLevel:
        width = max(float(high) - float(low), 1e-6)
        return cls(center=(float(high) + float(low)) / 2.0, width=width)


# CT presets in Hounsfield units (centre, width), the values most workstations ship.
CT_PRESETS_HU: dict[str, WindowLevel] = {
    "Brain": WindowLevel(40, 80),
    "Subdural": WindowLevel(75, 215),
    "Stroke": WindowLevel(32, 8),
    "Lung": WindowLevel(-600, 1500),
    "Mediastinum": WindowLevel(50, 350),
    "Abdomen": WindowLevel(40, 400),
    "Soft tissue": WindowLevel(50, 400),
    "Liver": WindowLevel(60, 160),
    "Bone": WindowLevel(400, 1800),
}


def _sample(voxels: np.ndarray, max_samples: int) -> np.ndarray:
    """At most about ``max_samples`` finite values, a regular stride through the voxels: a
    window's statistics, not a census (1M of the demo's 8.6M voxels). Integers keep their type
    (no float copy, nothing to filter)."""
    flat = voxels.reshape(-1)
    sample = flat[:: max(1, flat.size // max_samples)]
    if sample.dtype.kind in "biu":
        return np.ascontiguousarray(sample)
    sample = np.asarray(sample, dtype=np.float64)
    return sample[np.isfinite(sample)]


def _percentiles(sample: np.ndarray, percents: list[float]) -> list[float]:
    """np.percentile's default (linear between the two nearest ranks) through np.partition:
    np.percentile imports numpy.ma on its first call (17 ms, on the way to the first image)."""
    n = sample.size
    positions = [(n - 1) * min(max(float(q), 0.0), 100.0) / 100.0 for q in percents]
    ranks = sorted({int(np.floor(p)) for p in positions} | {min(int(np.floor(p)) + 1, n - 1) for p in positions})
    ordered = np.partition(sample, ranks)
    values = []
    for position in positions:
        lower = int(np.floor(position))
        upper = min(lower + 1, n - 1)
        a, b = float(ordered[lower]), float(ordered[upper])
        values.append(a + (b - a) * (position - lower))
    return values


def percentile_window(voxels: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0,
                      max_samples: int = 1_000_000) -> WindowLevel:
    """A window spanning the given percentiles (the MR default), from a strided sample."""
    sample = _sample(voxels, max_samples)
    if sample.size == 0:
        return WindowLevel(0.0, 1.0)
    low, high = _percentiles(sample, [low_pct, high_pct])
    return WindowLevel.from_range(low, high)


def _foreground(sample: np.ndarray) -> np.ndarray:
    """The values above the darkest (the anatomy, not the empty air around it)."""
    return sample[sample > sample.min()] if sample.size else sample


def robust_window(voxels: np.ndarray, high_pct: float = 99.5, max_samples: int = 1_000_000) -> WindowLevel:
    """From the darkest value (background black) to the ``high_pct`` percentile of the voxels
    above it (the anatomy, not the empty air around it): a few bright outliers go white, the
    tissue never does."""
    return _robust_window(_sample(voxels, max_samples), high_pct)


def _robust_window(sample: np.ndarray, high_pct: float = 99.5, foreground: np.ndarray | None = None) -> WindowLevel:
    if sample.size == 0:
        return WindowLevel(0.0, 1.0)
    low = float(sample.min())
    foreground = _foreground(sample) if foreground is None else foreground
    high = _percentiles(foreground, [high_pct])[0] if foreground.size else low + 1.0
    return WindowLevel.from_range(low, high)


def clipped_fraction(voxels: np.ndarray, window: WindowLevel, max_samples: int = 1_000_000) -> float:
    """The share of the non-background voxels a window draws pure white."""
    return _clipped_fraction(_foreground(_sample(voxels, max_samples)), window)


def _clipped_fraction(foreground: np.ndarray, window: WindowLevel) -> float:
    return float(np.count_nonzero(foreground > window.high)) / foreground.size if foreground.size else 0.0


def header_or_robust_window(voxels: np.ndarray, header: WindowLevel, max_clipped: float,
                            max_samples: int = 1_000_000) -> WindowLevel:
    """``header`` unless it draws more than ``max_clipped`` of the non-background voxels pure
    white, else ``robust_window``: both from one sample of the voxels."""
    sample = _sample(voxels, max_samples)
    foreground = _foreground(sample)
    if _clipped_fraction(foreground, header) <= max_clipped:
        return header
    return _robust_window(sample, foreground=foreground)


def default_window(voxels: np.ndarray, modality: str) -> WindowLevel:
    if modality.upper() == "CT":
        return CT_PRESETS_HU["Soft tissue"]
    return robust_window(voxels)


def apply_window(values: np.ndarray, window: WindowLevel, invert: bool = False) -> np.ndarray:
    """Map values to uint8 grey levels 0..255 through a linear window."""
    scale = 255.0 / window.width
    out = (np.asarray(values, dtype=np.float32) - np.float32(window.low)) * np.float32(scale)
    np.clip(out, 0, 255, out=out)
    grey = out.astype(np.uint8)
    if invert:
        np.subtract(255, grey, out=grey)
    return grey

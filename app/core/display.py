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


def percentile_window(voxels: np.ndarray, low_pct: float = 1.0, high_pct: float = 99.0,
                      max_samples: int = 1_000_000) -> WindowLevel:
    """A window spanning the given percentiles (the MR default), from a strided sample."""
    flat = voxels.reshape(-1)
    step = max(1, flat.size // max_samples)
    sample = np.asarray(flat[::step], dtype=np.float64)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return WindowLevel(0.0, 1.0)
    low, high = np.percentile(sample, [low_pct, high_pct])
    return WindowLevel.from_range(low, high)


def robust_window(voxels: np.ndarray, high_pct: float = 99.5, max_samples: int = 1_000_000) -> WindowLevel:
    """From the darkest value (background black) to the ``high_pct`` percentile of the voxels
    above it (the anatomy, not the empty air around it): a few bright outliers go white, the
    tissue never does."""
    flat = voxels.reshape(-1)
    sample = np.asarray(flat[:: max(1, flat.size // max_samples)], dtype=np.float64)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return WindowLevel(0.0, 1.0)
    low = float(sample.min())
    foreground = sample[sample > low]
    high = float(np.percentile(foreground, high_pct)) if foreground.size else low + 1.0
    return WindowLevel.from_range(low, high)


def clipped_fraction(voxels: np.ndarray, window: WindowLevel, max_samples: int = 1_000_000) -> float:
    """The share of the non-background voxels a window draws pure white."""
    flat = voxels.reshape(-1)
    sample = np.asarray(flat[:: max(1, flat.size // max_samples)], dtype=np.float64)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0
    foreground = sample[sample > sample.min()]
    return float(np.mean(foreground > window.high)) if foreground.size else 0.0


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

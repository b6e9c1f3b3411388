"""Intensity scaling into a generator's range and back, as a manifest declares it (numpy only).

Input methods: ``window`` (fixed bounds such as an HU window), ``percentile`` (bounds measured on
the input volume), ``none``. Output methods: ``window`` (network range -> fixed bounds, e.g. HU),
``same_as_input`` (undo the input scaling, for denoising-like tasks), ``none``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_NETWORK_RANGE = (-1.0, 1.0)


@dataclass(frozen=True)
class FittedScaling:
    """Input bounds measured for one volume, kept so the output can be scaled back."""

    method: str
    low: float
    high: float
    network_low: float
    network_high: float

    def as_dict(self) -> dict:
        return {"method": self.method, "low": self.low, "high": self.high}


def fit_input_scaling(voxels: np.ndarray, normalization: dict) -> FittedScaling:
    network_low, network_high = normalization.get("network_range", DEFAULT_NETWORK_RANGE)
    spec = normalization["input"]
    method = spec["method"]
    if method == "window":
        low, high = float(spec["low"]), float(spec["high"])
    elif method == "percentile":
        low, high = (
            float(v) for v in np.percentile(voxels, [spec["low_percentile"], spec["high_percentile"]])
        )
        if high <= low:  # a constant image: avoid dividing by zero
            high = low + 1.0
    else:
        low, high = float(network_low), float(network_high)
    return FittedScaling(method, low, high, float(network_low), float(network_high))


def to_network(voxels: np.ndarray, fitted: FittedScaling) -> np.ndarray:
    """Map [low, high] linearly to the network range, clipping outside (float32)."""
    voxels = np.asarray(voxels, dtype=np.float32)
    if fitted.method == "none":
        return voxels
    unit = (voxels - fitted.low) / (fitted.high - fitted.low)
    scaled = fitted.network_low + np.clip(unit, 0.0, 1.0) * (fitted.network_high - fitted.network_low)
    return scaled.astype(np.float32, copy=False)


def from_network(values: np.ndarray, normalization: dict, fitted: FittedScaling) -> np.ndarray:
    """Map the generator's output back to the output modality's units (float32)."""
    spec = normalization["output"]
    method = spec["method"]
    values = np.asarray(values, dtype=np.float32)
    if method == "none" or (method == "same_as_input" and fitted.method == "none"):
        return values
    if method == "window":
        low, high = float(spec["low"]), float(spec["high"])
    else:
        low, high = fitted.low, fitted.high
    unit = (values - fitted.network_low) / (fitted.network_high - fitted.network_low)
    return (low + unit * (high - low)).astype(np.float32, copy=False)

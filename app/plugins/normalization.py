"""Intensity scaling into a generator's range and back, as a manifest declares it (numpy only).

Input methods: ``window`` (fixed bounds such as an HU window), ``percentile`` (bounds measured on
the input volume; on a regular subsample of at most about a million voxels for large volumes,
deterministic and well within a grey level of the exact value), ``none``. Output methods: ``window`` (network range -> fixed bounds, e.g. HU),
``same_as_input`` (undo the input scaling, for denoising-like tasks), ``none``.

The mapping functions take numpy arrays or torch tensors (they use only arithmetic and
``clip``), so the runtime can scale a volume on the GPU without this module importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_NETWORK_RANGE = (-1.0, 1.0)
PERCENTILE_SAMPLE_VOXELS = 1_000_000


def _as_float(values):
    """float32 numpy array, or the tensor itself (already float on its device)."""
    if type(values).__module__.startswith("torch"):
        return values.float()
    return np.asarray(values, dtype=np.float32)


def _percentile_sample(voxels: np.ndarray) -> np.ndarray:
    step = int(np.ceil((voxels.size / PERCENTILE_SAMPLE_VOXELS) ** (1.0 / max(voxels.ndim, 1))))
    if step <= 1:
        return voxels
    return voxels[tuple(slice(None, None, step) for _ in range(voxels.ndim))]


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
        sample = np.ascontiguousarray(_percentile_sample(np.asarray(voxels)), dtype=np.float32)
        bounds = np.percentile(sample, [spec["low_percentile"], spec["high_percentile"]])
        low, high = float(bounds[0]), float(bounds[1])
        if high <= low:  # a constant image: avoid dividing by zero
            high = low + 1.0
    else:
        low, high = float(network_low), float(network_high)
    return FittedScaling(method, low, high, float(network_low), float(network_high))


def _clip_in_place(values, low: float, high: float):
    if type(values).__module__.startswith("torch"):
        return values.clamp_(low, high)
    return np.clip(values, low, high, out=values)


def to_network(voxels, fitted: FittedScaling):
    """Map [low, high] linearly to the network range, clipping outside (float32)."""
    voxels = _as_float(voxels)
    if fitted.method == "none":
        return voxels
    # One multiply into a new array, then in place: a large volume is swept three times.
    gain = (fitted.network_high - fitted.network_low) / (fitted.high - fitted.low)
    scaled = voxels * gain
    scaled += fitted.network_low - fitted.low * gain
    return _clip_in_place(scaled, fitted.network_low, fitted.network_high)


def from_network(values, normalization: dict, fitted: FittedScaling, in_place: bool = False):
    """Map the generator's output back to the output modality's units (float32).

    ``in_place`` scales a float32 array or tensor the caller owns without a new allocation.
    """
    spec = normalization["output"]
    method = spec["method"]
    values = _as_float(values)
    if method == "none" or (method == "same_as_input" and fitted.method == "none"):
        return values
    if method == "window":
        low, high = float(spec["low"]), float(spec["high"])
    else:
        low, high = fitted.low, fitted.high
    scale = (high - low) / (fitted.network_high - fitted.network_low)
    if in_place:
        values *= scale
        restored = values
    else:
        restored = values * scale
    restored += low - fitted.network_low * scale
    return restored

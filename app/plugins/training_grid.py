"""Present images to a generator at the voxel spacing it was trained at, and bring them back.

A generator learned anatomy at one scale: a 1 mm model shown a 0.45 mm CT sees every structure
twice as large. When the manifest declares ``spacing_mm`` and the input differs by more than
``SPACING_MATCH_TOLERANCE`` along an image axis, each batch is resampled (same field of view,
linear interpolation, antialiased when shrinking) to the training spacing before the network and
back to the input's grid after it, so the output keeps the input's geometry exactly.

Only the image axes the network sees are matched: rows and columns for 2D / 2.5D plugins (the
slice axis is left alone: slices are never invented), all three axes for 3D plugins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

SPACING_MATCH_TOLERANCE = 0.05  # relative; smaller differences are not worth an interpolation


def _resize(images: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """``images`` (batch, channels, *spatial) resampled to ``shape`` over the same field of view."""
    spatial = tuple(images.shape[2:])
    if spatial == tuple(shape):
        return images
    if len(shape) == 2:
        shrinking = any(new < old for new, old in zip(shape, spatial, strict=True))
        return F.interpolate(
            images.float(), size=tuple(shape), mode="bilinear", align_corners=False, antialias=shrinking
        )
    return F.interpolate(images.float(), size=tuple(shape), mode="trilinear", align_corners=False)


@dataclass(frozen=True)
class TrainingGrid:
    """The input's image grid and the same field of view at the generator's training spacing."""

    native_shape: tuple[int, ...]
    native_spacing_mm: tuple[float, ...]
    training_shape: tuple[int, ...]
    training_spacing_mm: tuple[float, ...]

    def to_training(self, images: torch.Tensor) -> torch.Tensor:
        return _resize(images, self.training_shape)

    def to_native(self, images: torch.Tensor) -> torch.Tensor:
        return _resize(images, self.native_shape)

    def describe(self) -> str:
        native = " x ".join(f"{s:.3g}" for s in self.native_spacing_mm)
        training = " x ".join(f"{s:.3g}" for s in self.training_spacing_mm)
        return (
            f"resampled from {native} mm to the training spacing {training} mm for the generator"
            f" ({'x'.join(map(str, self.native_shape))} -> {'x'.join(map(str, self.training_shape))}"
            " pixels) and back to the input grid"
        )

    def as_dict(self) -> dict:
        return {
            "native_spacing_mm": [round(s, 4) for s in self.native_spacing_mm],
            "training_spacing_mm": list(self.training_spacing_mm),
            "training_shape": list(self.training_shape),
        }


def match_training_grid(
    native_shape: Sequence[int],
    native_spacing_mm: Sequence[float],
    training_spacing_mm: Sequence[float] | None,
    tolerance: float = SPACING_MATCH_TOLERANCE,
) -> TrainingGrid | None:
    """The grid to resample to, or None when the spacings already agree within ``tolerance``."""
    if training_spacing_mm is None or len(training_spacing_mm) < len(native_shape):
        return None
    native = np.asarray(native_spacing_mm, dtype=float)
    training = np.asarray(training_spacing_mm[: len(native_shape)], dtype=float)
    if not np.any(np.abs(native / training - 1.0) > tolerance):
        return None
    # Same extent (size x spacing) on the training grid; never fewer than one pixel.
    training_shape = tuple(
        max(1, int(round(size * have / want)))
        for size, have, want in zip(native_shape, native, training, strict=True)
    )
    return TrainingGrid(
        tuple(int(s) for s in native_shape),
        tuple(float(s) for s in native),
        training_shape,
        tuple(float(s) for s in training),
    )

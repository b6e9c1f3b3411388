"""Present images to a generator at the voxel spacing it was trained at, and bring them back.

A generator learned anatomy at one scale: a 1 mm model shown a 0.45 mm CT sees every structure
twice as large. When the manifest declares ``spacing_mm`` and the input differs by more than
``SPACING_MATCH_TOLERANCE`` along an image axis, each batch is resampled (same field of view,
linear interpolation, antialiased when shrinking) to the training spacing before the network and
back to the input's grid after it, so the output keeps the input's geometry exactly.

Only the image axes the network sees are matched: rows and columns for 2D / 2.5D plugins (the
slice axis is left alone: slices are never invented), all three axes for 3D plugins.

A super-resolution generator's output is kept at the training spacing along every axis where that
is finer than the input's (``finer_shape``): bringing it back to a coarse input grid would throw
away what it was run for. ``grid_geometry`` gives the geometry of such a grid: same field of view
(voxel edges aligned, as the linear resampling assumes), same direction, smaller spacing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from app.core.volume import Geometry

SPACING_MATCH_TOLERANCE = 0.05  # relative; smaller differences are not worth an interpolation


def resize_images(images: torch.Tensor, shape: Sequence[int], nearest: bool = False) -> torch.Tensor:
    """``images`` (batch, channels, *spatial) resampled to ``shape`` over the same field of view;
    ``nearest`` for label maps (a label between two others is no label)."""
    spatial = tuple(images.shape[2:])
    if spatial == tuple(shape):
        return images
    if nearest:
        return F.interpolate(images.float(), size=tuple(shape), mode="nearest-exact")
    if len(shape) == 2:
        shrinking = any(new < old for new, old in zip(shape, spatial, strict=True))
        return F.interpolate(
            images.float(), size=tuple(shape), mode="bilinear", align_corners=False, antialias=shrinking
        )
    # 3D: torch has no antialiased trilinear, so the axes that shrink are box-averaged over each
    # new voxel's extent ("area"), then the axes that grow are interpolated linearly.
    images = images.float()
    shrunk = tuple(min(new, old) for new, old in zip(shape, spatial, strict=True))
    if shrunk != spatial:
        images = F.interpolate(images, size=shrunk, mode="area")
    if shrunk != tuple(shape):
        images = F.interpolate(images, size=tuple(shape), mode="trilinear", align_corners=False)
    return images


@dataclass(frozen=True)
class TrainingGrid:
    """The input's image grid and the same field of view at the generator's training spacing."""

    native_shape: tuple[int, ...]
    native_spacing_mm: tuple[float, ...]
    training_shape: tuple[int, ...]
    training_spacing_mm: tuple[float, ...]

    def to_training(self, images: torch.Tensor) -> torch.Tensor:
        return resize_images(images, self.training_shape)

    def to_native(self, images: torch.Tensor) -> torch.Tensor:
        return resize_images(images, self.native_shape)

    def finer_shape(self) -> tuple[int, ...]:
        """Per axis: the training grid's size where its spacing is finer, else the input's."""
        return tuple(
            trained if want < have * (1.0 - SPACING_MATCH_TOLERANCE) else native
            for native, trained, have, want in zip(
                self.native_shape,
                self.training_shape,
                self.native_spacing_mm,
                self.training_spacing_mm,
                strict=True,
            )
        )

    def describe(self, back_to_input: bool = True) -> str:
        native = " x ".join(f"{s:.3g}" for s in self.native_spacing_mm)
        training = " x ".join(f"{s:.3g}" for s in self.training_spacing_mm)
        return (
            f"resampled from {native} mm to the training spacing {training} mm for the generator"
            f" ({'x'.join(map(str, self.native_shape))} -> {'x'.join(map(str, self.training_shape))}"
            f" pixels){' and back to the input grid' if back_to_input else ''}"
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


def grid_geometry(geometry: Geometry, shape_kji: Sequence[int], new_shape_kji: Sequence[int]) -> Geometry:
    """``geometry`` re-gridded from ``shape_kji`` to ``new_shape_kji`` voxels over the same extent.

    Voxel edges stay where they were (the convention of ``align_corners=False`` resampling): the
    first centre moves by half the change in spacing along each axis whose size changed.
    """
    size_ijk = np.asarray(shape_kji, dtype=float)[::-1]
    new_size_ijk = np.asarray(new_shape_kji, dtype=float)[::-1]
    spacing = np.asarray(geometry.spacing_mm, dtype=float) * size_ijk / new_size_ijk
    shift = geometry.direction @ ((spacing - geometry.spacing_mm) / 2.0)
    return Geometry(geometry.origin_lps_mm + shift, spacing, geometry.direction)

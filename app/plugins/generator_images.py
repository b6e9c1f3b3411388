"""The images a 2D generator of head slices learns from, and the real images it is checked against.

One recipe, used by the training-data builder of the shipped generator
(``app.plugins.training.thumbnails``) and by the memorisation check (``plugins diversity``), so a
training image fed back to the check meets its own exact copy among the real slices:

1. intensities divided by the volume's 99.5th percentile and clipped to [0, 1] (float32);
2. slices in the generator's plane, laid out as the runtime shows them (``plane_stack``);
3. the head's bounding box (pixels above ``HEAD_LEVEL``) over the slices with head content
   (head area at least ``HEAD_SLICE_SHARE`` of the largest), centred on a square canvas of
   ``size x factor`` source pixels (cut centrally where the head is larger);
4. area-averaged by ``factor`` (a whole number of source pixels per output pixel).

The training builder chooses ``factor`` from the head's size (the smallest canvas holding the head
with a 4-pixel margin); the check takes the generator's declared pixel spacing. When that spacing
is not a whole number of the volume's pixels, the slices are first resampled (linear, upsampling
only) to the nearest finer grid that is; a 1 mm volume and 4 mm generator pixels need none.

The generator also saw its images flipped left-right and shifted by up to
``AUGMENTATION_SHIFT_PX`` pixels (training augmentation): a copy of any of those is a copy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from app.plugins.plane_stack import plane_layout

ROBUST_PERCENTILE = 99.5  # the intensity mapped to 1 (the manifests' percentile normalisation)
HEAD_LEVEL = 0.1  # a pixel is head when above this fraction of the 99.5th percentile
HEAD_SLICE_SHARE = 0.25  # a slice has head content when its head area reaches this share of the largest
CANVAS_MARGIN_PX = 4  # source pixels added to the head's extent when the training builder sizes the canvas
AUGMENTATION_SHIFT_PX = 2  # training shifted images by up to this many output pixels (and flipped left-right)


@dataclass(frozen=True)
class GeneratorImages:
    """Slices prepared as the generator's images, and where each lies in the volume."""

    images: np.ndarray  # (n, rows, cols) float32 in [0, 1]
    stack_positions: np.ndarray  # (n,) index of each image in the plane stack
    slice_numbers: tuple[int, ...]  # per image: 1-based slice number along the volume's own array axis
    pixel_spacing_mm: tuple[float, float]


def unit_intensities(voxels: np.ndarray) -> np.ndarray:
    """Voxels divided by their 99.5th percentile, clipped to [0, 1] (NaN -> 0)."""
    voxels = np.asarray(voxels, dtype=np.float32)
    finite = voxels[np.isfinite(voxels)]
    top = float(np.percentile(finite, ROBUST_PERCENTILE)) if finite.size else 0.0
    if not top > 0:
        raise ValueError("the volume has no positive intensities")
    return np.nan_to_num(np.clip(voxels / top, 0.0, 1.0))


def head_slices(stack: np.ndarray) -> np.ndarray:
    """Boolean per slice of a unit-scaled stack: has head content (``HEAD_SLICE_SHARE``)."""
    area = (stack > HEAD_LEVEL).sum(axis=(1, 2))
    return area >= HEAD_SLICE_SHARE * area.max() if area.max() > 0 else np.zeros(len(stack), bool)


def training_factor(stack: np.ndarray, size: int) -> int:
    """Source pixels per output pixel for the training builder: the smallest whole number whose
    ``size x factor`` canvas holds the head's bounding box plus ``CANVAS_MARGIN_PX``."""
    (r0, c0), (r1, c1) = _head_box(stack)
    return math.ceil((max(r1 - r0, c1 - c0) + CANVAS_MARGIN_PX) / size)


def prepare(
    voxels: np.ndarray,
    direction: np.ndarray,
    spacing_mm: Sequence[float],
    plane: str,
    shape: tuple[int, int],
    pixel_spacing_mm: tuple[float, float] | None = None,
    keep: np.ndarray | None = None,
) -> GeneratorImages:
    """The volume's slices in ``plane`` as a generator's ``shape`` images (see the module doc).

    ``pixel_spacing_mm`` None: the training builder's choice (from the head's size, square
    pixels of an in-plane isotropic volume). ``keep`` (per slice of the plane stack, optional):
    which slices to return; default: those with head content. The crop box always comes from
    the slices with head content, so it does not depend on ``keep``.
    """
    layout = plane_layout(direction, plane)
    stack = layout.to_stack(unit_intensities(voxels))
    spacing_kji = np.asarray(spacing_mm, dtype=float)[::-1]
    source_mm = (float(spacing_kji[layout.axes[1]]), float(spacing_kji[layout.axes[2]]))
    content = head_slices(stack)
    if not content.any():
        raise ValueError(f"no {plane} slice of the volume has head content")
    if pixel_spacing_mm is None:
        if not math.isclose(*source_mm, rel_tol=1e-3):
            raise ValueError(f"the training recipe needs square pixels, got {source_mm} mm")
        factors = (training_factor(stack[content], max(shape)),) * 2
        pixel_spacing_mm = (source_mm[0] * factors[0], source_mm[1] * factors[1])
    else:
        stack, factors = _on_whole_pixel_grid(stack, source_mm, pixel_spacing_mm)
    (r0, c0), (r1, c1) = _head_box(stack[content])
    chosen = np.flatnonzero(content if keep is None else np.asarray(keep, bool))
    canvas = np.zeros((len(chosen), shape[0] * factors[0], shape[1] * factors[1]), np.float32)
    target, source = [], []
    for start, end, side in ((r0, r1, canvas.shape[1]), (c0, c1, canvas.shape[2])):
        extent = end - start
        if extent <= side:
            offset = (side - extent) // 2
            target.append(slice(offset, offset + extent))
            source.append(slice(start, end))
        else:
            cut = start + (extent - side) // 2
            target.append(slice(0, side))
            source.append(slice(cut, cut + side))
    canvas[:, target[0], target[1]] = stack[chosen][:, source[0], source[1]]
    pooled = canvas.reshape(len(chosen), shape[0], factors[0], shape[1], factors[1]).mean(axis=(2, 4))
    count = len(stack)
    numbers = tuple(int(count - p if layout.flips[0] else p + 1) for p in chosen)
    return GeneratorImages(pooled.astype(np.float32), chosen, numbers, tuple(map(float, pixel_spacing_mm)))


def _head_box(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    head = np.argwhere((stack > HEAD_LEVEL).any(axis=0))
    return head.min(axis=0), head.max(axis=0) + 1


def _on_whole_pixel_grid(
    stack: np.ndarray, source_mm: tuple[float, float], target_mm: tuple[float, float]
) -> tuple[np.ndarray, tuple[int, int]]:
    """The stack on a grid with a whole number of pixels per target pixel (per axis), and those
    numbers. Unchanged when the volume's pixels already divide the target's."""
    factors = tuple(max(1, round(t / s)) for s, t in zip(source_mm, target_mm, strict=True))
    if all(
        math.isclose(s * f, t, rel_tol=1e-3) for s, t, f in zip(source_mm, target_mm, factors, strict=True)
    ):
        return stack, factors  # type: ignore[return-value]
    factors = tuple(math.ceil(t / s - 1e-6) for s, t in zip(source_mm, target_mm, strict=True))
    zoom = (1.0, *(s * f / t for s, t, f in zip(source_mm, target_mm, factors, strict=True)))
    return ndimage.zoom(stack, zoom, order=1).clip(0.0, 1.0).astype(np.float32), factors  # type: ignore[return-value]

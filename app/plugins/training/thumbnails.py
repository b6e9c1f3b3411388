"""64-pixel axial T1 slices of a head, the training images of the shipped generator.

Axial slices through the brain (brain area above 10 % of its largest), in the runtime's axial
layout (rows anterior->posterior, columns right->left), cropped to the head's bounding box
over all those slices, padded square and area-averaged to ``size`` pixels, scaled by the head's
99.5th percentile to [0, 1].
"""

from __future__ import annotations

import numpy as np

from app.plugins.training.data import Head, robust_max
from app.plugins.training.tasks import to_plane_stack


def axial_thumbnails(head: Head, size: int = 64) -> tuple[np.ndarray, float]:
    """(N, size, size) float32 in [0, 1], and the pixel spacing in mm of the result."""
    unit = np.clip(head.t1 / robust_max(head.t1), 0.0, 1.0)
    stack = to_plane_stack(unit, head, "axial")
    brain = to_plane_stack(head.brain_mask, head, "axial").sum(axis=(1, 2))
    chosen = stack[brain > 0.1 * brain.max()]
    head_pixels = np.argwhere((chosen > 0.1).any(axis=0))
    (r0, c0), (r1, c1) = head_pixels.min(axis=0), head_pixels.max(axis=0) + 1
    side = int(max(r1 - r0, c1 - c0) + 4)
    side += (-side) % size  # a whole number of source pixels per output pixel
    canvas = np.zeros((len(chosen), side, side), np.float32)
    top, left = (side - (r1 - r0)) // 2, (side - (c1 - c0)) // 2
    canvas[:, top : top + r1 - r0, left : left + c1 - c0] = chosen[:, r0:r1, c0:c1]
    factor = side // size
    pooled = canvas.reshape(len(chosen), size, factor, size, factor).mean(axis=(2, 4))
    spacing_mm = float(head.spacing_mm[0]) * factor
    return pooled.astype(np.float32), spacing_mm

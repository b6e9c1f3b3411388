"""64-pixel axial T1 slices of a head, the training images of the shipped generator.

Axial slices through the brain (brain area above 10 % of its largest), prepared by the recipe
the memorisation check also uses (``app.plugins.generator_images``): runtime's axial layout,
cropped to the head, padded square and area-averaged to ``size`` pixels, scaled by the head's
99.5th percentile to [0, 1].
"""

from __future__ import annotations

import numpy as np

from app.plugins.generator_images import prepare
from app.plugins.training.data import Head
from app.plugins.training.tasks import to_plane_stack

BRAIN_SLICE_SHARE = 0.1  # a slice is trained on when its brain area exceeds this share of the largest


def axial_thumbnails(head: Head, size: int = 64) -> tuple[np.ndarray, float]:
    """(N, size, size) float32 in [0, 1], and the pixel spacing in mm of the result."""
    brain = to_plane_stack(head.brain_mask, head, "axial").sum(axis=(1, 2))
    prepared = prepare(
        head.t1,
        head.direction,
        head.spacing_mm,
        "axial",
        (size, size),
        keep=brain > BRAIN_SLICE_SHARE * brain.max(),
    )
    return prepared.images, prepared.pixel_spacing_mm[0]

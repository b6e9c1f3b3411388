"""The small original/synthesized pair the hostile-input compare tests share: a noisy uniform
block (oblique-free, anisotropic 1 x 1 x 1.5 mm, LPS-flipped axes) with one 4 mm lesion."""

from __future__ import annotations

import numpy as np

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume

LESION_IJK = (10, 20, 7)
GEOMETRY = Geometry(np.array([20.0, 30.0, -5.0]), np.array([1.0, 1.0, 1.5]), np.diag([-1.0, -1.0, 1.0]))


def noisy_block(shape=(14, 36, 36), seed: int = 0) -> np.ndarray:
    """200 everywhere plus Gaussian noise of SD 2."""
    rng = np.random.default_rng(seed)
    return np.full(shape, 200.0, np.float32) + rng.normal(0, 2, shape).astype(np.float32)


def lesion_pair(lesion_value: float = 320.0, provenance: Provenance | None = None) -> tuple[Volume, Volume]:
    """(original with the lesion at ``LESION_IJK``, the synthesized volume without it)."""
    healthy = noisy_block()
    original = healthy.copy()
    k, j, i = np.indices(healthy.shape)
    ci, cj, ck = LESION_IJK
    original[(i - ci) ** 2 + (j - cj) ** 2 + ((k - ck) * 1.5) ** 2 <= 4**2] = lesion_value
    output = Volume(
        healthy, GEOMETRY, "MR", name="healthy", provenance=provenance or Provenance("eraser", "1.0")
    )
    return Volume(original, GEOMETRY, "MR", name="t1"), output

"""A small orientation phantom: distinct markers at known patient Left, Posterior and Superior.

Used by rendering tests and golden images so that a flipped or swapped axis fails loudly: the
marker values differ, so each one identifies a direction on screen.
"""

from __future__ import annotations

import numpy as np

from app.core.volume import Geometry, Volume

BODY_VALUE = 100.0
LEFT_MARKER = 1000.0
POSTERIOR_MARKER = 2000.0
SUPERIOR_MARKER = 3000.0


def orientation_phantom(
    size_ijk=(32, 40, 24), spacing_mm=(1.0, 1.5, 2.0), direction=None, origin_lps_mm=(-10.0, 20.0, -5.0)
) -> Volume:
    """A box of body value with markers in the patient's left, posterior and superior parts.

    ``direction`` (3x3, columns = LPS of i, j, k) defaults to LPS identity; pass e.g.
    ``diag(-1, -1, 1)`` for an RAS-ordered array: the markers stay at the same *patient*
    positions whatever the array order, which is what a viewer must show.
    """
    direction = np.eye(3) if direction is None else np.asarray(direction, float)
    geometry = Geometry(np.asarray(origin_lps_mm, float), np.asarray(spacing_mm, float), direction)
    ni, nj, nk = size_ijk
    k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    lps = geometry.lps_from_index(np.stack([i, j, k], axis=-1).reshape(-1, 3)).reshape(nk, nj, ni, 3)
    low, high = lps.reshape(-1, 3).min(axis=0), lps.reshape(-1, 3).max(axis=0)
    relative = (lps - low) / np.maximum(high - low, 1e-9)  # 0 at R/A/I, 1 at L/P/S
    voxels = np.full((nk, nj, ni), BODY_VALUE, dtype=np.float32)
    middle = np.abs(relative - 0.5) < 0.2
    # Left marker: far left, centred in y and z; posterior: far back; superior: top slab.
    voxels[(relative[..., 0] > 0.8) & middle[..., 1] & middle[..., 2]] = LEFT_MARKER
    voxels[(relative[..., 1] > 0.8) & middle[..., 0] & middle[..., 2]] = POSTERIOR_MARKER
    voxels[(relative[..., 2] > 0.8) & middle[..., 0] & middle[..., 1]] = SUPERIOR_MARKER
    return Volume(voxels, geometry, modality="MR", units="", name="orientation phantom")

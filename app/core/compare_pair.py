"""The difference between a synthesized (or second) volume and the original, on the original grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.lazy_voxels import DifferenceVoxels
from app.core.resample import lazy_resample_like
from app.core.volume import Volume


@dataclass(frozen=True)
class Difference:
    """``volume`` = original - other on the original's grid (the residual's sign convention:
    + where the other, synthesized image is darker); ``symmetric_range`` for display."""

    volume: Volume
    symmetric_range: float


SIGN_CONVENTION = "original - synthesized"


def difference(original: Volume, other: Volume, percentile: float = 99.5) -> Difference:
    """original - other (one sign convention with ``compare``'s residual and regions: + where the
    synthesized image is darker, signal removed; - where brighter, signal added), with
    ``other`` resampled through world coordinates when grids differ.

    On one grid the difference is computed at once (a subtraction); on different grids it is
    lazy (``DifferenceVoxels``): each slice is resampled when it is drawn, so opening a
    comparison never stalls on resampling a whole series. The display range is symmetric
    (+-r) with r the ``percentile`` of |difference| over a sample, so zero is always the
    neutral colour of a diverging map.
    """
    on_grid = lazy_resample_like(other, original)
    if on_grid is other:
        values = np.asarray(original.voxels, dtype=np.float32) - np.asarray(other.voxels, dtype=np.float32)
        sample = values.reshape(-1)[:: max(1, values.size // 1_000_000)]
    else:
        values = DifferenceVoxels(original.voxels, on_grid.voxels)
        slices = np.unique(np.linspace(0, values.shape[0] - 1, min(values.shape[0], 12)).astype(int))
        sample = np.concatenate([values[int(k)].reshape(-1) for k in slices])
    finite = np.abs(sample[np.isfinite(sample)])
    magnitude = float(np.percentile(finite, percentile)) if finite.size else 0.0
    name = f"{original.name or 'original'} - {other.name or 'other'}"
    result = Volume(
        values,
        original.geometry,
        original.modality,
        original.units,
        name,
        other.provenance,
    )
    return Difference(result, magnitude if magnitude > 0 else 1.0)

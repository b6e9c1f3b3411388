"""Difference maps between an original, its synthesized output and an optional reference.

All maps live on one grid: the original's for input-vs-output, the reference's when a reference
acquisition is given (the output is resampled onto it through world LPS coordinates, never by
voxel index). For a cross-modality generator (MR -> CT) the input-vs-output difference compares
different physical quantities and is flagged as meaningless.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.quantity_map import MapKind, QuantityMap
from app.core.resample import resample_like
from app.core.study import source_study
from app.core.volume import Volume


@dataclass(frozen=True)
class DifferenceMaps:
    """Signed (b - a) and absolute difference on ``grid``; ``meaningful`` False with a reason when not."""

    signed: Volume
    absolute: Volume
    meaningful: bool
    reason: str = ""


def same_kind(a: Volume, b: Volume) -> tuple[bool, str]:
    """Whether voxel values of ``a`` and ``b`` measure the same thing (modality and units).

    Unknown modality ("") on either side is given the benefit of the doubt.
    """
    if a.modality and b.modality and a.modality.upper() != b.modality.upper():
        return False, (
            f"{a.modality} input vs {b.modality} output: a cross-modality difference is meaningless; "
            "use the reference, cycle-consistency or ensemble maps instead"
        )
    if a.units and b.units and a.units != b.units:
        return False, f"units differ ({a.units} vs {b.units}): the raw difference is meaningless"
    return True, ""


def difference_maps(base: Volume, other: Volume) -> DifferenceMaps:
    """``other - base`` and its absolute value on ``base``'s grid (NaN where ``other`` has no data)."""
    on_grid = resample_like(other, base)
    signed = np.asarray(on_grid.voxels, dtype=np.float32) - np.asarray(base.voxels, dtype=np.float32)
    meaningful, reason = same_kind(base, other)
    description = f"{other.name or 'output'} - {base.name or 'original'}"

    def as_volume(values: np.ndarray, kind: MapKind) -> Volume:
        return Volume(
            values,
            base.geometry,
            base.modality,
            base.units,
            f"{kind} {description}",
            other.provenance,
            quantity_map=QuantityMap(kind),
            metadata=source_study(base.metadata),
        )

    return DifferenceMaps(
        as_volume(signed, MapKind.SIGNED_DIFFERENCE),
        as_volume(np.abs(signed), MapKind.ABSOLUTE_DIFFERENCE),
        meaningful,
        reason,
    )


def reference_difference_maps(reference: Volume, output: Volume) -> DifferenceMaps:
    """Output vs a reference acquisition (e.g. the real CT beside an MR-to-CT synthesis), on the reference grid."""
    return difference_maps(reference, output)

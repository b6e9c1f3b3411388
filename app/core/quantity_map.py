"""What a map volume measures: the typed mark of a difference, residual or uncertainty map.

A Volume carrying a ``QuantityMap`` (``Volume.quantity_map``) holds a derived quantity, not an
image: the compare layout draws it with its own window and a heat (or, signed, a diverging)
colormap instead of the original's window, and the annotation dock lists it as a map. The kind
says which quantity; ``settings`` records how it was computed (runs, samples, noise level).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class MapKind(StrEnum):
    SIGNED_DIFFERENCE = "signed"  # output - original, both signs
    ABSOLUTE_DIFFERENCE = "absolute"
    RESIDUAL = "residual"  # the hallucination check's residual (reference, cycle or ensemble)
    CYCLE_RESIDUAL = "cycle residual"
    ENSEMBLE_SD = "ensemble SD"
    TTA_SD = "TTA SD"
    MC_DROPOUT_SD = "MC-dropout SD"
    PERTURBATION_CHANGE = "perturbation change"


@dataclass(frozen=True)
class QuantityMap:
    kind: MapKind
    settings: dict = field(default_factory=dict)

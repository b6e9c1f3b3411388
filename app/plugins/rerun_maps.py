"""Which hallucination maps need the generator run again, and whether a plugin offers them.

Torch-free (manifest data only), so the viewer can enable its buttons without importing torch;
the runs themselves are in ``app.plugins.uncertainty_runs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.plugins.manifest import PluginManifest


class RerunKind(StrEnum):
    """A map that needs the generator run again (the value is the name scripts use)."""

    TTA = "tta"
    MC_DROPOUT = "mc_dropout"
    PERTURBATION = "perturbation"
    CYCLE = "cycle"


MAP_KINDS = tuple(RerunKind)
MAP_TITLES = {
    RerunKind.TTA: "TTA SD",
    RerunKind.MC_DROPOUT: "MC-dropout SD",
    RerunKind.PERTURBATION: "Perturbation change",
    RerunKind.CYCLE: "Cycle residual",
}


@dataclass(frozen=True)
class MapRequest:
    """Which map to compute and its settings (recorded in the map's ``QuantityMap.settings``)."""

    kind: RerunKind  # or its name ("tta", ...)
    mc_samples: int = 8
    noise_fraction: float = 0.01
    shift_voxels: int = 1
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.kind not in MAP_KINDS:
            names = tuple(kind.value for kind in RerunKind)
            raise ValueError(f"map kind must be one of {names}, not {self.kind!r}")
        object.__setattr__(self, "kind", RerunKind(self.kind))
        if self.kind is RerunKind.MC_DROPOUT and self.mc_samples < 2:
            raise ValueError("Monte-Carlo dropout needs at least 2 samples")
        if self.kind is RerunKind.PERTURBATION and not self.noise_fraction > 0:
            raise ValueError("the perturbation noise fraction must be positive")


def may_have_dropout(manifest: PluginManifest) -> bool:
    """From the manifest alone (no weights loaded): built-ins declare it, TorchScript may have it."""
    spec = manifest.architecture
    return spec.use_dropout if spec.is_builtin else spec.type == "torchscript"


def map_availability(manifest: PluginManifest) -> dict[RerunKind, str]:
    """For every map kind, why it is not possible with this plugin ("" when it is)."""
    if manifest.task == "generation":
        reason = "a generation plugin has no input to rerun"
        return dict.fromkeys(MAP_KINDS, reason)
    return {
        RerunKind.TTA: "",
        RerunKind.PERTURBATION: "",
        RerunKind.MC_DROPOUT: "" if may_have_dropout(manifest) else f"{manifest.name} has no dropout layers",
        RerunKind.CYCLE: ""
        if manifest.reverse_architecture is not None
        else f"{manifest.name} ships no reverse generator",
    }

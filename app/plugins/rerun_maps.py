"""Which hallucination maps need the generator run again, and whether a plugin offers them.

Torch-free (manifest data only), so the viewer can enable its buttons without importing torch;
the runs themselves are in ``app.plugins.uncertainty_runs``.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.plugins.manifest import PluginManifest

MAP_KINDS = ("tta", "mc_dropout", "perturbation", "cycle")
MAP_TITLES = {
    "tta": "TTA SD",
    "mc_dropout": "MC-dropout SD",
    "perturbation": "Perturbation change",
    "cycle": "Cycle residual",
}


@dataclass(frozen=True)
class MapRequest:
    """Which map to compute and its settings (recorded in the map's ``QuantityMap.settings``)."""

    kind: str  # one of MAP_KINDS
    mc_samples: int = 8
    noise_fraction: float = 0.01
    shift_voxels: int = 1
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.kind not in MAP_KINDS:
            raise ValueError(f"map kind must be one of {MAP_KINDS}, not {self.kind!r}")
        if self.kind == "mc_dropout" and self.mc_samples < 2:
            raise ValueError("Monte-Carlo dropout needs at least 2 samples")
        if self.kind == "perturbation" and not self.noise_fraction > 0:
            raise ValueError("the perturbation noise fraction must be positive")


def may_have_dropout(manifest: PluginManifest) -> bool:
    """From the manifest alone (no weights loaded): built-ins declare it, TorchScript may have it."""
    spec = manifest.architecture
    return spec.use_dropout if spec.is_builtin else spec.type == "torchscript"


def map_availability(manifest: PluginManifest) -> dict[str, str]:
    """For every map kind, why it is not possible with this plugin ("" when it is)."""
    if manifest.task == "generation":
        reason = "a generation plugin has no input to rerun"
        return dict.fromkeys(MAP_KINDS, reason)
    return {
        "tta": "",
        "perturbation": "",
        "mc_dropout": "" if may_have_dropout(manifest) else f"{manifest.name} has no dropout layers",
        "cycle": ""
        if manifest.reverse_architecture is not None
        else f"{manifest.name} ships no reverse generator",
    }

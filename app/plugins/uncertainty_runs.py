"""Run a plugin again for the hallucination checks: TTA, Monte-Carlo dropout, perturbation, cycle.

The statistics (per-voxel SD, change, cycle residual) are ``app.analysis``'s numpy functions;
this module only supplies the generator runs, so torch stays in ``app.plugins``. Every map it
returns is a Volume on the synthesized volume's grid with a ``quantity_map`` (the compare
layout draws it as a heat map) and the synthesized volume's provenance, because a map derived
from a synthetic image must stay marked synthetic. ``progress(fraction, message)`` and
``cancel() -> bool`` are the runtime's callbacks, so a Qt worker and a script wrap the same code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch

from app.analysis.compare_run import map_volume
from app.analysis.consistency import PerturbationSettings, cycle_residual, perturbation_change
from app.analysis.uncertainty import Augmentation, default_augmentations, voxel_sd
from app.core.provenance import Provenance
from app.core.quantity_map import MapKind, QuantityMap
from app.core.volume import Volume
from app.plugins.cycle import reconstruct_with_reverse
from app.plugins.errors import PluginError
from app.plugins.loading import LoadedPlugin, load_plugin
from app.plugins.manifest import PluginManifest
from app.plugins.rerun_maps import MapRequest, RerunKind
from app.plugins.runtime import CancelCallback, ProgressCallback, RunOptions, synthesize

_DROPOUT_SCRIPT_NAMES = {"Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout"}


def _no_progress(fraction: float, message: str) -> None:
    pass


def _never() -> bool:
    return False


# ----- Monte-Carlo dropout ------------------------------------------------------------------
def dropout_modules(plugin: LoadedPlugin) -> list[torch.nn.Module]:
    """The generator's dropout layers (PyTorch or TorchScript); none for ONNX models."""
    module = getattr(plugin.generator, "module", None)
    if plugin.generator.kind != "torch" or module is None:
        return []
    return [
        m
        for m in module.modules()
        if isinstance(m, torch.nn.modules.dropout._DropoutNd)
        or getattr(m, "original_name", "") in _DROPOUT_SCRIPT_NAMES
    ]


def has_dropout(plugin: LoadedPlugin) -> bool:
    return bool(dropout_modules(plugin))


@contextmanager
def dropout_enabled(plugin: LoadedPlugin) -> Iterator[int]:
    """Only the dropout layers in train mode (norm layers keep their eval behaviour); restored after."""
    layers = dropout_modules(plugin)
    if not layers:
        raise PluginError(
            f"{plugin.manifest.name} has no dropout layers: Monte-Carlo dropout is not possible"
        )
    for layer in layers:
        layer.train(True)
    try:
        yield len(layers)
    finally:
        for layer in layers:
            layer.train(False)


# ----- runs ---------------------------------------------------------------------------------
def _run_many(
    plugin: LoadedPlugin,
    volume: Volume,
    inputs: Sequence[np.ndarray | None],
    label: str,
    options: RunOptions,
    progress: ProgressCallback,
    cancel: CancelCallback,
    vary_seed: bool = False,
) -> list[np.ndarray]:
    """The generator's output voxels for each input array (None: the volume's own voxels)."""
    outputs = []
    count = len(inputs)
    for number, voxels in enumerate(inputs):
        source = volume if voxels is None else volume.with_voxels(np.ascontiguousarray(voxels, np.float32))
        run_options = replace(options, seed=options.seed + number) if vary_seed else options

        def step(fraction: float, message: str, number: int = number) -> None:
            progress((number + fraction) / count, f"{label} {number + 1}/{count}: {message}")

        outputs.append(synthesize(plugin, source, run_options, progress=step, cancel=cancel).volume.voxels)
    return outputs


def tta_runs(
    plugin: LoadedPlugin,
    volume: Volume,
    augmentations: Sequence[Augmentation] | None = None,
    options: RunOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> list[np.ndarray]:
    """One de-augmented output per augmentation (default: ``default_augmentations``)."""
    voxels = np.asarray(volume.voxels, dtype=np.float32)
    if augmentations is None:
        low, high = np.percentile(voxels, [0.5, 99.5])
        augmentations = default_augmentations(scale=float(high - low))
    inputs = [np.asarray(a.forward(voxels), dtype=np.float32) for a in augmentations]
    outputs = _run_many(
        plugin, volume, inputs, "TTA", options or RunOptions(), progress or _no_progress, cancel or _never
    )
    return [np.asarray(a.inverse(o), dtype=np.float32) for a, o in zip(augmentations, outputs, strict=True)]


def mc_dropout_runs(
    plugin: LoadedPlugin,
    volume: Volume,
    samples: int = 8,
    options: RunOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> list[np.ndarray]:
    """``samples`` outputs with only the dropout layers active, seeds seed, seed+1, ..."""
    options = options or RunOptions()
    with dropout_enabled(plugin):
        return _run_many(
            plugin,
            volume,
            [None] * samples,
            "MC dropout",
            options,
            progress or _no_progress,
            cancel or _never,
            vary_seed=True,
        )


# ----- maps ---------------------------------------------------------------------------------
def resolve_plugin(synthesized: Volume, manifests: Sequence[PluginManifest] = ()) -> LoadedPlugin:
    """The plugin that made ``synthesized`` (by its provenance), loaded; refuses other weights."""
    provenance = synthesized.provenance
    if provenance is None:
        raise PluginError("this volume carries no synthesis provenance: no plugin to run again")
    manifest = next((m for m in manifests if m.name == provenance.plugin_name), None)
    if manifest is None:
        from app.plugins.discovery import find_plugin

        manifest = find_plugin(provenance.plugin_name)
    plugin = load_plugin(manifest)
    if provenance.weights_sha256 and plugin.weights_sha256 != provenance.weights_sha256:
        raise PluginError(
            f"the weights of {manifest.name} available now are not the ones that made this volume"
            " (SHA-256 differs); the map would describe another model"
        )
    return plugin


def compute_map(
    request: MapRequest,
    plugin: LoadedPlugin,
    original: Volume,
    synthesized: Volume | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> Volume:
    """The requested map for plugin(``original``), on ``original``'s grid (the runtime keeps it).

    ``synthesized`` (the run being checked) lends its provenance to the map and is what the
    cycle check sends back through the reverse generator; without it the map gets a provenance
    naming the plugin, so it is still marked as derived from synthetic images.
    """
    progress = progress or _no_progress
    cancel = cancel or _never
    manifest = plugin.manifest
    options = RunOptions(device=request.device, seed=request.seed)
    provenance = synthesized.provenance if synthesized is not None else None
    if provenance is None:
        provenance = Provenance(
            manifest.name, manifest.version, manifest.task, plugin.weights_sha256, seed=request.seed
        )
    output_kind = {"modality": manifest.output_modality, "units": manifest.output_units}
    if request.kind is RerunKind.TTA:
        outputs = tta_runs(plugin, original, None, options, progress, cancel)
        settings = {"runs": len(outputs), "shift_voxels": request.shift_voxels, "jitter": "+-2 %"}
        name = f"TTA SD ({len(outputs)} runs)"
        return map_volume(
            original, voxel_sd(outputs), name, provenance, QuantityMap(MapKind.TTA_SD, settings), **output_kind
        )
    if request.kind is RerunKind.MC_DROPOUT:
        outputs = mc_dropout_runs(plugin, original, request.mc_samples, options, progress, cancel)
        settings = {"samples": request.mc_samples, "seed": request.seed}
        name = f"MC-dropout SD ({request.mc_samples} samples)"
        return map_volume(
            original, voxel_sd(outputs), name, provenance, QuantityMap(MapKind.MC_DROPOUT_SD, settings), **output_kind
        )
    if request.kind is RerunKind.PERTURBATION:
        done: list[str] = []

        def generate(voxels: np.ndarray) -> np.ndarray:
            part = len(done)  # perturbation_change runs the baseline first, then the noisy input
            label = ("baseline", "noisy input")[part]

            def step(fraction: float, message: str) -> None:
                progress((part + fraction) / 2, f"perturbation, {label}: {message}")

            done.append(label)
            return synthesize(
                plugin, original.with_voxels(voxels), options, progress=step, cancel=cancel
            ).volume.voxels

        change, noise_sd = perturbation_change(
            generate, original.voxels, PerturbationSettings(request.noise_fraction, request.seed)
        )
        name = f"perturbation change (noise {request.noise_fraction:g} of range, SD {noise_sd:.3g})"
        settings = {"noise_fraction": request.noise_fraction, "noise_sd": noise_sd}
        return map_volume(
            original, change, name, provenance, QuantityMap(MapKind.PERTURBATION_CHANGE, settings), **output_kind
        )
    if synthesized is None:
        raise PluginError("the cycle check needs the synthesized volume to send back")
    reconstruction = reconstruct_with_reverse(
        plugin,
        synthesized,
        options,
        progress=lambda f, m: progress(f, f"cycle: {m}"),
        cancel=cancel,
    ).volume
    residual = cycle_residual(original.voxels, reconstruction.voxels)
    return map_volume(
        original, residual, "cycle residual |G_BA(G_AB(x)) - x|", provenance, QuantityMap(MapKind.CYCLE_RESIDUAL)
    )

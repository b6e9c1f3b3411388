"""Apply a plugin to a Volume: normalise, slice (2D / 2.5D) or patch (3D), batch, infer, undo.

Qt-free and thread-friendly: ``progress(fraction, message)`` and ``cancel() -> bool`` callbacks
are the only link to a caller, so the Qt panel and the CLI wrap the same function. The output
keeps the input's geometry object exactly and carries a Provenance that marks it synthetic.

On the GPU, an out-of-memory error halves the batch and retries; at batch size 1 the run moves
to the CPU and says so in ``SynthesisResult.messages``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch

from app.core.provenance import Provenance
from app.core.volume import Volume
from app.plugins.device import choose_device, is_out_of_memory, release_cached_memory
from app.plugins.errors import InputMismatchError, PluginError, SynthesisCancelled
from app.plugins.loading import LoadedPlugin, load_plugin
from app.plugins.manifest import PluginManifest
from app.plugins.normalization import fit_input_scaling, from_network, to_network
from app.plugins.plane_stack import plane_layout
from app.plugins.sliding_window import run_tiled

ProgressCallback = Callable[[float, str], None]
CancelCallback = Callable[[], bool]


@dataclass
class RunOptions:
    device: str = "auto"
    batch_size: int = 8
    mixed_precision: bool = True  # float16 autocast, CUDA only
    seed: int = 0
    allow_modality_mismatch: bool = False
    patch_overlap: float | None = None  # None: the manifest's


@dataclass
class SynthesisResult:
    volume: Volume
    device: str
    duration_s: float
    messages: list[str] = field(default_factory=list)


def check_input(manifest: PluginManifest, volume: Volume, allow_modality_mismatch: bool = False) -> list[str]:
    """Refuse a volume of the wrong modality; return warnings for softer mismatches."""
    warnings = []
    if manifest.task == "generation":
        raise PluginError(f"{manifest.name} generates from noise and takes no input volume")
    if volume.modality and manifest.input_modalities and not manifest.accepts_modality(volume.modality):
        message = (
            f"{manifest.name} expects {'/'.join(manifest.input_modalities)} input but this volume is"
            f" {volume.modality}"
        )
        if not allow_modality_mismatch:
            raise InputMismatchError(message + "; choose a plugin made for this modality")
        warnings.append(message + " (run anyway on request)")
    elif not volume.modality:
        warnings.append(f"input modality unknown; assuming {'/'.join(manifest.input_modalities)}")
    if volume.voxels.size == 0:
        raise InputMismatchError("the input volume is empty")
    if volume.is_synthetic:
        warnings.append("the input is itself synthetic (a generator's output)")
    return warnings


def _spacing_warning(manifest: PluginManifest, volume: Volume, layout_axes) -> str | None:
    if manifest.spacing_mm is None:
        return None
    spacing_kji = volume.geometry.spacing_mm[::-1]
    if layout_axes is None:
        actual = spacing_kji
        expected = np.asarray(manifest.spacing_mm, float)[::-1][: len(actual)]
    else:
        actual = np.array([spacing_kji[a] for a in layout_axes[1:]])
        expected = np.asarray(manifest.spacing_mm[:2], float)
    if len(expected) == len(actual) and np.any(np.abs(actual / expected - 1.0) > 0.2):
        return (
            f"voxel spacing {np.round(actual, 2).tolist()} mm differs from the training spacing"
            f" {np.round(expected, 2).tolist()} mm by more than 20 %"
        )
    return None


class _BatchRunner:
    """Runs index batches through the generator; owns device moves and the OOM policy."""

    def __init__(self, plugin: LoadedPlugin, device: torch.device, options: RunOptions, messages: list[str]):
        self.plugin = plugin
        self.manifest = plugin.manifest
        self.device = device
        self.batch_size = max(1, options.batch_size)
        self.mixed_precision = options.mixed_precision
        self.overlap = self.manifest.patch_overlap if options.patch_overlap is None else options.patch_overlap
        self.messages = messages
        try:
            plugin.generator.to(device)
        except Exception as error:
            if not is_out_of_memory(error) or device.type == "cpu":
                raise
            release_cached_memory(device)
            self.messages.append(f"{device.type} out of memory loading the generator; running on the CPU")
            self.device = torch.device("cpu")
            plugin.generator.to(self.device)

    def _infer(self, batch: torch.Tensor) -> torch.Tensor:
        images = batch.to(self.device, non_blocking=True)
        autocast = (
            torch.autocast("cuda", dtype=torch.float16)
            if self.device.type == "cuda" and self.mixed_precision and self.plugin.generator.kind == "torch"
            else nullcontext()
        )
        with torch.inference_mode(), autocast:
            output = run_tiled(
                self.plugin.generator,
                images,
                self.manifest.patch_size,
                overlap=self.overlap,
                size_multiple=self.manifest.size_multiple,
            )
        channel = output.shape[1] // 2  # single channel, or the centre one of a 2.5D output
        return output[:, channel].float()

    def run(
        self,
        count: int,
        make_batch: Callable[[range], torch.Tensor],
        store: Callable[[range, torch.Tensor], None],
        progress: ProgressCallback,
        cancel: CancelCallback,
    ) -> None:
        start = 0
        while start < count:
            if cancel():
                raise SynthesisCancelled("synthesis cancelled; nothing was produced")
            indices = range(start, min(start + self.batch_size, count))
            try:
                output = self._infer(make_batch(indices))
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                self._recover_from_oom()
                continue
            store(indices, output)
            start = indices.stop
            progress(start / count, f"{start}/{count} on {self.device.type}")

    def _recover_from_oom(self) -> None:
        release_cached_memory(self.device)
        if self.batch_size > 1:
            self.batch_size //= 2
            self.messages.append(
                f"{self.device.type} out of memory; retrying with batch size {self.batch_size}"
            )
            return
        if self.device.type != "cpu":
            self.messages.append(
                f"{self.device.type} out of memory even at batch size 1; finishing on the CPU"
            )
            self.device = torch.device("cpu")
            self.plugin.generator.to(self.device)
            return
        raise PluginError("out of memory on the CPU: the image or patch is too large for this machine")


def _slice_batch(stack: torch.Tensor, indices: range, context_slices: int) -> torch.Tensor:
    """(B, C, rows, cols): C = 1, or the slice with its neighbours (edges repeated) for 2.5D."""
    half = context_slices // 2
    centre = torch.arange(indices.start, indices.stop, device=stack.device)
    offsets = torch.arange(-half, half + 1, device=stack.device)
    chosen = (centre[:, None] + offsets[None, :]).clamp(0, stack.shape[0] - 1)
    return stack[chosen]


def _upload(voxels: np.ndarray, device: torch.device) -> torch.Tensor:
    """The voxels as a float32 tensor on ``device`` (small integer types travel as they are)."""
    array = np.asarray(voxels)
    if array.dtype not in (np.uint8, np.int8, np.int16, np.int32, np.float16, np.float32, np.float64):
        array = array.astype(np.float32)
    if not array.flags.c_contiguous or not array.flags.writeable:
        array = np.array(array, order="C")
    return torch.from_numpy(array).to(device).float()


def _to_stack(tensor: torch.Tensor, layout) -> torch.Tensor:
    stack = tensor.permute(*layout.axes)
    flips = [axis for axis, flip in enumerate(layout.flips) if flip]
    return (torch.flip(stack, flips) if flips else stack).contiguous()


def _from_stack(stack: torch.Tensor, layout) -> torch.Tensor:
    flips = [axis for axis, flip in enumerate(layout.flips) if flip]
    stack = torch.flip(stack, flips) if flips else stack
    return stack.permute(*np.argsort(layout.axes).tolist())


def synthesize(
    plugin: LoadedPlugin | PluginManifest,
    volume: Volume,
    options: RunOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> SynthesisResult:
    """The plugin's output for ``volume``, on the input's grid, marked synthetic."""
    options = options or RunOptions()
    progress = progress or (lambda fraction, message: None)
    cancel = cancel or (lambda: False)
    plugin = plugin if isinstance(plugin, LoadedPlugin) else load_plugin(plugin)
    manifest = plugin.manifest
    messages = check_input(manifest, volume, options.allow_modality_mismatch)
    started = time.perf_counter()
    torch.manual_seed(options.seed)
    device = choose_device(options.device)
    progress(0.0, f"normalising ({manifest.normalization['input']['method']})")

    fitted = fit_input_scaling(volume.voxels, manifest.normalization)
    runner = _BatchRunner(plugin, device, options, messages)
    # The whole pipeline (scaling, reorientation, batching, inverse) runs on the compute
    # device, so a GPU run copies the volume there once and the result back once.
    try:
        normalized = to_network(_upload(volume.voxels, runner.device), fitted)
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        release_cached_memory(runner.device)
        messages.append(
            f"the volume does not fit in {runner.device.type} memory; slices are sent one batch at a time"
        )
        normalized = to_network(_upload(volume.voxels, torch.device("cpu")), fitted)
    layout = None
    if manifest.dimensionality == "3D":
        outputs: list[torch.Tensor] = []
        runner.run(
            1, lambda _: normalized[None, None], lambda _, values: outputs.append(values[0]), progress, cancel
        )
        output = outputs[0]
    else:
        layout = plane_layout(volume.geometry.direction, manifest.plane or "axial")
        stack = _to_stack(normalized, layout)
        del normalized
        output_stack = torch.empty(stack.shape, dtype=torch.float32, device=stack.device)

        def store_slices(indices: range, values: torch.Tensor) -> None:
            output_stack[indices.start : indices.stop] = values.to(output_stack.device)

        runner.run(
            stack.shape[0],
            lambda indices: _slice_batch(stack, indices, manifest.input_channels),
            store_slices,
            progress,
            cancel,
        )
        output = _from_stack(output_stack, layout)

    if warning := _spacing_warning(manifest, volume, layout.axes if layout else None):
        messages.append(warning)
    voxels = np.ascontiguousarray(from_network(output, manifest.normalization, fitted).cpu().numpy())
    duration_s = time.perf_counter() - started
    provenance = Provenance(
        plugin_name=manifest.name,
        plugin_version=manifest.version,
        task=manifest.task,
        weights_sha256=plugin.weights_sha256,
        device=runner.device.type,
        parameters={
            "architecture": manifest.architecture.describe(),
            "dimensionality": manifest.dimensionality,
            "plane": manifest.plane,
            "context_slices": manifest.input_channels,
            "batch_size": runner.batch_size,
            "patch_size": list(manifest.patch_size) if manifest.patch_size else None,
            "patch_overlap": runner.overlap,
            "mixed_precision": runner.device.type == "cuda" and options.mixed_precision,
            "input_scaling": fitted.as_dict(),
            "output_scaling": manifest.normalization["output"],
            "input_modality": volume.modality,
            "messages": list(messages),
        },
        duration_s=round(duration_s, 3),
        seed=options.seed,
        source_description=volume.name,
    )
    result_volume = Volume(
        voxels=voxels,
        geometry=volume.geometry,
        modality=manifest.output_modality,
        units=manifest.output_units,
        name=f"{volume.name or 'input'} → {manifest.name}",
        provenance=provenance,
        metadata={"source_name": volume.name, "plugin_messages": list(messages)},
    )
    progress(1.0, f"done in {duration_s:.1f} s on {runner.device.type}")
    return SynthesisResult(result_volume, runner.device.type, duration_s, messages)

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

from app.core.label_map import LabelMapProvenance
from app.core.provenance import Provenance
from app.core.study import SOURCE_STUDY_KEYS
from app.core.volume import Volume
from app.plugins.device import choose_device, is_out_of_memory, release_cached_memory
from app.plugins.errors import InputMismatchError, PluginError, SynthesisCancelled
from app.plugins.loading import LoadedPlugin, load_plugin
from app.plugins.manifest import PluginManifest
from app.plugins.normalization import DEFAULT_NETWORK_RANGE, fit_input_scaling, from_network, to_network
from app.plugins.plane_stack import plane_layout
from app.plugins.sliding_window import run_tiled
from app.plugins.training_grid import TrainingGrid, grid_geometry, match_training_grid, resize_images

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
    match_training_spacing: bool = True  # resample image axes to the manifest's spacing_mm
    # "auto": the input's grid, except super-resolution, kept at the training spacing along the
    # axes where that is finer than the input's; "input": always the input's grid.
    output_grid: str = "auto"


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
    if volume.is_colour:  # refused first: no other mismatch matters for an image the plugin cannot read
        warnings.append(_colour_input_note(manifest))
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


def takes_colour(manifest: PluginManifest) -> bool:
    """A 2D (or 2.5D single-slice) plugin whose network takes 3 channels reads a colour image's
    R, G, B in them; any other plugin takes greyscale volumes only."""
    single_image = manifest.dimensionality != "3D" and manifest.input_channels == 1
    return single_image and manifest.architecture.input_nc == 3


def gives_colour(manifest: PluginManifest, colour_input: bool) -> bool:
    """A colour input through a plugin with 3 output channels gives an RGB image (a grey input
    keeps the single-image output: the centre channel, as before)."""
    return colour_input and manifest.architecture.output_nc == 3 and not manifest.is_segmentation


def _colour_input_note(manifest: PluginManifest) -> str:
    """Refuse a colour input a plugin cannot read (one line); else what happens to its channels."""
    if not takes_colour(manifest):
        kind = manifest.dimensionality + (
            f" with {manifest.input_channels} context slices" if manifest.input_channels > 1 else ""
        )
        raise InputMismatchError(
            f"the input is a colour (RGB) image and {manifest.name} takes greyscale ({kind},"
            f" input_nc {manifest.architecture.input_nc}): use a 2D plugin with architecture input_nc: 3"
        )
    if gives_colour(manifest, True):
        low_high = _rgb_output_bounds(manifest)
        if low_high is None:
            raise InputMismatchError(
                f"{manifest.name} has output_nc 3 but its normalization.output does not map to 0..255:"
                " an RGB output needs an output window within 0..255 (or same_as_input with a window or"
                " percentile input)"
            )
    return f"colour input: its R, G, B channels go to the {manifest.name} network's 3 input channels"


def _rgb_output_bounds(manifest: PluginManifest) -> tuple[float, float] | None:
    """The output scaling's bounds when they lie within 0..255 (an RGB image), else None."""
    spec = manifest.normalization["output"]
    if spec["method"] == "window":
        low, high = float(spec["low"]), float(spec["high"])
        return (low, high) if 0.0 <= low < high <= 255.0 else None
    if spec["method"] == "same_as_input":
        given = manifest.normalization["input"]
        if given["method"] == "percentile":
            return (0.0, 255.0)  # measured on the uint8 colour input
        if given["method"] == "window":
            low, high = float(given["low"]), float(given["high"])
            return (low, high) if 0.0 <= low < high <= 255.0 else None
    return None


class _BatchRunner:
    """Runs index batches through the generator; owns device moves and the OOM policy."""

    def __init__(
        self,
        plugin: LoadedPlugin,
        device: torch.device,
        options: RunOptions,
        messages: list[str],
        colour: bool = False,
    ):
        self.plugin = plugin
        self.manifest = plugin.manifest
        self.device = device
        self.batch_size = max(1, options.batch_size)
        self.mixed_precision = options.mixed_precision
        self.overlap = self.manifest.patch_overlap if options.patch_overlap is None else options.patch_overlap
        self.messages = messages
        self.channels = self.manifest.network_input_channels
        self.labels = self.manifest.is_segmentation  # argmax over channels, no output scaling
        self.rgb_output = gives_colour(self.manifest, colour)  # all 3 output channels, kept
        if self.manifest.input_channels == 1 and self.channels > 1 and not colour:
            messages.append(
                f"the generator takes {self.channels} input channels: each grey image is repeated"
                " in every channel (as pix2pix/CycleGAN read a grey image as RGB)"
            )
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
        if images.shape[1] == 1 and self.channels > 1:
            images = images.expand(-1, self.channels, *images.shape[2:])
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
        if self.labels:
            return _labels_from_output(output, self.manifest)
        if self.rgb_output:
            if output.shape[1] != 3:
                raise PluginError(
                    f"{self.manifest.name} declares output_nc 3 but returned {output.shape[1]} channels"
                )
            return output.float()
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
            except PluginError:
                raise
            except Exception as error:
                if not is_out_of_memory(error):
                    raise PluginError(
                        f"{self.manifest.name} failed on {_what(indices, count)}: {_error_text(error)}"
                    ) from error
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


def _labels_from_output(output: torch.Tensor, manifest: PluginManifest) -> torch.Tensor:
    """A segmentation network's labels (as float, for the shared buffers): the argmax over its
    output channels, or a single channel's values rounded (a network that returns labels)."""
    if not bool(torch.isfinite(output).all()):
        raise PluginError(f"{manifest.name} returned NaN or infinite values; nothing was produced")
    problem = manifest.label_channels_problem(output.shape[1])
    if problem:
        raise PluginError(f"{manifest.name}: {problem}; nothing was produced")
    if output.shape[1] == 1:
        return output[:, 0].float().round()
    return output.argmax(dim=1).float()


def _what(indices: range, count: int) -> str:
    return "the volume" if count == 1 else f"slices {indices.start + 1}-{indices.stop} of {count}"


def _error_text(error: BaseException) -> str:
    """The model's own error in a line: a TorchScript error's last line is the raised one."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    if "TorchScript" in lines[0]:
        return lines[-1][:400]
    return f"{type(error).__name__}: {'; '.join(lines[:4])}"[:400]


def _check_network_output(
    output: torch.Tensor, manifest: PluginManifest, stack_axis: int | None, mixed_precision: bool
) -> str | None:
    """Refuse NaN / infinite output (naming the slices); a note when it leaves the network range.

    One min/max pass (NaN propagates into both); the per-slice search runs only on failure.
    """
    smallest, largest = (float(v) for v in torch.aminmax(output))
    if not (np.isfinite(smallest) and np.isfinite(largest)):
        bad_voxels = ~torch.isfinite(output)
        if stack_axis is None:
            where = "the volume"
        else:
            per_slice = bad_voxels.movedim(stack_axis, 0).reshape(output.shape[stack_axis], -1).any(dim=1)
            bad = torch.nonzero(per_slice).flatten().tolist()
            span = f"slice {bad[0] + 1}" if len(bad) == 1 else f"slices {bad[0] + 1}-{bad[-1] + 1}"
            where = f"{span} of {per_slice.numel()}"
        hint = "; try again without mixed precision (--no-amp)" if mixed_precision else ""
        raise PluginError(
            f"{manifest.name} returned NaN or infinite values in {int(bad_voxels.sum())} voxels of {where};"
            f" nothing was written{hint}"
        )
    low, high = manifest.normalization.get("network_range", DEFAULT_NETWORK_RANGE)
    if smallest < low - 1e-3 or largest > high + 1e-3:
        return (
            f"the generator's output reached [{smallest:.3g}, {largest:.3g}], outside the network range"
            f" [{float(low)}, {float(high)}] its manifest declares: values beyond it are mapped past the"
            " output scaling's bounds (check normalization.network_range or the final activation)"
        )
    return None


# What a synthesized volume inherits from its input: the patient, study and space it belongs to
# (browser grouping, exports joining the patient's study, annotations in the same space), never
# the series' identity (SeriesInstanceUID, description): the output is a new, derived series.
# The gantry tilt correction its pixels went through is inherited too (Volume.tilt_correction).
INHERITED_METADATA_KEYS = (*SOURCE_STUDY_KEYS, "BurnedInAnnotation")


def _derived_metadata(volume: Volume) -> dict:
    return {key: volume.metadata[key] for key in INHERITED_METADATA_KEYS if key in volume.metadata}


def _loaded_series_folder(volume: Volume) -> str:
    """The acquired DICOM series ``volume`` was read from ("" for NIfTI or a volume in memory)."""
    return volume.source_path if volume.metadata.get("SeriesInstanceUID") else ""


def _slice_batch(stack: torch.Tensor, indices: range, context_slices: int, flips) -> torch.Tensor:
    """(B, C, rows, cols) oriented as the plugin reads: C = 1, or a slice and its neighbours.

    ``stack`` is the volume permuted to (stack, rows, cols) but not flipped (flipping the whole
    volume would copy it); the flips are applied here, to the batch only. Neighbours past the
    first or last slice repeat the edge slice (2.5D).
    """
    count = stack.shape[0]
    half = context_slices // 2
    centre = torch.arange(indices.start, indices.stop, device=stack.device)
    offsets = torch.arange(-half, half + 1, device=stack.device)
    chosen = (centre[:, None] + offsets[None, :]).clamp(0, count - 1)
    if flips[0]:
        chosen = count - 1 - chosen
    in_plane = [axis + 1 for axis in (1, 2) if flips[axis]]
    batch = stack[chosen]
    return torch.flip(batch, in_plane) if in_plane else batch


def _store_slices(stack: torch.Tensor, indices: range, values: torch.Tensor, flips) -> None:
    """Write plugin-oriented output slices (B, rows, cols) into the unflipped ``stack`` view."""
    in_plane = [axis for axis in (1, 2) if flips[axis]]
    values = torch.flip(values, in_plane) if in_plane else values
    values = values.to(stack.device)
    if flips[0]:
        count = stack.shape[0]
        stack[count - indices.stop : count - indices.start] = torch.flip(values, [0])
    else:
        stack[indices.start : indices.stop] = values


def _upload(voxels: np.ndarray, device: torch.device) -> torch.Tensor:
    """The voxels as a float32 tensor on ``device`` (small integer types travel as they are)."""
    array = np.asarray(voxels)
    travels = (np.uint8, np.int8, np.int16, np.int32, np.float16, np.float32)
    if device.type != "mps":  # Apple's GPU has no float64: such volumes are converted here
        travels += (np.float64,)
    if array.dtype not in travels:
        array = array.astype(np.float32)
    if not array.flags.c_contiguous or not array.flags.writeable:
        array = np.array(array, order="C")
    return torch.from_numpy(array).to(device).float()


def _spacing_kji(volume: Volume) -> np.ndarray:
    return np.asarray(volume.geometry.spacing_mm, dtype=float)[::-1]


def _slice_spacing_warning(manifest: PluginManifest, volume: Volume, layout) -> str | None:
    """2D / 2.5D: the slice axis is never resampled, so a different slice spacing is only told."""
    if manifest.spacing_mm is None or len(manifest.spacing_mm) < 3:
        return None
    actual = float(_spacing_kji(volume)[layout.axes[0]])
    expected = float(manifest.spacing_mm[2])
    if abs(actual / expected - 1.0) > 0.2:
        return (
            f"slice spacing {actual:.3g} mm differs from the training slice spacing {expected:.3g} mm"
            " by more than 20 % (slices are not resampled)"
        )
    return None


def _unmatched_spacing_warning(grid: TrainingGrid | None) -> str | None:
    """When matching is switched off, say how far the image spacing is from the training one."""
    if grid is None:
        return None
    return (
        f"voxel spacing {np.round(grid.native_spacing_mm, 2).tolist()} mm differs from the training spacing"
        f" {list(grid.training_spacing_mm)} mm; run without resampling on request"
    )


def _run_volume(runner, normalized, volume, match_spacing, keep_finer, progress, cancel):
    """A 3D plugin over the whole volume (the sliding window tiles it): (output, None, grid, matched)."""
    declared = runner.manifest.spacing_mm
    training_spacing = declared[::-1] if declared and len(declared) == 3 else None  # (i, j, k) -> kji
    grid = match_training_grid(normalized.shape, _spacing_kji(volume), training_spacing)
    matched = grid if match_spacing else None
    output_shape = matched.finer_shape() if matched and keep_finer else tuple(normalized.shape)
    output = torch.empty(output_shape, dtype=torch.float32, device=normalized.device)

    def volume_batch(_: range) -> torch.Tensor:
        images = normalized[None, None]
        return matched.to_training(images) if matched else images

    def store_volume(_: range, values: torch.Tensor) -> None:
        values = resize_images(values[:, None], output_shape, runner.labels)[:, 0] if matched else values
        output.copy_(values[0])

    runner.run(1, volume_batch, store_volume, progress, cancel)
    return output, None, grid, matched


def _run_slices(runner, normalized, volume, match_spacing, keep_finer, progress, cancel):
    """A 2D / 2.5D plugin slice by slice in its plane: (output, layout, grid, matched)."""
    manifest = runner.manifest
    layout = plane_layout(volume.geometry.direction, manifest.plane or "axial")
    # Permuted views, never copies: flips are applied per batch (_slice_batch, _store_slices).
    colour = normalized.ndim == 4  # (k, j, i, c): the channel axis stays last
    channel_axis = (3,) if colour else ()
    stack = normalized.permute(*layout.axes, *channel_axis)
    native_spacing = _spacing_kji(volume)[list(layout.axes[1:])]
    grid = match_training_grid(stack.shape[1:3], native_spacing, manifest.spacing_mm)
    matched = grid if match_spacing else None
    image_shape = matched.finer_shape() if matched and keep_finer else tuple(stack.shape[1:3])
    output_shape = [0, 0, 0]
    for size, axis in zip((stack.shape[0], *image_shape), layout.axes, strict=True):
        output_shape[axis] = size
    rgb_axis = (3,) if runner.rgb_output else ()  # the output's colour axis, last
    colours = [3] if runner.rgb_output else []
    output = torch.empty([*output_shape, *colours], dtype=torch.float32, device=normalized.device)
    output_stack = output.permute(*layout.axes, *rgb_axis)

    def slice_batch(indices: range) -> torch.Tensor:
        batch = _slice_batch(stack, indices, manifest.input_channels, layout.flips)
        if colour:  # (B, 1, rows, cols, 3) -> the three colours as the network's channels
            batch = batch[:, 0].permute(0, 3, 1, 2)
        return matched.to_training(batch) if matched else batch

    def store_slices(indices: range, values: torch.Tensor) -> None:
        images = values if rgb_axis else values[:, None]
        if matched:
            images = resize_images(images, image_shape, runner.labels)
        values = images.permute(0, 2, 3, 1) if rgb_axis else images[:, 0]
        _store_slices(output_stack, indices, values, layout.flips)

    runner.run(stack.shape[0], slice_batch, store_slices, progress, cancel)
    return output, layout, grid, matched


@dataclass
class _RawRun:
    """The network's output on the compute device and how it was made (before scaling back)."""

    output: torch.Tensor
    geometry: object
    runner: _BatchRunner
    fitted: object
    matched: TrainingGrid | None
    layout: object
    messages: list[str]


def _run_network(plugin: LoadedPlugin, volume: Volume, options: RunOptions, progress, cancel) -> _RawRun:
    """Normalise, run slice-wise or patch-wise, resample back: the part images and labels share."""
    manifest = plugin.manifest
    messages = check_input(manifest, volume, options.allow_modality_mismatch)
    torch.manual_seed(options.seed)
    device = choose_device(options.device)
    progress(0.0, f"normalising ({manifest.normalization['input']['method']})")

    fitted = fit_input_scaling(volume.voxels, manifest.normalization)
    runner = _BatchRunner(plugin, device, options, messages, colour=volume.is_colour)
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
    keep_finer = manifest.task == "super-resolution" and options.output_grid == "auto"
    run = _run_volume if manifest.dimensionality == "3D" else _run_slices
    output, layout, grid, matched = run(
        runner, normalized, volume, options.match_training_spacing, keep_finer, progress, cancel
    )
    if layout is not None and (warning := _slice_spacing_warning(manifest, volume, layout)):
        messages.append(warning)
    geometry = volume.geometry
    if tuple(output.shape[:3]) != tuple(normalized.shape[:3]):
        geometry = grid_geometry(volume.geometry, normalized.shape[:3], output.shape[:3])
    if matched:
        messages.append(matched.describe(back_to_input=geometry is volume.geometry))
    elif warning := _unmatched_spacing_warning(grid):
        messages.append(warning)
    if geometry is not volume.geometry:
        messages.append(
            "super-resolution output kept on the finer training grid: "
            f"{' x '.join(f'{s:.3g}' for s in geometry.spacing_mm)} mm (i, j, k),"
            f" {' x '.join(map(str, output.shape[2::-1]))} voxels (input"
            f" {' x '.join(map(str, normalized.shape[2::-1]))})"
        )
    return _RawRun(output, geometry, runner, fitted, matched, layout, messages)


def _pass_out_of_range_through(
    voxels: np.ndarray, volume: Volume, manifest: PluginManifest, fitted, geometry
) -> str:
    """Add back what the input scaling clipped, where the output is in the input's units on the
    input's grid (``same_as_input``): a bright lesion above the plugin's range comes out as
    bright as it went in, not capped at the clip value. Returns a message, "" when none."""
    if fitted.method not in ("percentile", "window") or geometry is not volume.geometry:
        return ""
    if manifest.normalization["output"]["method"] != "same_as_input" or voxels.shape != volume.voxels.shape:
        return ""
    source = np.asarray(volume.voxels, dtype=np.float32)
    excess = np.nan_to_num(source - np.clip(source, fitted.low, fitted.high), nan=0.0)
    count = int(np.count_nonzero(excess))
    if count == 0:
        return ""
    voxels += excess
    return (
        f"{count} input voxel(s) outside the plugin's input range [{fitted.low:.4g}, {fitted.high:.4g}]:"
        " the generator saw them clipped; the excess is passed through unchanged (not synthesized)"
    )


def _run_parameters(raw: _RawRun, volume: Volume, options: RunOptions) -> dict:
    manifest, runner = raw.runner.manifest, raw.runner
    return {
        "architecture": manifest.architecture.describe(),
        "dimensionality": manifest.dimensionality,
        "plane": manifest.plane,
        "context_slices": manifest.input_channels,
        "batch_size": runner.batch_size,
        "patch_size": list(manifest.patch_size) if manifest.patch_size else None,
        "patch_overlap": runner.overlap,
        "training_grid": raw.matched.as_dict() if raw.matched else None,
        "output_grid": "input" if raw.geometry is volume.geometry else "training (super-resolution)",
        "mixed_precision": runner.device.type == "cuda" and options.mixed_precision,
        "input_scaling": raw.fitted.as_dict(),
        "input_modality": volume.modality,
        "messages": list(raw.messages),
    }


def _defaults(plugin, options, progress, cancel) -> tuple[LoadedPlugin, RunOptions, ProgressCallback, CancelCallback]:
    """The loaded plugin and the options and callbacks a caller left out."""
    return (
        plugin if isinstance(plugin, LoadedPlugin) else load_plugin(plugin),
        options or RunOptions(),
        progress or (lambda fraction, message: None),
        cancel or (lambda: False),
    )


def synthesize(
    plugin: LoadedPlugin | PluginManifest,
    volume: Volume,
    options: RunOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> SynthesisResult:
    """The plugin's output for ``volume``, marked synthetic: on the input's grid, or for a
    super-resolution plugin on its finer training grid over the same field of view. A
    segmentation plugin is refused here: its label maps come from ``segment``."""
    plugin, options, progress, cancel = _defaults(plugin, options, progress, cancel)
    manifest = plugin.manifest
    if manifest.is_segmentation:
        raise PluginError(
            f"{manifest.name} is a segmentation plugin: it makes label maps, not images"
            " (use it with compare --segment)"
        )
    started = time.perf_counter()
    raw = _run_network(plugin, volume, options, progress, cancel)
    runner, output, geometry, messages = raw.runner, raw.output, raw.geometry, raw.messages
    mixed = runner.device.type == "cuda" and options.mixed_precision
    stack_axis = raw.layout.axes[0] if raw.layout else None
    if warning := _check_network_output(output, manifest, stack_axis, mixed):
        messages.append(warning)
    # The output buffer is ours: scale it back in place; on the CPU .numpy() then shares it.
    voxels = np.ascontiguousarray(
        from_network(output, manifest.normalization, raw.fitted, in_place=True).cpu().numpy()
    )
    out_of_range = _pass_out_of_range_through(voxels, volume, manifest, raw.fitted, geometry)
    if out_of_range:
        messages.append(out_of_range)
    if runner.rgb_output:  # an RGB image: 0..255 as uint8, like the colour images SynthView loads
        voxels = np.rint(np.clip(voxels, 0.0, 255.0, out=voxels), out=voxels).astype(np.uint8)
    duration_s = time.perf_counter() - started
    provenance = Provenance(
        plugin_name=manifest.name,
        plugin_version=manifest.version,
        task=manifest.task,
        weights_sha256=plugin.weights_sha256,
        device=runner.device.type,
        parameters={
            **_run_parameters(raw, volume, options),
            "out_of_range_input": "passed through" if out_of_range else "none",
            "output_scaling": manifest.normalization["output"],
            "messages": list(messages),
        },
        duration_s=round(duration_s, 3),
        seed=options.seed,
        source_description=volume.name,
    )
    result_volume = Volume(
        voxels=voxels,
        geometry=geometry,
        modality=manifest.output_modality,
        units=manifest.output_units,
        name=f"{volume.name or 'input'} → {manifest.name}",
        provenance=provenance,
        metadata=_derived_metadata(volume),
        tilt_correction=volume.tilt_correction,
        derived_from_series=_loaded_series_folder(volume),
    )
    progress(1.0, f"done in {duration_s:.1f} s on {runner.device.type}")
    return SynthesisResult(result_volume, runner.device.type, duration_s, messages)


def segment(
    plugin: LoadedPlugin | PluginManifest,
    volume: Volume,
    options: RunOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> SynthesisResult:
    """A segmentation plugin's label map of ``volume`` (int16 labels on the input's grid).

    Same machinery as ``synthesize`` (input scaling, plane or patches, training spacing, device,
    out-of-memory policy); the output is the argmax over the network's channels, not scaled back,
    and the Volume is a derived label map (``Volume.label_map``), never marked synthetic.
    """
    plugin, options, progress, cancel = _defaults(plugin, options, progress, cancel)
    manifest = plugin.manifest
    if not manifest.is_segmentation:
        raise PluginError(f"{manifest.name} is a {manifest.task} plugin, not a segmentation plugin")
    started = time.perf_counter()
    raw = _run_network(plugin, volume, options, progress, cancel)
    labels = np.ascontiguousarray(raw.output.cpu().numpy()).astype(np.int16)
    known = {entry.value for entry in manifest.labels}
    unknown = sorted(set(np.unique(labels).tolist()) - known)
    if unknown:
        raise PluginError(
            f"{manifest.name} returned label {unknown[0]}, which its label table does not list"
            f" ({', '.join(map(str, sorted(known)))}): check the output channels against labels"
        )
    duration_s = time.perf_counter() - started
    label_map = LabelMapProvenance(
        plugin_name=manifest.name,
        plugin_version=manifest.version,
        labels=manifest.labels,
        weights_sha256=plugin.weights_sha256,
        device=raw.runner.device.type,
        source_description=volume.name,
        parameters=_run_parameters(raw, volume, options),
        duration_s=round(duration_s, 3),
        source_synthetic=volume.is_synthetic,
    )
    result_volume = Volume(
        voxels=labels,
        geometry=raw.geometry,
        modality="SEG",
        units="label",
        name=f"{volume.name or 'input'} → {manifest.name} labels",
        label_map=label_map,
        metadata=_derived_metadata(volume),
        tilt_correction=volume.tilt_correction,
        derived_from_series=_loaded_series_folder(volume),
    )
    progress(1.0, f"done in {duration_s:.1f} s on {raw.runner.device.type}")
    return SynthesisResult(result_volume, raw.runner.device.type, duration_s, raw.messages)

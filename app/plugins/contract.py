"""``plugins check``: verify a plugin the way a MONAI bundle is verified, with fake tensors.

Steps (each reported, stopping at the first failure): manifest valid, weights hash, weights load
(strictly, as data), and a forward pass of a fake input of the declared channels and patch size
whose output must have the declared shape, be finite, and lie in the network's range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from app.plugins.errors import PluginError, error_summary
from app.plugins.loading import Generator, load_generator
from app.plugins.manifest import ArchitectureSpec, PluginManifest, WeightsRef, load_manifest
from app.plugins.normalization import DEFAULT_NETWORK_RANGE
from app.plugins.plane_stack import describe_network_view


@dataclass(frozen=True)
class CheckStep:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Probe:
    """The fake input's shape and the manifest field (or model declaration) that set its size."""

    shape: tuple[int, ...]
    source: str


_LARGER_SIDES = (64, 128, 256, 512)
MAX_LATENT_DIM = 65536


def _default_side(size_multiple: int) -> int:
    side = max(size_multiple, 4) * (2 if size_multiple < 32 else 1)
    return max(side, 32) if size_multiple <= 32 else side


def probe_for(manifest: PluginManifest) -> Probe:
    """The fake input: ``patch_size`` when declared, else a side derived from ``size_multiple``
    (for a built-in U-Net its minimum, 2^levels). An ONNX model's fixed input size is checked
    against ``patch_size`` when it runs (it must be declared: the runtime tiles to it)."""
    channels = manifest.network_input_channels
    if manifest.patch_size:
        field = "patch_size" if "patch_size" in manifest.raw else f"architecture {manifest.architecture.type}"
        return Probe((1, channels, *manifest.patch_size), f"{field} {list(manifest.patch_size)}")
    dims = 3 if manifest.dimensionality == "3D" else 2
    multiple = manifest.size_multiple
    side = _default_side(multiple)
    if "size_multiple" in manifest.raw:
        source = f"size_multiple {multiple}"
    else:
        source = f"size_multiple (not set; {multiple} for architecture {manifest.architecture.type})"
    return Probe((1, channels, *([side] * dims)), source)


def _generation_check(manifest: PluginManifest, generator: Generator) -> str:
    """A generator from noise takes z of shape (n, latent_dim), declared by its TorchScript module."""
    latent_dim = getattr(getattr(generator, "module", None), "latent_dim", None)
    if not isinstance(latent_dim, int) or not 1 <= latent_dim <= MAX_LATENT_DIM:
        raise PluginError(
            f"the module's latent_dim is {latent_dim!r}: a generation plugin's TorchScript module must"
            f" expose an int 'latent_dim' between 1 and {MAX_LATENT_DIM}"
        )
    torch.manual_seed(0)
    z = torch.randn(2, latent_dim)
    with torch.inference_mode(), torch.jit.optimized_execution(False):
        output = generator.module(z).float()
    if output.ndim != 4 or output.shape[0] != 2:
        raise PluginError(
            f"noise (2, {latent_dim}) gave output shape {tuple(output.shape)}, not (2, C, H, W)"
        )
    if manifest.patch_size and tuple(output.shape[2:]) != tuple(manifest.patch_size):
        raise PluginError(
            f"samples are {tuple(output.shape[2:])} but the manifest says {manifest.patch_size}"
        )
    return _range_check(manifest, output, f"noise (2, {latent_dim})")


def _range_check(manifest: PluginManifest, output: torch.Tensor, given: str) -> str:
    if not torch.isfinite(output).all():
        raise PluginError("output contains NaN or infinite values")
    low, high = manifest.normalization.get("network_range", DEFAULT_NETWORK_RANGE)
    if output.min() < low - 1e-3 or output.max() > high + 1e-3:
        raise PluginError(
            f"output range [{output.min():.3g}, {output.max():.3g}] leaves the network range [{low}, {high}]"
        )
    return f"{given} -> output {tuple(output.shape)}, range [{output.min():.3f}, {output.max():.3f}]"


def _run_probe(generator: Generator, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass. TorchScript's optimising executor would spend seconds compiling on the
    second call, for a probe that runs once or twice: it is switched off here."""
    torch.manual_seed(0)
    fake = torch.rand(shape) * 2 - 1
    with torch.inference_mode(), torch.jit.optimized_execution(False):
        return fake, generator(fake).float()


def _forward_check(manifest: PluginManifest, generator: Generator, output_nc: int | None) -> str:
    if manifest.task == "generation":
        return _generation_check(manifest, generator)
    probe = probe_for(manifest)
    declared_problem = _declared_input_problem(generator, probe, manifest)
    if declared_problem:
        raise PluginError(declared_problem)
    try:
        _, output = _run_probe(generator, probe.shape)
    except PluginError:
        raise  # already says what to change (an ONNX model's fixed size without patch_size)
    except Exception as error:  # the researcher's network refused the probe
        raise PluginError(_probe_failure(manifest, generator, probe, error)) from error
    expected_channels = output_nc if output_nc is not None else output.shape[1]
    expected = (1, expected_channels, *probe.shape[2:])
    if tuple(output.shape) != expected:
        raise PluginError(
            f"output shape {tuple(output.shape)} but the manifest implies {expected}"
            f" (input {probe.shape}, size from {probe.source})"
        )
    if manifest.is_segmentation:
        return _label_channels_check(manifest, output.shape[1]) + f" (size from {probe.source})"
    return _range_check(manifest, output, f"fake input {tuple(probe.shape)}") + f" (size from {probe.source})"


def _label_channels_check(manifest: PluginManifest, channels: int) -> str:
    """A segmentation network returns one channel per label value (argmax), or the labels."""
    problem = manifest.label_channels_problem(channels)
    if problem:
        raise PluginError(problem)
    if channels == 1:
        return f"label map: one channel of label values (0-{max(entry.value for entry in manifest.labels)})"
    return f"label map: argmax over {channels} channels, {len(manifest.labels)} labels"


def _probe_failure(manifest: PluginManifest, generator: Generator, probe: Probe, error: Exception) -> str:
    """One line: why the probe failed and which manifest field to set. When the size came from
    size_multiple, larger sides are tried to find the one the network needs (a U-Net's 2^levels)."""
    reason = error_summary(error)
    wanted = re.search(r"to have (\d+) channels, but got (\d+) channels", reason)
    if wanted:
        return _channels_message(manifest, int(wanted[1]), probe.shape[1]) + f"\n(the network said: {reason})"
    side = probe.shape[-1]
    size = " x ".join(map(str, probe.shape[2:]))
    if "size_multiple" in probe.source:
        multiple = manifest.size_multiple
        for larger in (s for s in _LARGER_SIDES if s > side and s % multiple == 0):
            try:
                _run_probe(generator, (*probe.shape[:2], *([larger] * (len(probe.shape) - 2))))
            except Exception:  # still too small (or another fault): try the next size
                continue
            return (
                f"the network fails on {size} images but runs on {' x '.join([str(larger)] * (len(probe.shape) - 2))}: set size_multiple:"
                f" {larger} in the manifest (or patch_size: {[larger] * (len(probe.shape) - 2)}); the"
                f" probe's size comes from {probe.source}\n(the network said: {reason})"
            )
    return (
        f"the network fails on a fake input {probe.shape} whose size comes from {probe.source}: set"
        f" patch_size (or size_multiple) to the image size the network takes\n(the network said: {reason})"
    )


def _channels_message(manifest: PluginManifest, wanted: int, given: int) -> str:
    field = "context_slices" if manifest.dimensionality == "2.5D" else "architecture.input_nc"
    return f"the network takes {wanted} input channel(s), the manifest gives {given}: set {field}: {wanted}"


def _declared_input_problem(generator: Generator, probe: Probe, manifest: PluginManifest) -> str | None:
    """An ONNX model declares its input: a rank or channel count the manifest contradicts."""
    fixed = getattr(generator, "fixed_shape", None)
    if not fixed:
        return None
    if len(fixed) != len(probe.shape):
        dims = len(fixed) - 2
        return (
            f"the ONNX model takes {dims}D images (input rank {len(fixed)}), the manifest says"
            f" dimensionality {manifest.dimensionality}: set dimensionality: {'3D' if dims == 3 else '2D'}"
        )
    if fixed[1] is not None and fixed[1] != probe.shape[1]:
        return _channels_message(manifest, fixed[1], probe.shape[1])
    return None


def _check_generator(
    steps: list[CheckStep], manifest: PluginManifest, label: str, spec: ArchitectureSpec, weights: WeightsRef
) -> bool:
    try:
        generator, sha256 = load_generator(spec, weights)
    except PluginError as error:
        steps.append(CheckStep(f"{label} weights", False, str(error)))
        return False
    steps.append(
        CheckStep(f"{label} weights", True, f"{weights.path.name} sha256 {sha256[:16]}…, {spec.describe()}")
    )
    try:
        detail = _forward_check(manifest, generator, spec.output_nc if spec.is_builtin else None)
    except PluginError as error:  # ours: the first line says what to change, details follow
        steps.append(CheckStep(f"{label} contract", False, str(error)))
        return False
    except Exception as error:  # whatever the researcher's model raises is this step's finding
        steps.append(CheckStep(f"{label} contract", False, error_summary(error)))
        return False
    steps.append(CheckStep(f"{label} contract", True, detail))
    return True


def check_plugin(path: str | Path | PluginManifest) -> list[CheckStep]:
    """All steps run for a plugin folder (or manifest); ``all(step.passed)`` means usable."""
    steps: list[CheckStep] = []
    if isinstance(path, PluginManifest):
        manifest = path
    else:
        try:
            manifest = load_manifest(path)
        except PluginError as error:
            return [CheckStep("manifest", False, str(error))]
    steps.append(CheckStep("manifest", True, f"{manifest.name} {manifest.version} ({manifest.task})"))
    if manifest.task != "generation":
        view = describe_network_view(manifest.plane or "axial", manifest.dimensionality, manifest.context_slices)
        steps.append(CheckStep("network input", True, view))
    if not _check_generator(steps, manifest, "generator", manifest.architecture, manifest.weights):
        return steps
    if manifest.reverse_architecture and manifest.reverse_weights:
        _check_generator(
            steps, manifest, "reverse generator", manifest.reverse_architecture, manifest.reverse_weights
        )
    return steps

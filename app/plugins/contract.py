"""``plugins check``: verify a plugin the way a MONAI bundle is verified, with fake tensors.

Steps (each reported, stopping at the first failure): manifest valid, weights hash, weights load
(strictly, as data), and a forward pass of a fake input of the declared channels and patch size
whose output must have the declared shape, be finite, and lie in the network's range.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from app.plugins.errors import PluginError, error_summary
from app.plugins.loading import Generator, load_generator
from app.plugins.manifest import ArchitectureSpec, PluginManifest, WeightsRef, load_manifest
from app.plugins.normalization import DEFAULT_NETWORK_RANGE


@dataclass(frozen=True)
class CheckStep:
    name: str
    passed: bool
    detail: str


def fake_input_shape(manifest: PluginManifest) -> tuple[int, ...]:
    channels = manifest.network_input_channels
    if manifest.patch_size:
        return (1, channels, *manifest.patch_size)
    side = max(manifest.size_multiple, 4) * (2 if manifest.size_multiple < 32 else 1)
    side = max(side, 32) if manifest.size_multiple <= 32 else side
    dims = 3 if manifest.dimensionality == "3D" else 2
    return (1, channels, *([side] * dims))


def _generation_check(manifest: PluginManifest, generator: Generator) -> str:
    """A generator from noise takes z of shape (n, latent_dim), declared by its TorchScript module."""
    latent_dim = getattr(getattr(generator, "module", None), "latent_dim", None)
    if not isinstance(latent_dim, int) or latent_dim < 1:
        raise PluginError("a generation plugin's TorchScript module must expose an int 'latent_dim'")
    torch.manual_seed(0)
    z = torch.randn(2, latent_dim)
    with torch.inference_mode():
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


def _forward_check(manifest: PluginManifest, generator: Generator, output_nc: int | None) -> str:
    if manifest.task == "generation":
        return _generation_check(manifest, generator)
    shape = fake_input_shape(manifest)
    torch.manual_seed(0)
    fake = torch.rand(shape) * 2 - 1
    with torch.inference_mode():
        output = generator(fake).float()
    expected_channels = output_nc if output_nc is not None else output.shape[1]
    expected = (1, expected_channels, *shape[2:])
    if tuple(output.shape) != expected:
        raise PluginError(f"output shape {tuple(output.shape)} but the manifest implies {expected}")
    return _range_check(manifest, output, f"fake input {tuple(shape)}")


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
    if not _check_generator(steps, manifest, "generator", manifest.architecture, manifest.weights):
        return steps
    if manifest.reverse_architecture and manifest.reverse_weights:
        _check_generator(
            steps, manifest, "reverse generator", manifest.reverse_architecture, manifest.reverse_weights
        )
    return steps

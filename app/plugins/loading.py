"""Turn a manifest into a callable generator: hash check, safe load, strict architecture fit."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from app.plugins.architectures import load_builtin_generator
from app.plugins.errors import PluginError, UnsafeWeightsError, WeightsFormatError
from app.plugins.manifest import ArchitectureSpec, PluginManifest, WeightsRef
from app.plugins.weights import (
    load_state_dict,
    load_torchscript,
    onnx_session,
    quiet_run_options,
    read_verified,
    verify_sha256,
)


class Generator:
    """A network as ``tensor (B, C, *spatial) -> tensor``, movable between devices."""

    kind = "torch"

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module.eval()

    def to(self, device: torch.device) -> Generator:
        self.module.to(device)
        return self

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.module(images)


class OnnxGenerator(Generator):
    """An onnxruntime session behind the same interface (runs on its own providers)."""

    kind = "onnx"

    def __init__(self, path, device_type: str = "cpu") -> None:
        self.path = path
        self.session = onnx_session(path, device_type)
        declared = self.session.get_inputs()[0]
        self.input_name = declared.name
        # torch.onnx.export without dynamic_axes fixes the batch (1) and the image size.
        self.fixed_shape = [size if isinstance(size, int) and size > 0 else None for size in declared.shape]

    def to(self, device: torch.device) -> OnnxGenerator:
        wants_cuda = device.type == "cuda"
        has_cuda = "CUDAExecutionProvider" in self.session.get_providers()
        if wants_cuda != has_cuda:
            self.session = onnx_session(self.path, device.type)
        return self

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self._check_image_size(tuple(images.shape))
        array = np.ascontiguousarray(images.detach().float().cpu().numpy())
        batch = self.fixed_shape[0] if self.fixed_shape else None
        if batch and array.shape[0] != batch and array.shape[0] % batch == 0:
            parts = [self._run(array[start : start + batch]) for start in range(0, array.shape[0], batch)]
            output = np.concatenate(parts)
        else:
            output = self._run(array)
        return torch.from_numpy(output).to(images.device)

    def _run(self, array: np.ndarray) -> np.ndarray:
        (output, *_) = self.session.run(None, {self.input_name: array}, quiet_run_options())
        return np.asarray(output, dtype=np.float32)

    def _check_image_size(self, shape: tuple[int, ...]) -> None:
        fixed = self.fixed_shape[2:]
        if len(fixed) != len(shape) - 2 or not any(fixed):
            return
        if any(want is not None and want != have for want, have in zip(fixed, shape[2:], strict=True)):
            size = " x ".join(str(s) if s else "any" for s in fixed)
            raise PluginError(
                f"{Path(self.path).name} takes fixed {size} images but was given"
                f" {' x '.join(map(str, shape[2:]))}: add patch_size: {list(fixed)} to the manifest (images"
                " are then tiled to that size), or re-export the model with dynamic_axes for the image size"
            )


def _refuse_outside_folder(weights: WeightsRef) -> None:
    """The manifest check ran when it was read; the file may since have become a link leading out."""
    if weights.folder is None:
        return
    resolved = weights.path.resolve()
    if not resolved.is_relative_to(weights.folder.resolve()):
        raise UnsafeWeightsError(
            f"{weights.path.name}: now resolves outside the plugin folder (to {resolved}), refusing to"
            f" read it: put the weights file itself in {weights.folder}"
        )


def load_generator(spec: ArchitectureSpec, weights: WeightsRef) -> tuple[Generator, str]:
    """Check the file's SHA-256 against the manifest, then load it as data; returns the hash."""
    _refuse_outside_folder(weights)
    if spec.type == "onnx":
        sha256 = verify_sha256(weights.path, weights.sha256)
        return OnnxGenerator(weights.path), sha256
    verified = read_verified(weights.path, weights.sha256)
    sha256 = verified.sha256
    if spec.type == "torchscript":
        return Generator(load_torchscript(verified)), sha256
    state_dict = load_state_dict(verified)
    if not state_dict:
        raise WeightsFormatError(f"{weights.path.name}: the state dict is empty")
    return Generator(load_builtin_generator(spec, state_dict)), sha256


@dataclass
class LoadedPlugin:
    """A manifest with its generator ready to run (the reverse one is loaded on demand)."""

    manifest: PluginManifest
    generator: Generator
    weights_sha256: str
    _reverse: tuple[Generator, str] | None = field(default=None, repr=False)

    def reverse_generator(self) -> tuple[Generator, str] | None:
        """The generator back to the input domain (for cycle checks), or None if not declared."""
        m = self.manifest
        if m.reverse_architecture is None or m.reverse_weights is None:
            return None
        if self._reverse is None:
            self._reverse = load_generator(m.reverse_architecture, m.reverse_weights)
        return self._reverse


def load_plugin(manifest: PluginManifest) -> LoadedPlugin:
    generator, sha256 = load_generator(manifest.architecture, manifest.weights)
    return LoadedPlugin(manifest, generator, sha256)

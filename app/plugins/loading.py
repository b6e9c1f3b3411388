"""Turn a manifest into a callable generator: hash check, safe load, strict architecture fit."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from app.plugins.architectures import load_builtin_generator
from app.plugins.errors import WeightsFormatError
from app.plugins.manifest import ArchitectureSpec, PluginManifest, WeightsRef
from app.plugins.weights import load_state_dict, load_torchscript, onnx_session, verify_sha256


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
        self.input_name = self.session.get_inputs()[0].name

    def to(self, device: torch.device) -> OnnxGenerator:
        wants_cuda = device.type == "cuda"
        has_cuda = "CUDAExecutionProvider" in self.session.get_providers()
        if wants_cuda != has_cuda:
            self.session = onnx_session(self.path, device.type)
        return self

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        array = images.detach().float().cpu().numpy()
        (output, *_) = self.session.run(None, {self.input_name: np.ascontiguousarray(array)})
        return torch.from_numpy(np.asarray(output, dtype=np.float32)).to(images.device)


def load_generator(spec: ArchitectureSpec, weights: WeightsRef) -> tuple[Generator, str]:
    """Check the file's SHA-256 against the manifest, then load it as data; returns the hash."""
    sha256 = verify_sha256(weights.path, weights.sha256)
    if spec.type == "onnx":
        return OnnxGenerator(weights.path), sha256
    if spec.type == "torchscript":
        return Generator(load_torchscript(weights.path)), sha256
    state_dict = load_state_dict(weights.path)
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

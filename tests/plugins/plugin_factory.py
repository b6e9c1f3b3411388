"""Tiny plugins written into a temporary folder for tests: random small weights + manifest."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import torch
import yaml

from app.plugins.architectures import build_generator
from app.plugins.manifest import ArchitectureSpec

MODEL_CARD = {
    "training_data": "none: random weights for tests",
    "paired": True,
    "intended_use": "tests only",
    "known_limits": "produces noise",
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_data(weights_file: str, weights_sha256: str, **overrides) -> dict:
    data = {
        "schema_version": 1,
        "name": "tiny-mr2ct",
        "version": "0.1.0",
        "task": "cross-modality",
        "input": {"modality": "MR", "contrast": "T1"},
        "output": {"modality": "CT", "units": "HU"},
        "dimensionality": "2D",
        "plane": "axial",
        "normalization": {
            "input": {"method": "percentile", "low_percentile": 0.5, "high_percentile": 99.5},
            "output": {"method": "window", "low": -1000, "high": 1000},
        },
        "architecture": {
            "type": "resnet_6blocks",
            "input_nc": 1,
            "output_nc": 1,
            "ngf": 4,
            "norm": "instance",
        },
        "weights": {"file": weights_file, "sha256": weights_sha256},
        "model_card": dict(MODEL_CARD),
        "training_domain": {"modalities": ["MR"], "body_parts": ["head"]},
    }
    data.update(overrides)
    return data


def write_manifest(folder: Path, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plugin.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def make_builtin_plugin(
    folder: Path, spec: ArchitectureSpec | None = None, seed: int = 0, **overrides
) -> Path:
    """A plugin folder with a random built-in generator saved as a plain state dict."""
    spec = spec or ArchitectureSpec("resnet_6blocks", 1, 1, ngf=4, norm="instance")
    torch.manual_seed(seed)
    network = build_generator(spec)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "latest_net_G.pth"
    torch.save(network.state_dict(), weights)
    architecture = {
        "type": spec.type,
        "input_nc": spec.input_nc,
        "output_nc": spec.output_nc,
        "ngf": spec.ngf,
        "norm": spec.norm,
        "use_dropout": spec.use_dropout,
    }
    data = manifest_data(weights.name, sha256(weights), architecture=architecture, **overrides)
    write_manifest(folder, data)
    return folder


def make_torchscript_plugin(folder: Path, module: torch.nn.Module, **overrides) -> Path:
    """A plugin folder with a scripted module (any small network the test defines)."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "model.pt"
    with warnings.catch_warnings():  # TorchScript is deprecated upstream, still a supported format here
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(module.eval()).save(str(weights))
    overrides.setdefault("architecture", {"type": "torchscript"})  # or with its input_nc / output_nc
    data = manifest_data(weights.name, sha256(weights), **overrides)
    write_manifest(folder, data)
    return folder


def make_cycle_plugin(folder: Path, forward: torch.nn.Module, reverse: torch.nn.Module) -> Path:
    """A TorchScript plugin with a reverse generator (for cycle checks), scaled by the input's
    full range (percentiles 0-100) so identities bring the values back exactly."""
    make_torchscript_plugin(folder, forward)
    make_torchscript_plugin(folder / "rev", reverse)
    data = yaml.safe_load((folder / "plugin.yaml").read_text())
    rev = yaml.safe_load((folder / "rev" / "plugin.yaml").read_text())
    data["normalization"]["input"] = {"method": "percentile", "low_percentile": 0, "high_percentile": 100}
    data["reverse"] = {
        "architecture": rev["architecture"],
        "weights": {"file": "rev/model.pt", "sha256": rev["weights"]["sha256"]},
    }
    (folder / "plugin.yaml").write_text(yaml.safe_dump(data))
    return folder


def run_plugins_check(path: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python main.py plugins check PATH`` in a new process (what a user's terminal shows)."""
    return subprocess.run(
        [sys.executable, "main.py", "plugins", "check", str(path)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )


THREE_TISSUE_LABELS = [
    {"value": 0, "name": "background"},
    {
        "value": 1,
        "name": "grey matter",
        "color": [200, 120, 120],
        "code": {"scheme": "SCT", "value": "389079008", "meaning": "Grey matter"},
    },
    {"value": 2, "name": "white matter", "color": [240, 240, 240]},
]


class NearestOfThree(torch.nn.Module):
    """Three-class 'segmentation': logits -(x - c)^2 for centres -1, 0, 1 of the network range,
    so with an input window [0, 200] intensities near 0, 100 and 200 give labels 0, 1 and 2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = [1, 3] + [1] * (x.dim() - 2)
        centres = torch.tensor([-1.0, 0.0, 1.0], device=x.device).view(shape)
        return -((x[:, :1] - centres) ** 2)


def segmentation_overrides(dimensionality: str = "2D", **overrides) -> dict:
    data = {
        "name": "tiny-tissue-seg",
        "task": "segmentation",
        "output": {"modality": "SEG"},
        "dimensionality": dimensionality,
        "normalization": {"input": {"method": "window", "low": 0, "high": 200}, "output": {"method": "none"}},
        "labels": THREE_TISSUE_LABELS,
    }
    data.update(overrides)
    return data


def make_segmentation_plugin(folder: Path, dimensionality: str = "2D", module=None, **overrides) -> Path:
    """A TorchScript segmentation plugin thresholding intensities into 3 labels (NearestOfThree)."""
    make_torchscript_plugin(
        folder, module or NearestOfThree(), **segmentation_overrides(dimensionality, **overrides)
    )
    if dimensionality == "3D":  # manifest_data sets an axial plane; a 3D plugin has none
        data = yaml.safe_load((folder / "plugin.yaml").read_text())
        data.pop("plane", None)
        write_manifest(folder, data)
    return folder

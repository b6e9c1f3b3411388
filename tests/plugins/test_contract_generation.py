"""``plugins check`` on generators from noise: they take z (n, latent_dim), not an image."""

from pathlib import Path

import torch
import yaml

from app.plugins.contract import check_plugin
from app.plugins.weights import sha256_of_file

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_generator_passes_the_contract_check():
    steps = check_plugin(ROOT / "plugins" / "mr_t1_axial_dcgan")
    assert all(step.passed for step in steps), [(s.name, s.detail) for s in steps]
    assert "noise (2, " in steps[-1].detail


class _NoLatent(torch.nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z.view(z.shape[0], 1, 8, 8))


def _generation_plugin(tmp_path: Path, module: torch.nn.Module) -> Path:
    torch.jit.save(torch.jit.script(module), str(tmp_path / "g.pt"))
    manifest = {
        "schema_version": 1,
        "name": "toy-noise",
        "version": "0.1",
        "task": "generation",
        "output": {"modality": "MR"},
        "dimensionality": "2D",
        "plane": "axial",
        "normalization": {"input": {"method": "none"}, "output": {"method": "window", "low": 0, "high": 1}},
        "patch_size": [8, 8],
        "architecture": {"type": "torchscript"},
        "weights": {"file": "g.pt", "sha256": sha256_of_file(tmp_path / "g.pt")},
        "model_card": {
            "training_data": "none",
            "paired": False,
            "intended_use": "test",
            "known_limits": "toy",
        },
    }
    (tmp_path / "plugin.yaml").write_text(yaml.safe_dump(manifest))
    return tmp_path


def test_generator_without_latent_dim_fails_with_a_clear_message(tmp_path):
    steps = check_plugin(_generation_plugin(tmp_path, _NoLatent()))
    assert not steps[-1].passed
    assert "latent_dim" in steps[-1].detail

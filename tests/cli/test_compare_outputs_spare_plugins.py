"""``compare --json/--report`` never write over what the run reads besides the two volumes: the
segmentation plugin's weights and manifest (``--json plugin/model.pt --force`` replaced the
weights, breaking the plugin) and the LPIPS / FID weights files, even with --force."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io.nifti import save_nifti
from main import main
from tests.plugins.plugin_factory import make_segmentation_plugin


@pytest.fixture
def pair(tmp_path):
    voxels = np.random.default_rng(0).normal(100, 20, (3, 16, 16)).astype(np.float32)
    original = save_nifti(Volume(voxels, Geometry.identity(), "MR", name="o"), tmp_path / "o.nii.gz")
    synthesized = save_nifti(
        Volume(voxels + 1, Geometry.identity(), "MR", name="s", provenance=Provenance("g", "1")),
        tmp_path / "s.nii.gz",
    )
    return [str(original), str(synthesized)]


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("option", ["--json", "--report"])
def test_an_output_onto_the_segmentation_plugins_files_is_refused_even_with_force(pair, tmp_path, capsys, option):
    plugin = make_segmentation_plugin(tmp_path / "seg", input={"modality": "MR"})
    before = _digests(plugin)
    for target in (plugin / "model.pt", plugin / "plugin.yaml"):
        assert target.exists()
        args = ["compare", *pair, "--segment", str(plugin), "--segment-synthesized", str(plugin)]
        assert main([*args, option, str(target), "--force"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "is inside the input folder" in err
    assert _digests(plugin) == before


def test_an_output_onto_a_learned_metric_weights_file_is_refused_even_with_force(pair, tmp_path, capsys):
    weights = tmp_path / "lpips_alex.pth"
    weights.write_bytes(b"not really weights")
    for option in ("--lpips-weights", "--fid-weights"):
        assert main(["compare", *pair, option, str(weights), "--json", str(weights), "--force"]) == 2
        assert "is also an input" in capsys.readouterr().err
    assert weights.read_bytes() == b"not really weights"

"""Normalisation never clips silently: input above the plugin's range is passed through, the
provenance says so, and compare lists it as its own region kind (a clipped lesion is always
reported)."""

from __future__ import annotations

import numpy as np
import torch

from app.analysis.compare_run import run_compare
from app.analysis.residual_regions import REGION_OUTSIDE_RANGE
from app.core.volume import Geometry, Volume
from app.plugins.loading import load_plugin
from app.plugins.manifest import load_manifest
from app.plugins.runtime import RunOptions, synthesize
from tests.plugins.plugin_factory import make_torchscript_plugin


class Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


def _plugin(tmp_path):
    folder = make_torchscript_plugin(
        tmp_path / "same",
        Identity(),
        name="tiny-denoise",
        task="denoising",
        output={"modality": "MR"},
        normalization={
            "input": {"method": "percentile", "low_percentile": 0.0, "high_percentile": 99.5},
            "output": {"method": "same_as_input"},
        },
    )
    return load_plugin(load_manifest(folder))


def _head_with_bright_lesion():
    rng = np.random.default_rng(0)
    voxels = np.zeros((24, 48, 48), np.float32)
    voxels[2:22, 4:44, 4:44] = 100.0 + rng.normal(0, 3.0, (20, 40, 40))
    k, j, i = np.indices(voxels.shape)
    lesion = (k - 12) ** 2 + (j - 24) ** 2 + (i - 30) ** 2 <= 9  # 6 mm
    voxels[lesion] = 180.0  # far above the 99.5th percentile (~110)
    return Volume(voxels, Geometry.identity(), "MR", name="head"), lesion


def test_bright_lesion_passes_through_and_is_reported(tmp_path):
    plugin = _plugin(tmp_path)
    volume, lesion = _head_with_bright_lesion()
    result = synthesize(plugin, volume, RunOptions(device="cpu"))
    out = np.asarray(result.volume.voxels)
    # Not capped at the clip value: the lesion comes out as bright as it went in.
    assert np.allclose(out[lesion], 180.0, atol=0.05)
    assert result.volume.provenance.parameters["out_of_range_input"] == "passed through"
    assert any("passed through unchanged" in m for m in result.messages)
    check = run_compare(volume, result.volume)
    outside = [r for r in check.regions if r.kind == REGION_OUTSIDE_RANGE]
    assert len(outside) == 1
    assert np.allclose(outside[0].centroid_ijk, (30, 24, 12), atol=0.5)
    assert "not synthesized" in outside[0].description
    data = check.to_dict()
    assert any(r["kind"] == REGION_OUTSIDE_RANGE for r in data["regions"])
    assert any("outside the plugin's input range" in note for note in check.notes)
    # A new threshold keeps the outside-range region (it does not depend on the residual).
    assert any(r.kind == REGION_OUTSIDE_RANGE for r in check.with_threshold(50.0).regions)


def test_a_clipped_lesion_is_reported_even_when_the_output_was_capped(tmp_path):
    # An output written by an older runtime (or another tool) that capped the lesion: the
    # residual may be anything; the outside-range region still names the lesion.
    plugin = _plugin(tmp_path)
    volume, lesion = _head_with_bright_lesion()
    result = synthesize(plugin, volume, RunOptions(device="cpu"))
    high = result.volume.provenance.parameters["input_scaling"]["high"]
    capped = np.asarray(result.volume.voxels).copy()
    capped[lesion] = high
    synthesized = Volume(capped, volume.geometry, "MR", name="capped", provenance=result.volume.provenance)
    check = run_compare(volume, synthesized)
    kinds = {r.kind for r in check.regions if np.linalg.norm(np.subtract(r.centroid_ijk, (30, 24, 12))) < 3}
    assert REGION_OUTSIDE_RANGE in kinds


def test_in_range_input_adds_nothing(tmp_path):
    plugin = _plugin(tmp_path)
    volume = Volume(np.linspace(0, 1, 24 * 16 * 16, dtype=np.float32).reshape(24, 16, 16), Geometry.identity(), "MR")
    result = synthesize(plugin, volume, RunOptions(device="cpu"))
    check = run_compare(volume, result.volume)
    assert not [r for r in check.regions if r.kind == REGION_OUTSIDE_RANGE]

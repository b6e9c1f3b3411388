"""Reruns for the hallucination maps: TTA, Monte-Carlo dropout, perturbation and cycle residual."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.analysis.uncertainty import flip
from app.core.quantity_map import MapKind
from app.core.volume import Geometry, Volume
from app.plugins.errors import PluginError, SynthesisCancelled
from app.plugins.loading import load_plugin
from app.plugins.manifest import ArchitectureSpec, load_manifest
from app.plugins.rerun_maps import MapRequest, RerunKind, map_availability
from app.plugins.runtime import RunOptions, synthesize
from app.plugins.uncertainty_runs import (
    compute_map,
    dropout_enabled,
    has_dropout,
    mc_dropout_runs,
    resolve_plugin,
    tta_runs,
)
from tests.plugins.plugin_factory import make_builtin_plugin, make_cycle_plugin, make_torchscript_plugin

CPU = RunOptions(device="cpu")


class EraseCorner(torch.nn.Module):
    """Sets rows/columns 2..4 to the network minimum: a known 'erased lesion'."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        y[:, :, 2:5, 2:5] = -1.0
        return y


def mr_volume(shape=(3, 16, 16)) -> Volume:
    voxels = np.random.default_rng(0).uniform(100, 900, shape).astype(np.float32)
    geometry = Geometry(np.array([-8.0, 4.0, 10.0]), np.array([0.8, 0.9, 2.5]), np.eye(3))
    return Volume(voxels, geometry, "MR", name="t1")


@pytest.fixture
def dropout_plugin(tmp_path):
    spec = ArchitectureSpec("resnet_6blocks", 1, 1, ngf=4, norm="instance", use_dropout=True)
    return load_plugin(load_manifest(make_builtin_plugin(tmp_path / "drop", spec=spec)))


def test_tta_outputs_are_de_augmented(tmp_path):
    plugin = load_plugin(load_manifest(make_torchscript_plugin(tmp_path / "id", torch.nn.Identity())))
    volume = mr_volume()
    outputs = tta_runs(plugin, volume, [flip(2), flip(1)], CPU)
    baseline = synthesize(plugin, volume, CPU).volume.voxels
    # An identity network is flip-equivariant: undoing each flip gives the plain output back.
    for output in outputs:
        np.testing.assert_allclose(output, baseline, atol=1e-3)


def test_mc_dropout_varies_only_through_dropout_and_restores_eval_mode(dropout_plugin):
    volume = mr_volume()
    module = dropout_plugin.generator.module
    assert has_dropout(dropout_plugin)
    with dropout_enabled(dropout_plugin) as count:
        assert count == 6  # one per residual block
        training = {type(m).__name__ for m in module.modules() if m.training}
        assert training == {"Dropout"}  # instance norm and the rest stay in eval mode
    outputs = mc_dropout_runs(dropout_plugin, volume, samples=3, options=CPU)
    assert len(outputs) == 3 and not np.allclose(outputs[0], outputs[1])
    assert not any(m.training for m in module.modules())
    first, second = (synthesize(dropout_plugin, volume, CPU).volume.voxels for _ in range(2))
    np.testing.assert_array_equal(first, second)  # plain runs are deterministic again


def test_mc_dropout_on_a_network_without_dropout_is_a_clear_error(tmp_path):
    plugin = load_plugin(load_manifest(make_builtin_plugin(tmp_path / "plain")))
    assert not has_dropout(plugin)
    availability = map_availability(plugin.manifest)
    assert "no dropout layers" in availability["mc_dropout"] and "no reverse" in availability["cycle"]
    assert availability["tta"] == availability["perturbation"] == ""
    with pytest.raises(PluginError, match="no dropout layers"):
        mc_dropout_runs(plugin, mr_volume(), samples=2, options=CPU)


def test_maps_are_marked_maps_of_a_synthetic_volume_on_its_grid(dropout_plugin):
    original = mr_volume()
    synthesized = synthesize(dropout_plugin, original, CPU).volume
    messages = []
    for request, kind in (
        (MapRequest("tta", device="cpu"), MapKind.TTA_SD),
        (MapRequest("mc_dropout", mc_samples=2, device="cpu"), MapKind.MC_DROPOUT_SD),
        (MapRequest("perturbation", noise_fraction=0.05, device="cpu"), MapKind.PERTURBATION_CHANGE),
    ):
        result = compute_map(request, dropout_plugin, original, synthesized, lambda f, m: messages.append(f))
        assert result.is_map and result.quantity_map.kind is kind and result.is_synthetic
        assert result.geometry is synthesized.geometry and result.voxels.shape == original.voxels.shape
        assert np.all(result.voxels >= 0) and result.voxels.max() > 0
        assert messages[-1] == pytest.approx(1.0) and all(0 <= f <= 1 for f in messages)
        assert messages == sorted(messages)  # one rising progress over all the runs
        messages.clear()
    with pytest.raises(ValueError, match="noise fraction"):
        MapRequest("perturbation", noise_fraction=0)


def test_a_map_request_names_its_kind_by_enum_or_by_name():
    assert MapRequest("mc_dropout").kind is RerunKind.MC_DROPOUT is MapRequest(RerunKind.MC_DROPOUT).kind
    with pytest.raises(ValueError, match=r"one of \('tta', 'mc_dropout', 'perturbation', 'cycle'\), not 'TTA'"):
        MapRequest("TTA")


def test_cycle_residual_shows_what_the_reverse_generator_cannot_bring_back(tmp_path):
    folder = make_cycle_plugin(tmp_path / "fwd", torch.nn.Identity(), EraseCorner())
    plugin = load_plugin(load_manifest(folder))
    original = mr_volume()
    synthesized = synthesize(plugin, original, CPU).volume
    residual = compute_map(MapRequest("cycle", device="cpu"), plugin, original, synthesized).voxels
    erased = np.zeros(original.voxels.shape, bool)
    erased[:, 2:5, 2:5] = True
    low = original.voxels.min()
    np.testing.assert_allclose(residual[erased], original.voxels[erased] - low, rtol=1e-3, atol=0.5)
    assert residual[~erased].max() < 0.5


def test_cancel_and_foreign_weights_are_refused(tmp_path, dropout_plugin):
    original = mr_volume()
    synthesized = synthesize(dropout_plugin, original, CPU).volume
    with pytest.raises(SynthesisCancelled):
        compute_map(
            MapRequest("tta", device="cpu"), dropout_plugin, original, synthesized, cancel=lambda: True
        )
    assert (
        resolve_plugin(synthesized, [dropout_plugin.manifest]).weights_sha256 == dropout_plugin.weights_sha256
    )
    other = load_manifest(make_builtin_plugin(tmp_path / "other", seed=5))  # same name, other weights
    with pytest.raises(PluginError, match="SHA-256 differs"):
        resolve_plugin(synthesized, [other])
    with pytest.raises(PluginError, match="no synthesis provenance"):
        resolve_plugin(original)

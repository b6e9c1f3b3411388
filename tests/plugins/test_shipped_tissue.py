"""The shipped tissue segmentation plugin (mr_t1_brain_tissue): it loads through the normal runtime
with its hash checked, its label table carries names, colours and SNOMED CT codes, and its model
card states the held-out Dice of the plugin beside the classical baseline, as metrics.json has them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.core.volume import Geometry, Volume
from app.plugins.errors import WeightsHashMismatchError
from app.plugins.loading import load_plugin
from app.plugins.manifest import load_manifest
from app.plugins.runtime import RunOptions, segment
from app.plugins.weights import sha256_of_file
from main import main

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "mr_t1_brain_tissue"
CODES = {"CSF": "65216001", "grey matter": "389081007", "white matter": "389080008"}


def test_it_loads_through_the_runtime_with_the_hash_checked_and_is_small():
    manifest = load_manifest(PLUGIN)
    assert manifest.is_segmentation and manifest.name == "mr-t1-brain-tissue"
    loaded = load_plugin(manifest)
    weights = PLUGIN / manifest.raw["weights"]["file"]
    assert loaded.weights_sha256 == manifest.weights.sha256 == sha256_of_file(weights)
    assert weights.stat().st_size < 2_000_000
    assert [e.name for e in manifest.labels] == ["background", "CSF", "grey matter", "white matter"]
    assert {e.name: (e.code.scheme, e.code.value) for e in manifest.labels if e.code} == {
        name: ("SCT", value) for name, value in CODES.items()
    }
    assert len({e.colour_rgb for e in manifest.labels}) == 4


def test_changed_weights_are_refused_before_loading(tmp_path):
    copy = Path(shutil.copytree(PLUGIN, tmp_path / "tissue"))
    weights = copy / load_manifest(copy).raw["weights"]["file"]
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsHashMismatchError, match="SHA-256 mismatch"):
        load_plugin(load_manifest(copy))


def test_plugins_check_passes(capsys):
    assert main(["plugins", "check", str(PLUGIN)]) == 0


def test_a_slab_of_brain_is_labelled_by_tissue_and_the_air_around_it_as_background():
    # A synthetic T1 slab: CSF-dark, grey and white bands at Colin27-like intensities, zero around.
    voxels = np.zeros((3, 96, 96), np.float32)
    voxels[:, 16:80, 16:80] = 88.0  # grey matter
    voxels[:, 32:64, 32:64] = 113.0  # white matter
    voxels[:, 20:28, 40:56] = 35.0  # a CSF pocket in the grey band
    geometry = Geometry(np.zeros(3), np.ones(3), np.diag([-1.0, -1.0, 1.0]))
    labels = segment(load_manifest(PLUGIN), Volume(voxels, geometry, "MR"), RunOptions(device="cpu")).volume.voxels
    middle = labels[1]
    assert middle[0:8, :].max() == 0 and middle[:, 88:].max() == 0  # air
    assert np.bincount(middle[40:56, 40:56].ravel()).argmax() == 3  # white core
    assert np.bincount(middle[18:30, 20:30].ravel()).argmax() == 2  # grey band
    assert np.bincount(middle[22:26, 44:52].ravel()).argmax() == 1  # CSF pocket


def test_the_card_states_the_plugin_and_the_baseline_dice_from_metrics_json():
    record = json.loads((PLUGIN / "metrics.json").read_text())
    card = (PLUGIN / "MODEL_CARD.md").read_text()
    heldout = record["heldout"]
    assert heldout["head"] == "MNI152-2009a" and heldout["threshold"] == 0.5
    for key, name in (("csf", "CSF"), ("grey_matter", "grey matter"), ("white_matter", "white matter")):
        row = f"| {name} | {heldout['reference_voxels'][key]} | {heldout['plugin_dice'][key]:.4f} |"
        assert f"{row} {heldout['baseline_dice'][key]:.4f} |" in card
    metrics = load_manifest(PLUGIN).model_card["metrics"]
    assert metrics["dice_grey_matter"] == heldout["plugin_dice"]["grey_matter"]
    assert metrics["baseline_dice_white_matter"] == heldout["baseline_dice"]["white_matter"]
    assert record["weights_sha256"] == load_manifest(PLUGIN).weights.sha256
    assert record["quick"] is False

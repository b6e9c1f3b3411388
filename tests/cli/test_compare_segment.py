"""``compare --segment``: both volumes segmented by a plugin, the consistency block in the JSON
and the report; a removed structure is listed where it was; an unmodified pair agrees fully."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io.nifti import save_nifti
from main import main
from tests.plugins.plugin_factory import make_builtin_plugin, make_segmentation_plugin
from tests.segmentation_fixtures import VentriclePhantom

# RAS on disk, LPS in memory: the region's centroid must come back in LPS.
GEOMETRY = Geometry(np.array([20.0, 30.0, -5.0]), np.array([1.0, 1.2, 2.0]), np.diag([-1.0, -1.0, 1.0]))
PHANTOM = VentriclePhantom(
    shape=(10, 30, 32),
    grey=(slice(1, 9), slice(4, 26), slice(4, 28)),
    white_band=(slice(2, 8), slice(6, 12), slice(6, 26)),
    ventricle=(slice(3, 7), slice(18, 24), slice(20, 26)),  # k, j, i: 4 x 6 x 6 voxels
)


@pytest.fixture
def volumes(tmp_path):
    original, filled = PHANTOM.volumes(GEOMETRY, name="t1")
    paths = {
        "original": save_nifti(original, tmp_path / "t1.nii.gz"),
        "filled": save_nifti(filled, tmp_path / "filled.nii.gz"),
        "same": save_nifti(
            Volume(PHANTOM.original(), GEOMETRY, "MR", name="same", provenance=Provenance("copier", "1.0")),
            tmp_path / "same.nii.gz",
        ),
    }
    return paths, make_segmentation_plugin(tmp_path / "seg", input={"modality": "MR"})


def test_a_removed_structure_is_a_disagreement_region_at_its_place(volumes, tmp_path, capsys):
    paths, plugin = volumes
    out_json, out_html = tmp_path / "c.json", tmp_path / "c.html"
    args = ["compare", str(paths["original"]), str(paths["filled"]), "--segment", str(plugin)]
    assert main([*args, "--json", str(out_json), "--report", str(out_html)]) == 0
    block = json.loads(out_json.read_text())["consistency"]
    assert len(block["regions"]) == 1
    region = block["regions"][0]
    centre_ijk = [22.5, 20.5, 4.5]  # the ventricle's centre (i, j, k)
    np.testing.assert_allclose(region["centroid_lps_mm"], GEOMETRY.lps_from_index(centre_ijk), atol=1e-6)
    assert region["centroid_lps_mm"][0] == pytest.approx(20 - 22.5)  # i runs towards the right
    assert region["volume_ml"] == pytest.approx(PHANTOM.ventricle_voxels() * 1.0 * 1.2 * 2.0 / 1000)
    assert [c["description"] for c in region["changes"]] == ["white matter -> grey matter"]
    by_name = {label["name"]: label for label in block["labels"]}
    white_ml = (6 * 6 * 20 + 4 * 6 * 6) * 2.4 / 1000
    assert by_name["white matter"]["volume_original_ml"] == pytest.approx(white_ml)
    assert by_name["white matter"]["volume_change_ml"] == pytest.approx(-4 * 6 * 6 * 2.4 / 1000, abs=1e-4)
    assert by_name["white matter"]["dice"] == pytest.approx(2 * 720 / (864 + 720), abs=1e-4)
    assert by_name["grey matter"]["volume_change_ml"] > 0
    assert block["segmentations"]["original"]["kind"] == "derived label map"
    assert block["segmentations"]["synthesized"]["synthetic"] is False
    assert any("the input is itself synthetic" in note for note in block["notes"])
    html = out_html.read_text()
    assert "<h2>Segmentation consistency</h2>" in html and "white matter -&gt; grey matter" in html
    out = capsys.readouterr().out
    assert "1 disagreement region(s)" in out and "white matter: Dice 0.9091" in out


def test_an_unmodified_pair_gives_dice_one_and_no_regions(volumes, tmp_path):
    paths, plugin = volumes
    out_json = tmp_path / "agreement.json"  # not same.json: that is same.nii.gz's sidecar
    args = ["compare", str(paths["original"]), str(paths["same"]), "--segment", str(plugin)]
    assert main([*args, "--segment-synthesized", str(plugin), "--json", str(out_json)]) == 0
    block = json.loads(out_json.read_text())["consistency"]
    assert [label["dice"] for label in block["labels"]] == [1.0, 1.0]
    assert [label["hd95_mm"] for label in block["labels"]] == [0.0, 0.0]
    assert block["regions"] == [] and block["disagreement_voxels"] == 0


def test_wrong_plugins_and_options_are_refused_in_one_line(volumes, tmp_path, capsys):
    paths, plugin = volumes
    pair = ["compare", str(paths["original"]), str(paths["filled"])]
    assert main([*pair, "--segment-synthesized", str(plugin)]) == 2
    assert "--segment-synthesized needs --segment" in capsys.readouterr().err
    assert main([*pair, "--segment", str(tmp_path / "nowhere")]) == 2
    assert "no plugin named" in capsys.readouterr().err
    gan = make_builtin_plugin(tmp_path / "gan")
    out_json = tmp_path / "never.json"
    assert main([*pair, "--segment", str(gan), "--json", str(out_json)]) == 2
    err = capsys.readouterr().err
    assert (
        "is a cross-modality plugin, not a segmentation plugin" in err and len(err.strip().splitlines()) == 1
    )
    assert not out_json.exists()
    ct_only = make_segmentation_plugin(tmp_path / "ct-seg", input={"modality": "CT"})
    assert main([*pair, "--segment", str(plugin), "--segment-synthesized", str(ct_only)]) == 2
    err = capsys.readouterr().err
    assert "segmenting the synthesized volume" in err and "--segment-synthesized PLUGIN2" in err


def test_a_synthesized_volume_on_another_grid_is_compared_on_the_originals(volumes, tmp_path):
    paths, plugin = volumes
    # The same phantom stored 2 voxels (2 mm) further right: nearest resampling onto the original's
    # grid moves every structure by 2 voxels along i, so the labels no longer agree fully.
    moved = Geometry(
        GEOMETRY.origin_lps_mm + np.array([-2.0, 0.0, 0.0]), GEOMETRY.spacing_mm, GEOMETRY.direction
    )
    moved_path = save_nifti(
        Volume(PHANTOM.original(), moved, "MR", name="moved", provenance=Provenance("mover", "1.0")),
        tmp_path / "moved.nii.gz",
    )
    out_json = tmp_path / "moved-consistency.json"
    args = [
        "compare",
        str(paths["original"]),
        str(moved_path),
        "--segment",
        str(plugin),
        "--json",
        str(out_json),
    ]
    assert main(args) == 0
    block = json.loads(out_json.read_text())["consistency"]
    assert (
        "the synthesized volume's labels were resampled (nearest) onto the original's grid" in block["notes"]
    )
    white = next(label for label in block["labels"] if label["name"] == "white matter")
    assert white["hausdorff_mm"] == pytest.approx(2.0)  # the 2 mm shift, in mm
    assert 0 < white["dice"] < 1 and block["regions"]


def test_synthesize_refuses_a_segmentation_plugin_in_one_line(volumes, tmp_path, capsys):
    paths, plugin = volumes
    out = tmp_path / "labels-as-image.nii.gz"
    assert main(["synthesize", "--plugin", str(plugin), str(paths["original"]), str(out)]) == 2
    assert "is a segmentation plugin: it makes label maps, not images" in capsys.readouterr().err
    assert not out.exists()

"""``compare --segment`` on a pair whose synthesized image is of another kind: another modality
is refused (the segmenter's input modality) and names --segment-synthesized; another contrast of
the same modality (a cross-contrast generator's T2 from a T1) is not refused by modality, so it
was segmented by the T1 segmenter with no word at all. It now warns (console, JSON, report);
with a PLUGIN2 for its kind the warning goes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io.nifti import save_nifti
from main import main
from tests.plugins.plugin_factory import make_segmentation_plugin
from tests.segmentation_fixtures import VentriclePhantom

GEOMETRY = Geometry(np.array([20.0, 30.0, -5.0]), np.ones(3), np.diag([-1.0, -1.0, 1.0]))
PHANTOM = VentriclePhantom(
    shape=(8, 24, 24),
    grey=(slice(1, 7), slice(4, 20), slice(4, 20)),
    white_band=(slice(2, 6), slice(6, 10), slice(6, 18)),
    ventricle=(slice(3, 5), slice(13, 17), slice(12, 16)),
)


@pytest.fixture
def cross_contrast(tmp_path):
    original = save_nifti(Volume(PHANTOM.original(), GEOMETRY, "MR", name="t1"), tmp_path / "t1.nii.gz")
    t2 = Volume(
        200 - PHANTOM.original(), GEOMETRY, "MR", name="t2", provenance=Provenance("t1-to-t2", "1", task="cross-contrast")
    )
    return str(original), str(save_nifti(t2, tmp_path / "t2.nii.gz"))


def test_a_cross_contrast_pair_segmented_by_the_originals_segmenter_is_warned(cross_contrast, tmp_path, capsys):
    t1_seg = make_segmentation_plugin(tmp_path / "t1-seg", input={"modality": "MR", "contrast": "T1"})
    out = tmp_path / "c.json"
    assert main(["compare", *cross_contrast, "--segment", str(t1_seg), "--json", str(out), "--report", str(tmp_path / "c.html")]) == 0
    printed = capsys.readouterr().out
    assert "warning: the synthesized volume comes from a cross-contrast generator (t1-to-t2)" in printed
    assert "--segment-synthesized PLUGIN2" in printed
    notes = json.loads(out.read_text())["consistency"]["notes"]
    assert any(note.startswith("warning: the synthesized volume comes from a cross-contrast") for note in notes)
    assert "cross-contrast generator (t1-to-t2)" in (tmp_path / "c.html").read_text()

    t2_seg = make_segmentation_plugin(tmp_path / "t2-seg", input={"modality": "MR", "contrast": "T2"})
    args = ["compare", *cross_contrast, "--segment", str(t1_seg), "--segment-synthesized", str(t2_seg)]
    assert main([*args, "--json", str(out), "--force"]) == 0
    assert not [n for n in json.loads(out.read_text())["consistency"]["notes"] if n.startswith("warning:")]
    assert "warning:" not in capsys.readouterr().out


def test_a_segmenter_outside_its_training_domain_is_warned(cross_contrast, tmp_path, capsys):
    narrow = make_segmentation_plugin(
        tmp_path / "narrow",
        input={"modality": "MR"},
        training_domain={"modalities": ["MR"], "spacing_mm_min": [2, 2, 2]},
    )
    original, _ = cross_contrast
    assert main(["compare", original, original, "--segment", str(narrow)]) == 0
    printed = capsys.readouterr().out
    assert "warning: segmenting the original: outside the training domain of tiny-tissue-seg: spacing" in printed


def test_a_synthesized_volume_covering_part_of_the_field_of_view_removes_nothing_outside_it(tmp_path, capsys):
    """A synthesized slab covering the left half of the original: the right half's tissue was
    counted as removed (Dice 0.69 / 0.59, volume -48 % / -58 %, a disagreement region) though the
    generator never saw it; labels are now compared inside the overlap, and the block says so."""
    original = PHANTOM.original()
    half = original[:, :, :12].copy()
    paths = [
        save_nifti(Volume(original, GEOMETRY, "MR", name="t1"), tmp_path / "t1.nii.gz"),
        save_nifti(Volume(half, GEOMETRY, "MR", name="half", provenance=Provenance("g", "1")), tmp_path / "half.nii.gz"),
    ]
    plugin = make_segmentation_plugin(tmp_path / "seg", input={"modality": "MR"})
    out = tmp_path / "c.json"
    assert main(["compare", *map(str, paths), "--segment", str(plugin), "--json", str(out)]) == 0
    block = json.loads(out.read_text())["consistency"]
    assert [label["dice"] for label in block["labels"]] == [1.0, 1.0]
    assert [label["volume_change_ml"] for label in block["labels"]] == [0.0, 0.0]
    assert block["regions"] == [] and block["disagreement_voxels"] == 0
    assert any("covers 50.0 % of the original's voxels" in note for note in block["notes"])
    far = Geometry(GEOMETRY.origin_lps_mm + np.array([0.0, 0.0, 500.0]), GEOMETRY.spacing_mm, GEOMETRY.direction)
    save_nifti(Volume(half, far, "MR", name="far", provenance=Provenance("g", "1")), tmp_path / "far.nii.gz")
    assert main(["compare", str(paths[0]), str(tmp_path / "far.nii.gz"), "--segment", str(plugin)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1

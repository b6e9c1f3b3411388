"""A series synthesized by a shipped plugin, then transcoded as archives do, is still called
synthetic by info, convert, export (DICOM, SR, SEG) and the viewer's label."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

import main
from app.annotations.sidecar import save_annotations
from app.core.volume import Geometry, Volume
from app.io.loader import load_volume
from app.io.nifti import SYNTHETIC_DESCRIP, save_nifti, sidecar_path
from tests.cli.test_export import annotated
from tests.io.series_factory import write_series
from tests.io.synthetic_variants import variant, without_tool

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
ARCHIVED = ("implicit", "rle", "enhanced-per-frame-group")


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory) -> Path:
    """mr-t1-denoise run on a small MR volume, written as a derived DICOM series."""
    root = tmp_path_factory.mktemp("synthesized")
    voxels = np.random.default_rng(2).normal(300, 50, (4, 32, 32)).astype(np.int16)
    geometry = Geometry(np.array([-19.0, -19.0, 0.0]), np.array([1.0, 1.0, 3.0]), np.eye(3))
    save_nifti(Volume(voxels, geometry, modality="MR", name="t1"), root / "t1.nii.gz")
    plugin = str(ROOT / "plugins" / "mr_t1_denoise")
    assert main.main(["synthesize", "--plugin", plugin, str(root / "t1.nii.gz"), str(root / "derived"), "--device", "cpu"]) == 0  # fmt: skip
    return root


def archived(synthesized: Path, name: str) -> Path:
    if without_tool(name):
        pytest.skip("dcmtk is not installed")
    return variant(synthesized / "derived", synthesized, name)


def run(argv, capsys) -> tuple[int, str]:
    code = main.main([str(a) for a in argv])
    captured = capsys.readouterr()
    print(captured.err)
    return code, captured.out


@pytest.mark.parametrize("name", ARCHIVED)
def test_info_calls_every_archived_form_synthetic(synthesized, name, capsys):
    folder = archived(synthesized, name)
    code, out = run(["info", folder, "--json"], capsys)
    assert code == 0
    (series,) = json.loads(out)["studies"][0]["series"]
    assert series["synthetic"] is True
    code, out = run(["info", folder], capsys)
    assert "[SYNTHETIC]" in out


def test_info_says_false_for_an_acquired_series(tmp_path, capsys):
    write_series(tmp_path, [0.0, 1.0, 2.0])
    code, out = run(["info", tmp_path, "--json"], capsys)
    (series,) = json.loads(out)["studies"][0]["series"]
    assert series["synthetic"] is False
    assert "[SYNTHETIC]" not in run(["info", tmp_path], capsys)[1]


def test_convert_of_an_rle_series_writes_the_synthetic_description_and_sidecar(synthesized, tmp_path, capsys):
    out = tmp_path / "synth.nii.gz"
    assert run(["convert", archived(synthesized, "rle"), out], capsys)[0] == 0
    assert bytes(nib.load(str(out)).header["descrip"]).rstrip(b"\x00") == SYNTHETIC_DESCRIP
    provenance = json.loads(sidecar_path(out).read_text())["provenance"]
    assert provenance["synthetic"] is True and provenance["plugin_name"] == "mr-t1-denoise"


def test_reexports_of_an_archived_series_stay_synthetic(synthesized, tmp_path, capsys):
    source = archived(synthesized, "enhanced-per-frame-group")
    save_annotations(annotated(load_volume(source)), tmp_path / "notes.json")
    argv = ["export", source, "--annotations", tmp_path / "notes.json", "--dicom", tmp_path / "again"]
    code, _ = run([*argv, "--sr", tmp_path / "sr.dcm", "--seg", tmp_path / "seg.dcm"], capsys)
    assert code == 0
    for path in sorted((tmp_path / "again").glob("*.dcm")):
        dataset = pydicom.dcmread(path)
        assert dataset.SyntheticData == "YES"
        assert dataset.DerivationDescription.startswith("Synthesized by mr-t1-denoise 1.0.0")
        assert dataset.SeriesDescription.startswith("SYNTHETIC")
    for name in ("sr.dcm", "seg.dcm"):
        assert "SYNTHETIC" in pydicom.dcmread(tmp_path / name).SeriesDescription


def test_export_of_the_implicit_series_without_dicom_sr_is_marked(synthesized, tmp_path, capsys):
    source = archived(synthesized, "implicit")
    save_annotations(annotated(load_volume(source)), tmp_path / "notes.json")
    code, _ = run(
        ["export", source, "--annotations", tmp_path / "notes.json", "--sr", tmp_path / "sr.dcm"], capsys
    )
    assert code == 0
    assert "SYNTHETIC" in pydicom.dcmread(tmp_path / "sr.dcm").SeriesDescription


def test_viewer_labels_an_rle_series_synthetic(qtbot, synthesized, tmp_path):
    from PySide6 import QtGui

    out = tmp_path / "view.png"
    assert (
        main.main(["view", str(archived(synthesized, "rle")), "--screenshot", str(out), "--size", "900x600"])
        == 0
    )
    image = QtGui.QImage(str(out))
    reds = sum(
        1 for x in range(0, 900, 3) for y in range(0, 600, 3) if image.pixelColor(x, y).name() == "#c0001a"
    )
    assert reds > 20

"""``main.py info`` and ``main.py convert`` as a user runs them (in-process through main.main)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import main
from tests.io.series_factory import write_series

pydicom_data = pytest.importorskip("pydicom.data")
P = Path(pydicom_data.get_testdata_file("CT_small.dcm")).parent


def run(argv, capsys):
    code = main.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_info_text_lists_series_warnings_and_skipped(tmp_path, capsys):
    write_series(tmp_path, [0.0, 1.0, 2.0, 4.0])  # one slice missing
    (tmp_path / "readme.txt").write_text("hello")
    code, out, _ = run(["info", str(tmp_path)], capsys)
    assert code == 0
    assert "5 x 6 x 4 voxels, spacing 0.7 x 0.5 x 1 mm, orientation LPS" in out
    assert "warning: 1 missing slice(s)" in out
    assert "readme.txt: not a DICOM file" in out


def test_info_json(demo_dicom_dir, capsys):
    code, out, _ = run(["info", str(demo_dicom_dir), "--json"], capsys)
    assert code == 0
    document = json.loads(out)
    (study,) = document["studies"]
    (series,) = study["series"]
    assert series["size"] == [197, 233, 189]
    assert series["spacing_mm"] == [1.0, 1.0, 1.0]
    assert series["orientation"] == "LPS"
    assert series["modality"] == "MR"
    assert series["warnings"] == []


def test_info_on_nifti_and_on_bad_paths(tmp_path, mni_t1_nifti_path, capsys):
    code, out, _ = run(["info", str(mni_t1_nifti_path), "--json"], capsys)
    assert code == 0 and json.loads(out)["volumes"][0]["size"] == [197, 233, 189]
    code, _, err = run(["info", str(tmp_path / "missing")], capsys)
    assert code == 1 and "does not exist" in err
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.bin").write_bytes(b"\x00" * 300)
    code, out, err = run(["info", str(tmp_path / "junk")], capsys)
    assert code == 1 and "no image series found" in err and "a.bin" in out


def test_convert_writes_the_dcm2niix_affine(tmp_path, capsys):
    shutil.copy(P / "CT_small.dcm", tmp_path / "ct.dcm")
    out_path = tmp_path / "out" / "ct.nii.gz"
    code, out, _ = run(["convert", str(tmp_path / "ct.dcm"), str(out_path)], capsys)
    assert code == 0 and "wrote" in out
    image = nib.load(str(out_path))
    # CT_small: IPP (-158.136, -179.036, -75.7), IOP axial, 0.661 mm pixels; RAS flips x and y.
    expected = np.array(
        [[-0.661468, 0, 0, 158.135803], [0, -0.661468, 0, 179.035797], [0, 0, 5.0, -75.699997]]
    )
    assert np.allclose(image.affine[:3, :2], expected[:, :2], atol=1e-4)
    assert np.allclose(image.affine[:3, 3], expected[:, 3], atol=1e-4)
    assert image.get_fdata().shape[:2] == (128, 128)


def test_convert_needs_series_when_ambiguous(tmp_path, capsys):
    write_series(tmp_path / "a", [0.0, 1.0, 2.0], series_uid="1.2.3.4")
    write_series(tmp_path / "b", [0.0, 1.0], series_uid="1.2.3.5")
    target = tmp_path / "x.nii.gz"
    code, _, err = run(["convert", str(tmp_path), str(target)], capsys)
    assert code == 2 and "choose one with --series" in err and "1.2.3.5" in err
    assert not target.exists()
    code, _, _ = run(["convert", str(tmp_path), str(target), "--series", "1.2.3.5"], capsys)
    assert code == 0
    assert nib.load(str(target)).shape == (5, 6, 2)
    code, _, err = run(["convert", str(tmp_path), str(tmp_path / "y.nii.gz"), "--series", "9.9"], capsys)
    assert code == 1 and "no series 9.9" in err


def test_convert_rejects_non_nifti_output(tmp_path, capsys):
    code, _, err = run(["convert", str(P / "CT_small.dcm"), str(tmp_path / "out.png")], capsys)
    assert code == 2 and ".nii" in err


def test_info_says_when_orientation_letters_are_only_the_nearest_axes(tmp_path, capsys):
    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    oblique = np.diag([2.0, 2.0, 3.0, 1.0])
    oblique[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([2.0, 2.0, 3.0])
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.float32), oblique), tmp_path / "oblique.nii.gz")
    code, out, _ = run(["info", str(tmp_path / "oblique.nii.gz")], capsys)
    assert code == 0 and "(oblique: nearest axes)" in out
    code, out, _ = run(["info", str(tmp_path / "oblique.nii.gz"), "--json"], capsys)
    assert json.loads(out)["volumes"][0]["oblique"] is True
    write_series(tmp_path / "dcm", [0.0, 1.0, 2.0], orientation=(c, s, 0, -s, c, 0))
    code, out, _ = run(["info", str(tmp_path / "dcm"), "--json"], capsys)
    assert json.loads(out)["studies"][0]["series"][0]["oblique"] is True
    write_series(tmp_path / "axial", [0.0, 1.0, 2.0])
    code, out, _ = run(["info", str(tmp_path / "axial")], capsys)
    assert "oblique" not in out

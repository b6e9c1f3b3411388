"""Colour and palette images (RGB, YBR, PALETTE COLOR; ultrasound, secondary capture) load as
uint8 RGB volumes, are listed by info, convert to RGB24 NIfTI, and are shown without a window."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_color_lut

from app.io.errors import LoadError
from app.io.loader import load_volume
from main import main

pydicom_data = pytest.importorskip("pydicom.data")
data_store = pytest.importorskip("data_store")
D = Path(data_store.__file__).parent / "data"


def sample_file(name: str) -> Path:
    """A file of pydicom's test set or pydicom-data's."""
    return Path(pydicom_data.get_testdata_file(name))


# (file, photometric interpretation as stored)
RGB_LIKE = [
    (sample_file("SC_rgb.dcm"), "RGB"),
    (sample_file("SC_rgb_rle.dcm"), "RGB"),
    (sample_file("SC_rgb_2frame.dcm"), "RGB"),
    (sample_file("SC_ybr_full_uncompressed.dcm"), "YBR_FULL"),
    (sample_file("SC_rgb_jpeg_dcmtk.dcm"), "YBR_FULL"),
    (D / "US1_J2KR.dcm", "YBR_RCT"),
    (D / "US1_UNCR.dcm", "RGB"),
]


@pytest.mark.parametrize("path, photometric", RGB_LIKE, ids=lambda v: getattr(v, "name", v))
def test_colour_files_load_as_rgb_like_pydicom_shows_them(path, photometric):
    dataset = pydicom.dcmread(path)
    assert str(dataset.PhotometricInterpretation) == photometric
    volume = load_volume(path)
    assert volume.is_colour and volume.voxels.dtype == np.uint8
    expected = dataset.pixel_array  # pydicom converts YBR to RGB
    expected = expected if expected.ndim == 4 else expected[np.newaxis]
    assert volume.voxels.shape == expected.shape
    assert np.array_equal(volume.voxels, expected.astype(np.uint8))


def test_palette_colour_goes_through_its_lookup_table():
    path = D / "OBXXXX1A.dcm"
    dataset = pydicom.dcmread(path)
    volume = load_volume(path)
    expected = (apply_color_lut(dataset.pixel_array, dataset) >> 8).astype(np.uint8)
    assert volume.is_colour and np.array_equal(volume.voxels[0], expected)


def test_ultrasound_matches_simpleitk_sample_for_sample():
    sitk = pytest.importorskip("SimpleITK")
    path = D / "US1_UNCR.dcm"
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    assert np.array_equal(load_volume(path).voxels, reference.reshape(1, 480, 640, 3))


def test_info_lists_colour_and_convert_writes_rgb_nifti(tmp_path, capsys):
    path = sample_file("SC_rgb.dcm")
    assert main(["info", str(path), "--json"]) == 0
    (series,) = json.loads(capsys.readouterr().out)["studies"][0]["series"]
    assert series["colour"] is True and series["photometric"] == "RGB"
    assert main(["info", str(path)]) == 0
    assert "[colour: RGB]" in capsys.readouterr().out
    out = tmp_path / "rgb.nii.gz"
    assert main(["convert", str(path), str(out)]) == 0
    written = np.asanyarray(nib.load(out).dataobj)
    assert written.dtype.names == ("R", "G", "B")
    rgb = written.view(np.uint8).reshape(*written.shape, 3)  # (i, j, k, c)
    assert np.array_equal(rgb.transpose(2, 1, 0, 3), load_volume(path).voxels)
    assert load_volume(out).is_colour


def test_colour_is_refused_where_greyscale_is_needed(tmp_path, capsys):
    from app.io.dicom_export import ExportError, write_derived_series

    volume = load_volume(sample_file("SC_rgb.dcm"))
    with pytest.raises(ExportError, match="colour"):
        write_derived_series(volume, tmp_path / "out")
    rgb = str(sample_file("SC_rgb.dcm"))
    assert main(["compare", rgb, rgb, "--json", str(tmp_path / "c.json")]) == 2
    assert "colour (RGB) image" in capsys.readouterr().err
    assert main(["synthesize", "--plugin", "mr-t1-denoise", rgb, str(tmp_path / "s.nii.gz"),
                 "--allow-modality-mismatch", "--device", "cpu"]) == 2  # fmt: skip
    assert "colour (RGB) image" in capsys.readouterr().err
    bad = pydicom.dcmread(sample_file("SC_rgb.dcm"))
    bad.PixelData = bad.PixelData[:100]
    bad.save_as(tmp_path / "short.dcm")
    with pytest.raises(LoadError):
        load_volume(tmp_path / "short.dcm")


def test_viewer_shows_colour_without_a_window(qtbot, tmp_path):
    from PySide6 import QtGui

    out = tmp_path / "us.png"
    assert main(["view", str(D / "US1_UNCR.dcm"), "--layout", "axial", "--screenshot", str(out)]) == 0
    image = QtGui.QImage(str(out))
    coloured = 0
    for x in range(0, image.width(), 4):
        for y in range(0, image.height(), 4):
            colour = image.pixelColor(x, y)
            if colour.red() > 150 and colour.green() < 120 and colour.blue() < 80:  # the Doppler red/orange
                coloured += 1
    assert coloured > 20


def test_palette_file_without_a_meta_header_matches_simpleitk():
    sitk = pytest.importorskip("SimpleITK")
    path = sample_file("OT-PAL-8-face.dcm")  # no preamble, no transfer syntax: implicit VR read
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    volume = load_volume(path)
    assert volume.is_colour and np.array_equal(volume.voxels.reshape(reference.shape), reference)

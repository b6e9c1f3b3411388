"""Files the loader refused or misread: 12-bit lossy JPEG, a truncated JPEG 2000 file, a Modality
LUT Sequence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut

from app.io.errors import LoadError
from app.io.loader import load_volume

pydicom_data = pytest.importorskip("pydicom.data")


def test_12_bit_lossy_jpeg_decodes_like_simpleitk():
    sitk = pytest.importorskip("SimpleITK")
    path = pydicom_data.get_testdata_file("JPEG-lossy.dcm")  # 1.2.840.10008.1.2.4.51, 12-bit
    volume = load_volume(path)
    reference = sitk.GetArrayFromImage(sitk.ReadImage(path))
    assert volume.voxels.shape == reference.shape == (1, 1024, 256)
    assert np.array_equal(volume.voxels, reference)


@pytest.mark.parametrize("cut", [1000, 3000])
def test_truncated_jpeg_2000_says_truncated(tmp_path, cut):
    data = Path(pydicom_data.get_testdata_file("MR_small_jp2klossless.dcm")).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:-cut])
    with pytest.raises(LoadError, match="truncated") as raised:
        load_volume(path)
    assert "no pixel data" not in str(raised.value)


def test_modality_lut_sequence_is_applied():
    path = pydicom_data.get_testdata_file("mlut_18.dcm")
    dataset = pydicom.dcmread(path)
    volume = load_volume(path)
    assert np.array_equal(volume.voxels[0], apply_modality_lut(dataset.pixel_array, dataset))
    assert any("Modality LUT Sequence applied" in w for w in volume.load_warnings)


def test_a_broken_modality_lut_is_reported_not_ignored(tmp_path):
    dataset = pydicom.dcmread(pydicom_data.get_testdata_file("mlut_18.dcm"))
    dataset.ModalityLUTSequence[0].LUTDescriptor = [4096, 0, 16]
    dataset.ModalityLUTSequence[0].LUTData = dataset.ModalityLUTSequence[0].LUTData[:10]
    dataset.save_as(tmp_path / "bad.dcm")
    volume = load_volume(tmp_path / "bad.dcm")
    assert any("Modality LUT Sequence not applied" in w for w in volume.load_warnings)
    assert np.array_equal(volume.voxels[0], dataset.pixel_array)

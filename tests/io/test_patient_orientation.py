"""Projection images (CR, DX) carry no ImageOrientationPatient, only PatientOrientation (0020,0020):
the direction of the rows and of the columns in patient letters. The viewer's edge letters come
from the geometry, so the loader must take them from there rather than assume an axial slice."""

import numpy as np
import pydicom
import pytest

from app.core.planes import Plane, extract_slice
from app.io.loader import load_volume
from tests.io.series_factory import write_slice


def _radiograph(tmp_path, patient_orientation):
    pixels = np.arange(6 * 8, dtype=np.uint16).reshape(6, 8)
    path = write_slice(tmp_path / "cr.dcm", pixels, (0.0, 0.0, 0.0), spacing=(0.2, 0.2))
    ds = pydicom.dcmread(path)
    del ds.ImagePositionPatient
    del ds.ImageOrientationPatient
    ds.Modality = "CR"
    if patient_orientation is not None:
        ds.PatientOrientation = patient_orientation
    ds.save_as(path)
    return path, pixels


def test_chest_pa_rows_towards_left_columns_towards_feet(tmp_path):
    path, pixels = _radiograph(tmp_path, ["L", "F"])
    volume = load_volume(path)
    direction = volume.geometry.direction
    assert np.allclose(direction[:, 0], [1, 0, 0])  # along a row: towards the patient's left
    assert np.allclose(direction[:, 1], [0, 0, -1])  # down a column: towards the feet
    assert volume.geometry.orientation_code() == "LIP"
    assert any("PatientOrientation" in warning for warning in volume.load_warnings)
    # Shown as stored in the coronal panel (head up, patient's left on the screen's right).
    cut = extract_slice(volume, Plane.CORONAL, float(volume.geometry.origin_lps_mm[1]))
    assert np.array_equal(cut.pixels, pixels - 1024.0)


def test_lateral_rows_towards_posterior(tmp_path):
    path, _ = _radiograph(tmp_path, ["P", "F"])
    assert load_volume(path).geometry.orientation_code() == "PIR"


@pytest.mark.parametrize("value", [None, ["L", "L"], ["X", "Y"]])
def test_without_a_usable_patient_orientation_axial_is_assumed_and_said(tmp_path, value):
    path, _ = _radiograph(tmp_path, value)
    volume = load_volume(path)
    assert volume.geometry.orientation_code() == "LPS"
    assert any("axial orientation assumed" in warning for warning in volume.load_warnings)


def test_monochrome1_is_recorded_for_the_display(tmp_path):
    path, _ = _radiograph(tmp_path, ["L", "F"])
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(path)
    volume = load_volume(path)
    assert volume.metadata["PhotometricInterpretation"] == "MONOCHROME1"
    assert volume.voxels[0, 0, 0] == -1024.0  # stored value x slope + intercept, not inverted

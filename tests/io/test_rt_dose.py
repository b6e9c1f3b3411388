"""RT Dose: one top-level position plus a Grid Frame Offset Vector, scaled by DoseGridScaling."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from app.io.loader import load_volume

pydicom_data = pytest.importorskip("pydicom.data")


@pytest.mark.parametrize("name", ["rtdose.dcm", "rtdose_rle.dcm", "rtdose_expb.dcm"])
def test_dose_grid_planes_scaling_and_units(name):
    path = pydicom_data.get_testdata_file(name)
    header = pydicom.dcmread(path)
    volume = load_volume(path)
    # 15 planes 5 mm apart from the top-level position (they collapsed to 1 mm steps before).
    assert volume.voxels.shape == (15, 10, 10)
    assert volume.geometry.spacing_mm[2] == pytest.approx(5.0)
    last = volume.geometry.lps_from_index([0, 0, 14])
    assert last == pytest.approx(np.asarray(header.ImagePositionPatient, float) + [0, 0, 70.0])
    stored = header.pixel_array.astype(float)
    assert np.allclose(volume.voxels, stored * float(header.DoseGridScaling), rtol=1e-6)
    assert volume.units == "relative dose"
    assert any("DoseGridScaling 1e-06" in warning for warning in volume.load_warnings)

"""Exported values read back as they were, whatever their magnitude: an ADC map in m^2/s
(values near 1e-9) written as a Secondary Capture series with a Modality LUT."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from app.core.provenance import Provenance
from app.core.volume import Volume
from app.io.dicom_export import write_derived_series
from app.io.loader import load_volume
from tests.io.export_helpers import oblique_geometry


def test_a_map_of_tiny_values_keeps_its_rescale_slope(tmp_path):
    adc = np.random.default_rng(1).uniform(0, 3e-9, (4, 5, 6)).astype(np.float32)  # m^2/s
    volume = Volume(adc, oblique_geometry(), "", name="adc", provenance=Provenance("adc-gen", "1"))
    files = write_derived_series(volume, tmp_path / "adc")
    assert float(pydicom.dcmread(files[0]).RescaleSlope) > 0
    back = load_volume(str(tmp_path / "adc"))
    assert back.geometry.allclose(volume.geometry)
    assert np.allclose(back.voxels, adc, rtol=0, atol=3e-9 / 32000)  # within one slope step
    assert float(back.voxels.max()) == pytest.approx(float(adc.max()), rel=1e-3)

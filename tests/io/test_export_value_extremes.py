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


@pytest.mark.parametrize("high", [1.0, 3e-9])
def test_a_window_narrower_than_one_unit_is_a_valid_exact_window(tmp_path, high):
    from tests.io.export_helpers import dciodvfy_errors

    values = np.random.default_rng(2).uniform(0, high, (4, 5, 6)).astype(np.float32)  # a probability map
    volume = Volume(values, oblique_geometry(), "", name="p", provenance=Provenance("prob-gen", "1"))
    files = write_derived_series(volume, tmp_path / "p")
    dataset = pydicom.dcmread(files[0])
    assert 0 < float(dataset.WindowWidth) < 1 and dataset.VOILUTFunction == "LINEAR_EXACT"
    assert float(dataset.WindowCenter) == pytest.approx(high / 2, rel=0.1)
    assert dciodvfy_errors(files[0]) == []


def test_values_no_reader_would_rescale_are_refused_before_writing(tmp_path):
    from app.io.dicom_export import ExportError

    huge = (np.random.default_rng(3).normal(size=(4, 5, 6)) * 1e30).astype(np.float32)
    volume = Volume(huge, oblique_geometry(), "CT", name="huge", provenance=Provenance("g", "1"))
    with pytest.raises(ExportError, match="export it as NIfTI"):
        write_derived_series(volume, tmp_path / "huge")
    assert not (tmp_path / "huge").exists()


def test_a_boolean_mask_is_exported_as_zero_and_one(tmp_path):
    # A mask volume (a threshold, a region) came with numpy's bool: the export stopped with a
    # TypeError from numpy's percentile (bool subtraction). It is written as 0 / 1.
    mask = np.zeros((4, 5, 6), bool)
    mask[1:3, 2:4, 1:5] = True
    volume = Volume(mask, oblique_geometry(), "MR", name="mask", provenance=Provenance("mask-gen", "1"))
    write_derived_series(volume, tmp_path / "mask")
    back = load_volume(str(tmp_path / "mask"))
    assert np.array_equal(back.voxels, mask.astype(back.voxels.dtype))
    assert back.geometry.allclose(volume.geometry)

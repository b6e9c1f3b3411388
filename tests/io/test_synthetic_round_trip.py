"""A synthesized volume exported as DICOM is still synthetic when it is read back."""

import numpy as np

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io.dicom_export import write_derived_series
from app.io.loader import load_volume


def _synthetic_volume() -> Volume:
    voxels = np.arange(4 * 6 * 5, dtype=np.int16).reshape(4, 6, 5)
    geometry = Geometry(np.array([-10.0, 20.0, 30.0]), np.array([0.8, 0.9, 2.0]), np.eye(3))
    provenance = Provenance("mr-denoise", "1.2", task="denoising", weights_sha256="ab" * 32)
    return Volume(voxels, geometry, modality="MR", provenance=provenance)


def test_derived_series_reads_back_as_synthetic_with_its_plugin(tmp_path):
    original = _synthetic_volume()
    write_derived_series(original, tmp_path / "out")
    loaded = load_volume(tmp_path / "out")
    assert loaded.is_synthetic
    assert loaded.provenance.plugin_name == "mr-denoise"
    assert loaded.provenance.plugin_version == "1.2"
    assert loaded.provenance.task == "denoising"
    assert np.array_equal(loaded.voxels, original.voxels)
    assert loaded.geometry.allclose(original.geometry)


def test_acquired_series_export_reads_back_as_acquired(tmp_path):
    acquired = _synthetic_volume()
    acquired.provenance = None
    write_derived_series(acquired, tmp_path / "out")
    assert not load_volume(tmp_path / "out").is_synthetic

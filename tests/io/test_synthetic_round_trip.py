"""A synthesized volume exported as DICOM is still synthetic when it is read back."""

import numpy as np
import pydicom

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


def test_reexported_series_keeps_the_full_provenance(tmp_path):
    # Derived series -> read back -> exported again: the hash, device, seed and creation time
    # must survive, not become "weights sha256 ; device ; seed None; <time of the re-export>".
    original = _synthetic_volume()
    original.provenance = Provenance(
        "mr-denoise", "1.2", task="denoising", weights_sha256="ab" * 32, device="cuda", seed=7,
        created_utc="2026-01-02T03:04:05+00:00",
    )  # fmt: skip
    write_derived_series(original, tmp_path / "first")
    loaded = load_volume(tmp_path / "first").provenance
    assert (loaded.weights_sha256, loaded.device, loaded.seed) == ("ab" * 8, "cuda", 7)
    assert loaded.created_utc == "2026-01-02T03:04:05+00:00"
    write_derived_series(load_volume(tmp_path / "first"), tmp_path / "second")
    again = pydicom.dcmread(next((tmp_path / "second").glob("*.dcm"))).DerivationDescription
    assert again == original.provenance.derivation_description()


def test_series_from_other_software_is_synthetic_with_an_unknown_generator(tmp_path):
    original = _synthetic_volume()
    paths = write_derived_series(original, tmp_path / "out")
    for path in paths:
        dataset = pydicom.dcmread(path)
        dataset.DerivationDescription = "GAN output of vendor X"
        dataset.save_as(path)
    loaded = load_volume(tmp_path / "out").provenance
    assert loaded.plugin_name == "unknown generator" and loaded.seed is None

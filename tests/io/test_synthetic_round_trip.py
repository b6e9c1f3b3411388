"""A synthesized volume exported as DICOM is still synthetic when it is read back."""

import numpy as np
import pydicom
import pytest
from pydicom.uid import ImplicitVRLittleEndian

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io.dicom_export import write_derived_series
from app.io.dicom_provenance import CREATOR_TAG, JSON_TAG, PRIVATE_CREATOR
from app.io.dicom_provenance import TAGS as PROVENANCE_TAGS
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


def _dated_volume() -> Volume:
    """A synthetic volume whose provenance has everything the description line holds."""
    volume = _synthetic_volume()
    volume.provenance = Provenance(
        "mr-denoise", "1.2", task="denoising", weights_sha256="ab" * 32, device="cuda", seed=7,
        created_utc="2026-01-02T03:04:05+00:00",
    )  # fmt: skip
    return volume


def test_reexported_series_keeps_the_full_provenance(tmp_path):
    # Derived series -> read back -> exported again: the hash, device, seed and creation time
    # must survive, not become "weights sha256 ; device ; seed None; <time of the re-export>".
    original = _dated_volume()
    write_derived_series(original, tmp_path / "first")
    loaded = load_volume(tmp_path / "first").provenance
    assert loaded == original.provenance  # the whole record: the full hash, not the line's 16 digits
    write_derived_series(load_volume(tmp_path / "first"), tmp_path / "second")
    again = pydicom.dcmread(next((tmp_path / "second").glob("*.dcm"))).DerivationDescription
    assert again == original.provenance.derivation_description()
    assert load_volume(tmp_path / "second").provenance == original.provenance


def _without_record(paths) -> None:
    """What SynthView wrote before the provenance record: the same files without the block."""
    for path in paths:
        dataset = pydicom.dcmread(path)
        for tag in PROVENANCE_TAGS:
            del dataset[tag]
        dataset.save_as(path)


def test_the_record_carries_what_the_description_line_cannot(tmp_path):
    original = _synthetic_volume()
    original.provenance = Provenance(
        "mr-denoise", "1.2", task="denoising", weights_sha256="ab" * 32, device="cpu", seed=3,
        parameters={"patch_size": [64, 64], "messages": ["input clipped; 2 % of voxels"]},
        duration_s=1.25, source_description="T1; axial (sequence 3)",
    )  # fmt: skip
    paths = write_derived_series(original, tmp_path / "out")
    dataset = pydicom.dcmread(paths[0])
    assert dataset[CREATOR_TAG].value == PRIVATE_CREATOR and dataset[JSON_TAG].VR == "UT"
    assert load_volume(tmp_path / "out").provenance == original.provenance


def test_a_series_written_before_the_record_is_read_from_its_description(tmp_path):
    original = _dated_volume()
    paths = write_derived_series(original, tmp_path / "old")
    _without_record(paths)
    loaded = load_volume(tmp_path / "old").provenance
    assert (loaded.plugin_name, loaded.plugin_version, loaded.task) == ("mr-denoise", "1.2", "denoising")
    assert (loaded.weights_sha256, loaded.device, loaded.seed) == ("ab" * 8, "cuda", 7)  # the line's prefix
    assert loaded.created_utc == "2026-01-02T03:04:05+00:00"
    write_derived_series(load_volume(tmp_path / "old"), tmp_path / "again")
    again = pydicom.dcmread(next((tmp_path / "again").glob("*.dcm"))).DerivationDescription
    assert again == original.provenance.derivation_description()


@pytest.mark.parametrize(
    "creator, text",
    [
        ("OTHER VENDOR", None),  # another creator's block in the same place: not ours
        (PRIVATE_CREATOR, "{not json"),
        (PRIVATE_CREATOR, "[" * 100_000 + "]" * 100_000),  # nested past the parser's recursion limit
        (PRIVATE_CREATOR, '{"synthetic": true, "plugin_name": "x", "plugin_version": 1}'),
        (PRIVATE_CREATOR, '{"synthetic": true, "plugin_name": "x", "plugin_version": "1", "seed": "7"}'),
        (PRIVATE_CREATOR, '{"synthetic": true, "plugin_version": "1"}'),
        (PRIVATE_CREATOR, '["synthetic"]'),
    ],
)
def test_a_foreign_or_broken_record_falls_back_to_the_description(tmp_path, creator, text):
    paths = write_derived_series(_synthetic_volume(), tmp_path / "out")
    for path in paths:
        dataset = pydicom.dcmread(path)
        dataset[CREATOR_TAG].value = creator
        if text is not None:
            dataset[JSON_TAG].value = text
        dataset.save_as(path)
    loaded = load_volume(tmp_path / "out")
    assert loaded.is_synthetic and loaded.provenance.plugin_name == "mr-denoise"
    assert loaded.provenance.weights_sha256 == "ab" * 8  # from the line, not the record


def test_the_record_survives_a_transcode_to_implicit_vr(tmp_path):
    original = _synthetic_volume()
    paths = write_derived_series(original, tmp_path / "out")
    for path in paths:  # an archive's implicit VR copy: the private element comes back as UN
        dataset = pydicom.dcmread(path)
        dataset.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        dataset.save_as(path, implicit_vr=True, little_endian=True)
    assert load_volume(tmp_path / "out").provenance == original.provenance


def test_a_record_without_the_synthetic_marking_does_not_make_a_series_synthetic(tmp_path):
    acquired = _synthetic_volume()
    paths = write_derived_series(acquired, tmp_path / "out")
    for path in paths:
        dataset = pydicom.dcmread(path)
        dataset.SyntheticData = "NO"
        dataset.DerivationDescription = "resampled"
        del dataset.DerivationCodeSequence
        dataset.save_as(path)
    assert load_volume(tmp_path / "out").provenance is None


def test_series_from_other_software_is_synthetic_with_an_unknown_generator(tmp_path):
    original = _synthetic_volume()
    paths = write_derived_series(original, tmp_path / "out")
    _without_record(paths)  # other software writes no SynthView record
    for path in paths:
        dataset = pydicom.dcmread(path)
        dataset.DerivationDescription = "GAN output of vendor X"
        dataset.save_as(path)
    loaded = load_volume(tmp_path / "out").provenance
    assert loaded.plugin_name == "unknown generator" and loaded.seed is None

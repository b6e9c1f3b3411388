"""Derived DICOM series export: validity (dciodvfy), geometry and values re-read by pydicom
and dcm2niix, synthetic marks, UIDs, source references and de-identification."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pydicom
import pytest

from app.core.volume import Geometry, Volume
from app.io.deidentify import identifying_values
from app.io.dicom_export import ExportError, choose_stored_values, write_derived_nifti, write_derived_series
from app.io.nifti import load_nifti, sidecar_path
from tests.io.export_helpers import (
    ct_volume,
    dciodvfy_errors,
    geometry_from_dicom_files,
    oblique_geometry,
    source_header,
    synthetic_mr_volume,
    tool_path,
)


@pytest.fixture(scope="module")
def synthetic_series(tmp_path_factory):
    volume = synthetic_mr_volume()
    return volume, write_derived_series(volume, tmp_path_factory.mktemp("synth"))


def test_synthetic_series_passes_dciodvfy(synthetic_series):
    _, paths = synthetic_series
    assert dciodvfy_errors(paths[0]) == []
    assert dciodvfy_errors(paths[-1]) == []


def test_ct_series_passes_dciodvfy_and_is_lossless(tmp_path):
    volume = ct_volume()
    paths = write_derived_series(volume, tmp_path)
    assert dciodvfy_errors(paths[0]) == []
    dataset = pydicom.dcmread(paths[0])
    assert dataset.SOPClassUID == pydicom.uid.CTImageStorage
    assert float(dataset.RescaleSlope) == 1.0 and float(dataset.RescaleIntercept) == 0.0
    geometry, voxels = geometry_from_dicom_files(paths)
    assert geometry.allclose(volume.geometry, atol_mm=1e-4)
    np.testing.assert_array_equal(voxels, volume.voxels)


def test_unknown_modality_is_secondary_capture_without_errors(tmp_path):
    volume = synthetic_mr_volume()
    volume = Volume(volume.voxels, volume.geometry, modality="", provenance=volume.provenance)
    paths = write_derived_series(volume, tmp_path)
    assert pydicom.dcmread(paths[0]).Modality == "OT"
    assert dciodvfy_errors(paths[0]) == []


def test_synthetic_marks(synthetic_series):
    volume, paths = synthetic_series
    dataset = pydicom.dcmread(paths[0])
    assert list(dataset.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert dataset[0x0008, 0x001C].value == "YES"
    assert dataset.SeriesDescription.startswith("SYNTHETIC")
    assert "pix2pix-t1t2" in dataset.DerivationDescription
    meanings = [item.CodeMeaning for item in dataset.DerivationCodeSequence]
    assert "Artificial Intelligence" in meanings
    # Standard codes only (a private scheme is a validator warning); the plugin is in the text.
    assert {item.CodingSchemeDesignator for item in dataset.DerivationCodeSequence} == {"DCM"}
    assert "pix2pix-t1t2 1.2.0" in dataset.DerivationDescription
    assert dataset.Modality == "MR"


def test_geometry_and_values_reread_by_pydicom(synthetic_series):
    volume, paths = synthetic_series
    geometry, voxels = geometry_from_dicom_files(paths)
    assert geometry.allclose(volume.geometry, atol_mm=1e-4)
    dataset = pydicom.dcmread(paths[0])
    # MR: no Modality LUT (the MR IOD has none); floats spanning 100+ units are stored rounded.
    assert "RescaleSlope" not in dataset and "RealWorldValueMappingSequence" not in dataset
    assert np.max(np.abs(voxels - volume.voxels)) <= 0.5 + 1e-6
    # PixelSpacing is row spacing (along j) then column spacing (along i).
    row_spacing, column_spacing = (float(v) for v in pydicom.dcmread(paths[0]).PixelSpacing)
    assert (row_spacing, column_spacing) == pytest.approx((0.9, 0.8))


def test_uids_are_new_and_consistent(synthetic_series):
    _, paths = synthetic_series
    datasets = [pydicom.dcmread(p) for p in paths]
    assert len({d.SOPInstanceUID for d in datasets}) == len(paths)
    assert len({d.SeriesInstanceUID for d in datasets}) == 1
    assert len({d.StudyInstanceUID for d in datasets}) == 1
    assert datasets[0].file_meta.MediaStorageSOPInstanceUID == datasets[0].SOPInstanceUID


def test_dcm2niix_reads_same_geometry(synthetic_series, tmp_path):
    volume, paths = synthetic_series
    result = subprocess.run(
        [tool_path("dcm2niix"), "-z", "n", "-f", "out", "-o", str(tmp_path), str(paths[0].parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    niftis = sorted(tmp_path.glob("out*.nii"))
    assert len(niftis) == 1, result.stdout
    reread = load_nifti(niftis[0])
    # dcm2niix may flip rows to its own convention: compare world positions of voxel values.
    assert reread.voxels.shape == volume.voxels.shape
    corners = np.array([[0, 0, 0], [6, 0, 0], [0, 5, 0], [0, 0, 4], [6, 5, 4]], float)
    for ijk in corners:
        lps = volume.geometry.lps_from_index(ijk)
        reread_ijk = reread.geometry.index_from_lps(lps)
        np.testing.assert_allclose(reread_ijk, np.round(reread_ijk), atol=1e-3)
        # MR floats are stored rounded to integers (no Modality LUT in the MR IOD).
        assert reread.value_at_index(reread_ijk) == pytest.approx(volume.value_at_index(ijk), abs=0.51)
    np.testing.assert_allclose(
        sorted(reread.geometry.spacing_mm), sorted(volume.geometry.spacing_mm), atol=1e-4
    )


def _write_source_series(folder) -> tuple[pydicom.Dataset, list]:
    """An 'acquired' MR series on the same grid as the synthetic volume."""
    header = source_header()
    acquired = synthetic_mr_volume()
    acquired = Volume(acquired.voxels, acquired.geometry, modality="MR")
    return header, write_derived_series(acquired, folder, source=header, keep_study_uid=True)


def test_keep_study_uid_and_source_references(tmp_path):
    header, source_paths = _write_source_series(tmp_path / "source")
    source_datasets = [pydicom.dcmread(p) for p in source_paths]
    paths = write_derived_series(
        synthetic_mr_volume(), tmp_path / "out", source=tmp_path / "source", keep_study_uid=True
    )
    dataset = pydicom.dcmread(paths[2])
    assert dataset.StudyInstanceUID == header.StudyInstanceUID
    assert dataset.PatientName == "DOE^JANE"
    assert dataset.SeriesInstanceUID != source_datasets[0].SeriesInstanceUID
    assert dataset.FrameOfReferenceUID == header.FrameOfReferenceUID
    related = dataset.RelatedSeriesSequence[0]
    assert related.SeriesInstanceUID == source_datasets[0].SeriesInstanceUID
    # The source slice at the same position is referenced.
    referenced = dataset.SourceImageSequence[0].ReferencedSOPInstanceUID
    same_position = [d for d in source_datasets if d.ImagePositionPatient == dataset.ImagePositionPatient]
    assert referenced == same_position[0].SOPInstanceUID
    assert dciodvfy_errors(paths[2]) == []


def test_new_study_by_default_with_source(tmp_path):
    header = source_header()
    paths = write_derived_series(synthetic_mr_volume(), tmp_path, source=header)
    dataset = pydicom.dcmread(paths[0])
    assert dataset.StudyInstanceUID != header.StudyInstanceUID
    assert dataset.PatientID == header.PatientID


def test_deidentified_export_has_no_identifying_values(tmp_path):
    header = source_header()
    source_values = set(identifying_values(header).values())
    source_uids = {header.StudyInstanceUID, header.SeriesInstanceUID, header.FrameOfReferenceUID}
    paths = write_derived_series(
        synthetic_mr_volume(), tmp_path, source=header, keep_study_uid=True, deidentify=True
    )
    datasets = [pydicom.dcmread(p) for p in paths]
    for dataset in datasets:
        text_values = {str(element.value) for element in dataset.iterall() if element.VR != "OW"}
        assert not (source_values & text_values), source_values & text_values
        assert not (source_uids & text_values)
        assert dataset.PatientIdentityRemoved == "YES"
        assert "InstitutionName" not in dataset
    # Still one consistent study and series after UID replacement.
    assert len({d.StudyInstanceUID for d in datasets}) == 1
    assert len({d.SeriesInstanceUID for d in datasets}) == 1
    assert datasets[0][0x0008, 0x001C].value == "YES"
    assert dciodvfy_errors(paths[0]) == []


def test_float_values_get_a_slope_integer_values_do_not():
    assert choose_stored_values(np.array([[[-1000, 3000]]], np.int16)).lossless
    shifted = choose_stored_values(np.array([[[0.0, 60000.0]]]))
    assert shifted.slope == 1.0 and shifted.intercept != 0.0
    assert not choose_stored_values(np.array([[[0.1, 0.25]]])).lossless
    # MR floats: rounded when they span 100 units or more, else scaled (Real World Value Mapping).
    assert choose_stored_values(np.array([[[0.5, 180.25]]]), round_wide_floats=True).lossless
    assert not choose_stored_values(np.array([[[0.5, 80.25]]]), round_wide_floats=True).lossless


def test_bad_input_gives_clear_errors(tmp_path):
    volume = synthetic_mr_volume()
    with pytest.raises(ExportError, match="NaN"):
        write_derived_series(volume.with_voxels(np.full(volume.voxels.shape, np.nan, np.float32)), tmp_path)
    with pytest.raises(ExportError, match="source"):
        write_derived_series(volume, tmp_path, keep_study_uid=True)
    not_dicom = tmp_path / "notes.txt"
    not_dicom.write_text("hello")
    with pytest.raises(ExportError, match="not a readable DICOM"):
        write_derived_series(volume, tmp_path / "out", source=not_dicom)


def test_nifti_export_has_provenance_sidecar(tmp_path):
    volume = synthetic_mr_volume()
    path = write_derived_nifti(volume, tmp_path / "synth.nii.gz")
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["Synthetic"] is True
    assert sidecar["provenance"]["plugin_name"] == "pix2pix-t1t2"
    reread = load_nifti(path)
    assert reread.is_synthetic
    assert reread.geometry.allclose(volume.geometry)
    assert isinstance(reread.geometry, Geometry)


def test_source_folder_with_several_series_picks_the_one_on_the_grid(tmp_path):
    header, source_paths = _write_source_series(tmp_path / "study" / "matching")
    other = ct_volume()
    other = Volume(np.zeros((9, 5, 6), np.int16), other.geometry, modality="CT")
    write_derived_series(other, tmp_path / "study" / "bigger_other", source=source_header())
    paths = write_derived_series(synthetic_mr_volume(), tmp_path / "out", source=tmp_path / "study")
    related = pydicom.dcmread(paths[0]).RelatedSeriesSequence[0]
    assert related.SeriesInstanceUID == pydicom.dcmread(source_paths[0]).SeriesInstanceUID


def test_volume_loaded_from_dicom_is_its_own_source(tmp_path):
    from app.io.loader import load_volume

    _, source_paths = _write_source_series(tmp_path / "source")
    loaded = load_volume(tmp_path / "source")
    paths = write_derived_series(loaded, tmp_path / "out")
    dataset = pydicom.dcmread(paths[0])
    assert dataset.PatientName == "DOE^JANE"
    assert (
        dataset.RelatedSeriesSequence[0].SeriesInstanceUID
        == pydicom.dcmread(source_paths[0]).SeriesInstanceUID
    )
    geometry, voxels = geometry_from_dicom_files(paths)
    assert geometry.allclose(loaded.geometry, atol_mm=1e-4)


def test_a_generator_output_refers_to_the_series_it_was_made_from(tmp_path):
    _, source_paths = _write_source_series(tmp_path / "source")
    output = synthetic_mr_volume()
    output.derived_from_series = str(tmp_path / "source")  # what the runtime records
    dataset = pydicom.dcmread(write_derived_series(output, tmp_path / "out")[0])
    assert dataset.PatientName == "DOE^JANE" and dataset.SyntheticData == "YES"
    related = dataset.RelatedSeriesSequence[0].SeriesInstanceUID
    assert related == pydicom.dcmread(source_paths[0]).SeriesInstanceUID


def test_left_handed_volume_keeps_every_voxel_at_its_world_place(tmp_path):
    """k running against i x j (slices stored feet-last): positions, not order, carry geometry."""
    from app.io.loader import load_volume

    rng = np.random.default_rng(5)
    geometry = Geometry(np.array([3.0, -4.0, 50.0]), np.array([1.0, 1.2, 3.0]), np.diag([1.0, 1.0, -1.0]))
    volume = Volume(rng.integers(0, 1000, size=(4, 5, 6)).astype(np.int16), geometry, modality="CT")
    paths = write_derived_series(volume, tmp_path)
    assert dciodvfy_errors(paths[0]) == []
    reread = load_volume(tmp_path)
    k, j, i = np.indices(volume.voxels.shape).reshape(3, -1)
    world = geometry.lps_from_index(np.column_stack([i, j, k]))
    reread_ijk = np.rint(reread.geometry.index_from_lps(world)).astype(int)
    np.testing.assert_array_equal(
        reread.voxels[reread_ijk[:, 2], reread_ijk[:, 1], reread_ijk[:, 0]], volume.voxels[k, j, i]
    )


def test_refuses_to_mix_two_series_in_one_folder(tmp_path):
    write_derived_series(ct_volume(), tmp_path)
    with pytest.raises(ExportError, match="already holds a DICOM series"):
        write_derived_series(ct_volume(), tmp_path)
    (tmp_path / "notes.txt").write_text("not a series file")
    with pytest.raises(ExportError, match="new or empty folder"):
        write_derived_series(ct_volume(), tmp_path, replace=True)


def test_laterality_follows_the_source_so_an_unpaired_body_part_validates(tmp_path):
    # General Series Laterality is type 2C (paired body parts only): an empty value beside
    # BodyPartExamined BRAIN is a dciodvfy error, as every export of the demo study was.
    header = source_header()
    header.BodyPartExamined = "BRAIN"
    paths = write_derived_series(synthetic_mr_volume(), tmp_path / "brain", source=header)
    assert "Laterality" not in pydicom.dcmread(paths[0])
    assert dciodvfy_errors(paths[0]) == []
    header.BodyPartExamined = "KNEE"
    header.Laterality = "L"
    paths = write_derived_series(synthetic_mr_volume(), tmp_path / "knee", source=header)
    assert pydicom.dcmread(paths[0]).Laterality == "L"
    assert dciodvfy_errors(paths[0]) == []


def test_deidentified_export_drops_descriptions_that_name_the_patient(tmp_path):
    header = source_header()
    header.StudyDescription = "MR head DOE JANE follow-up"
    header.SeriesDescription = "T1 DOE JANE"
    acquired = Volume(
        synthetic_mr_volume().voxels, oblique_geometry(), modality="MR", name="DOE_JANE_t1.nii.gz"
    )
    paths = write_derived_series(
        acquired, tmp_path / "out", source=header, keep_study_uid=True, deidentify=True
    )
    dataset = pydicom.dcmread(paths[0])
    text = str(dataset)
    assert "DOE" not in text and "JANE" not in text
    assert dataset.SeriesDescription.startswith("DERIVED")
    # A synthetic volume keeps its SYNTHETIC plugin label: it names a generator, not a patient.
    synthetic = write_derived_series(
        synthetic_mr_volume(), tmp_path / "synth", source=header, deidentify=True
    )
    assert pydicom.dcmread(synthetic[0]).SeriesDescription == "SYNTHETIC pix2pix-t1t2 1.2.0"

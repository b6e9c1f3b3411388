"""The demo study is a well-formed, deterministic DICOM series; NIfTI loads in LPS."""

from __future__ import annotations

import os
import stat

import numpy as np
import pydicom

from app.io.demo_study import build_demo_study
from app.io.loader import load_volume


def test_demo_series_is_the_template_in_lps(demo_volume, mni_t1_nifti_path):
    template = load_volume(mni_t1_nifti_path)  # RAS on disk -> LPS Volume
    assert demo_volume.modality == "MR"
    assert demo_volume.voxels.dtype == np.int16
    assert demo_volume.geometry.orientation_code() == "LPS"
    # Same patient position for the same voxel: world LPS of a voxel in both volumes.
    for lps in ([0.0, 0.0, 0.0], [-40.0, 25.0, 10.0], [30.0, -50.0, -20.0]):
        ours = demo_volume.value_at_lps(lps)
        theirs = template.value_at_lps(lps)
        assert ours == 4 * theirs
    assert demo_volume.load_warnings == ()


def test_demo_headers_are_consistent(demo_dicom_dir):
    files = sorted(demo_dicom_dir.glob("*.dcm"))
    first, last = (pydicom.dcmread(p, stop_before_pixels=True) for p in (files[0], files[-1]))
    assert first.SOPClassUID == pydicom.uid.MRImageStorage
    assert first.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "PatientID"):
        assert first[key].value == last[key].value
    assert first.SOPInstanceUID != last.SOPInstanceUID
    assert [float(v) for v in first.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert float(last.ImagePositionPatient[2]) - float(first.ImagePositionPatient[2]) == len(files) - 1


def test_demo_build_is_deterministic(tmp_path, demo_dicom_dir):
    umask = os.umask(0o022)
    try:
        rebuilt = build_demo_study(tmp_path / "again")
    finally:
        os.umask(umask)
    for name in ("IM0001.dcm", "IM0100.dcm"):
        assert (rebuilt / name).read_bytes() == (demo_dicom_dir / name).read_bytes()
    # Readable by the other users of a shared checkout (the temporary build folder was 0700).
    assert stat.S_IMODE(rebuilt.stat().st_mode) == 0o755


def test_nifti_ras_becomes_lps(mni_t1_nifti_path):
    volume = load_volume(mni_t1_nifti_path)
    # The template's affine is RAS identity at (-98, -134, -72): +i is Right in LPS terms.
    assert volume.geometry.orientation_code() == "RAS"
    assert np.allclose(volume.geometry.origin_lps_mm, [98, 134, -72])
    assert volume.voxels.shape == (189, 233, 197)


def test_an_acquired_volume_saved_over_a_synthetic_one_does_not_inherit_its_sidecar(tmp_path):
    from app.core.provenance import Provenance
    from app.core.volume import Geometry, Volume
    from app.io.nifti import load_nifti, save_nifti, sidecar_path

    voxels = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    synthetic = Volume(
        voxels, Geometry.identity(), "MR", provenance=Provenance(plugin_name="p", plugin_version="1")
    )
    path = save_nifti(synthetic, tmp_path / "image.nii.gz")
    assert sidecar_path(path).exists() and load_nifti(path).is_synthetic
    save_nifti(Volume(voxels, Geometry.identity()), path)  # no modality, no provenance: no sidecar
    assert not sidecar_path(path).exists() and not load_nifti(path).is_synthetic


def test_a_synthetic_nifti_without_its_sidecar_still_loads_as_synthetic(tmp_path):
    from app.core.provenance import Provenance
    from app.core.volume import Geometry, Volume
    from app.io.nifti import load_nifti, save_nifti, sidecar_path

    voxels = np.ones((2, 3, 4), np.float32)
    path = save_nifti(
        Volume(voxels, Geometry.identity(), "CT", provenance=Provenance("mr2ct", "2.0")),
        tmp_path / "sct.nii.gz",
    )
    sidecar_path(path).unlink()  # only the image was copied on
    volume = load_nifti(path)
    assert volume.is_synthetic and volume.provenance.label().startswith("SYNTHETIC — unknown generator")


def test_a_synthesized_nifti_keeps_its_source_patient_and_study(tmp_path):
    """Opened again from NIfTI, it was filed under '(no patient)/(study)' in the Studies tree."""
    from app.core.orientation_phantom import orientation_phantom
    from app.core.provenance import Provenance
    from app.io.nifti import load_nifti, save_nifti

    source = {
        "PatientName": "Doe^Jane",
        "PatientID": "P1",
        "StudyInstanceUID": "1.2.3",
        "StudyDescription": "MR brain",
    }
    synthesized = orientation_phantom()
    synthesized.provenance = Provenance("mr-t1-denoise", "1.0.0")
    synthesized.metadata.update({**source, "SeriesInstanceUID": "9.9.9"})
    loaded = load_nifti(save_nifti(synthesized, tmp_path / "out.nii.gz"))
    assert {key: loaded.metadata.get(key) for key in source} == source
    assert "SeriesInstanceUID" not in loaded.metadata  # a new series: not the input's identity
    acquired = orientation_phantom()
    acquired.metadata.update(source)
    assert "PatientName" not in load_nifti(save_nifti(acquired, tmp_path / "plain.nii.gz")).metadata


def test_a_de_identified_nifti_export_names_no_patient(tmp_path):
    import json

    from app.core.orientation_phantom import orientation_phantom
    from app.core.provenance import Provenance
    from app.io.dicom_export import write_derived_nifti

    synthesized = orientation_phantom()
    synthesized.provenance = Provenance("mr-t1-denoise", "1.0.0")
    synthesized.metadata.update(PatientName="Doe^Jane", PatientID="P1", StudyDescription="MR brain")
    path = write_derived_nifti(synthesized, tmp_path / "deid.nii.gz", deidentify=True)
    sidecar = (tmp_path / "deid.json").read_text() if (tmp_path / "deid.json").exists() else ""
    sidecar = sidecar or next(tmp_path.glob("*.json")).read_text()
    assert "Doe^Jane" not in sidecar and "P1" not in json.loads(sidecar).get("source_study", {}).values()
    assert path.exists() and synthesized.metadata["PatientName"] == "Doe^Jane"  # the input untouched

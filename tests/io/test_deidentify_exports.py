"""Everything a de-identified export writes is de-identified: series, SR, SEG, annotation JSON,
mask NIfTI and its sidecar, the NIfTI provenance sidecar; SR/SEG references resolve."""

from __future__ import annotations

import dataclasses
import gzip
import json

import pydicom
import pytest

from app.annotations.document import AnnotationDocument
from app.annotations.label_mask import LabelMask
from app.annotations.shapes import EllipseRoi, Ruler
from app.core.volume import Volume
from app.io.annotation_export import export_annotation_bundle
from app.io.deidentify import deidentify_dataset
from app.io.dicom_export import write_derived_nifti, write_derived_series
from app.io.dicom_seg import write_label_seg
from app.io.dicom_sr import write_measurement_sr
from app.io.loader import load_volume
from main import main
from tests.io.export_helpers import source_header, synthetic_mr_volume

IDENTIFIERS = ("DOE", "JANE", "PID-998877", "ACC-31337", "HOUSE")


def annotated(volume: Volume) -> AnnotationDocument:
    document = AnnotationDocument(reference={"name": "DOE_JANE t1", "frame_of_reference_uid": "1.2.3.4"})
    center = volume.geometry.lps_from_index([3, 3, 2])
    u, v = volume.geometry.direction[:, 0], volume.geometry.direction[:, 1]
    document.insert(Ruler(label="Jane Doe width", start_lps=center, end_lps=center + 3 * u))
    document.insert(
        EllipseRoi(label="lesion PID-998877", center_lps=center, axis_u_lps=u, axis_v_lps=v,
                   half_width_mm=2, half_height_mm=1.5)
    )  # fmt: skip
    document.mask = LabelMask.empty_like(volume.geometry, volume.shape_kji)
    document.mask.labels[2, 2:4, 2:5] = 1
    document.mask.names = {1: "tumour of DOE"}
    return document


@pytest.fixture
def acquired_dicom(tmp_path):
    """An identified MR series on disk (DOE^JANE) and its volume as the loader reads it."""
    voxels = synthetic_mr_volume()
    volume = Volume(voxels.voxels, voxels.geometry, modality="MR", name="DOE_JANE_t1")
    header = source_header()
    header.SeriesDescription = "T1 DOE JANE"
    paths = write_derived_series(volume, tmp_path / "mr", source=header, keep_study_uid=True)
    return tmp_path / "mr", paths, load_volume(tmp_path / "mr"), header


def all_text(folder) -> str:
    """Every file under ``folder`` as text (gzip opened; DICOM as bytes, latin-1)."""
    parts = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        parts.append(data.decode("latin-1"))
    return "\n".join(parts)


def test_bundle_with_deidentify_leaks_nothing_and_references_the_pseudonyms(acquired_dicom, tmp_path):
    _, _, volume, header = acquired_dicom
    document = annotated(volume)
    document.reference["frame_of_reference_uid"] = header.FrameOfReferenceUID
    warnings: list[str] = []
    export_annotation_bundle(document, volume, tmp_path / "out", deidentify=True, warnings=warnings)
    text = all_text(tmp_path / "out").upper()
    for leaked in IDENTIFIERS:
        assert leaked not in text, leaked
    assert header.FrameOfReferenceUID not in text and header.StudyInstanceUID not in text
    series = pydicom.dcmread(sorted((tmp_path / "out" / "series").glob("*.dcm"))[0])
    bundle = json.loads((tmp_path / "out" / "annotations.annotations.json").read_text())
    assert bundle["reference"] == {"frame_of_reference_uid": series.FrameOfReferenceUID}
    assert {a["label"] for a in bundle["annotations"]} == {"[removed] [removed] width", "lesion [removed]"}
    assert warnings and "free-text label" in warnings[0]
    sr = pydicom.dcmread(tmp_path / "out" / "measurements_sr.dcm")
    assert sr.StudyInstanceUID == series.StudyInstanceUID and sr.PatientIdentityRemoved == "YES"


def test_sr_and_seg_deidentified_alone_refer_to_the_deidentified_series(acquired_dicom, tmp_path):
    # The library path: SR/SEG written with deidentify=True over the identified images, the
    # images de-identified on their own (another call, another day): every reference resolves.
    folder, paths, volume, header = acquired_dicom
    evidence = [pydicom.dcmread(p) for p in paths]
    document = annotated(volume)
    sr = pydicom.dcmread(
        write_measurement_sr(document, evidence, tmp_path / "sr.dcm", volume, deidentify=True)
    )
    mask = document.mask
    seg_path = write_label_seg(mask.labels, mask.geometry, evidence, tmp_path / "seg.dcm", deidentify=True)
    seg = pydicom.dcmread(seg_path)
    images = [deidentify_dataset(pydicom.dcmread(p)) for p in paths]
    image_uids = {d.SOPInstanceUID for d in images}
    series_uid, study_uid = images[0].SeriesInstanceUID, images[0].StudyInstanceUID
    frame_uid = images[0].FrameOfReferenceUID
    for report in (sr, seg):
        referenced = {e.value for e in report.iterall() if e.keyword == "ReferencedSOPInstanceUID"}
        assert referenced and referenced <= image_uids
        assert report.StudyInstanceUID == study_uid
        assert series_uid in {e.value for e in report.iterall() if e.keyword == "SeriesInstanceUID"}
    assert frame_uid in {e.value for e in sr.iterall() if e.keyword == "ReferencedFrameOfReferenceUID"}
    assert seg.FrameOfReferenceUID == frame_uid
    assert "DOE" not in str(sr).upper() and "DOE" not in str(seg).upper()


def test_deidentified_nifti_sidecar_drops_the_source_description(tmp_path):
    volume = synthetic_mr_volume()
    volume.provenance = dataclasses.replace(volume.provenance, source_description="T1 DOE JANE 2024-01-05")
    write_derived_nifti(volume, tmp_path / "plain.nii.gz")
    assert "DOE" in (tmp_path / "plain.json").read_text()
    write_derived_nifti(volume, tmp_path / "anon.nii.gz", deidentify=True)
    sidecar = json.loads((tmp_path / "anon.json").read_text())
    assert "DOE" not in json.dumps(sidecar) and "2024" not in json.dumps(sidecar["provenance"])
    assert sidecar["Synthetic"] is True and sidecar["provenance"]["plugin_name"] == "pix2pix-t1t2"


def test_export_cli_deidentify_everything_it_writes(acquired_dicom, tmp_path, capsys):
    from app.annotations.sidecar import save_annotations

    folder, _, volume, _ = acquired_dicom
    save_annotations(annotated(volume), tmp_path / "notes.json")
    out = tmp_path / "out"
    code = main(
        ["export", str(folder), "--annotations", str(tmp_path / "notes.json"), "--deidentify",
         "--dicom", str(out / "series"), "--sr", str(out / "sr.dcm"), "--seg", str(out / "seg.dcm"),
         "--mask-nifti", str(out / "mask.nii.gz"), "--nifti", str(out / "copy.nii.gz")]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "warning: de-identified export keeps 3 free-text label(s)" in captured.out
    text = all_text(out).upper()
    for leaked in IDENTIFIERS:
        assert leaked not in text, leaked


def test_export_cli_refuses_burned_in_pixels_unless_allowed(tmp_path, capsys):
    header = source_header()
    header.BurnedInAnnotation = "YES"
    voxels = synthetic_mr_volume()
    write_derived_series(
        Volume(voxels.voxels, voxels.geometry, modality="MR"), tmp_path / "mr", source=header
    )
    assert pydicom.dcmread(sorted((tmp_path / "mr").glob("*.dcm"))[0]).BurnedInAnnotation == "YES"
    argv = ["export", str(tmp_path / "mr"), "--deidentify", "--dicom"]
    assert main([*argv, str(tmp_path / "refused")]) == 2
    assert "Burned In Annotation YES" in capsys.readouterr().err
    assert not list((tmp_path / "refused").glob("*.dcm")) if (tmp_path / "refused").exists() else True
    assert main([*argv, str(tmp_path / "allowed"), "--allow-burned-in"]) == 0
    assert "may still show identifying text" in capsys.readouterr().out
    first = pydicom.dcmread(sorted((tmp_path / "allowed").glob("*.dcm"))[0])
    assert first.BurnedInAnnotation == "YES" and first.PatientIdentityRemoved == "YES"


def test_burned_in_pixels_are_refused_even_when_the_source_folder_is_gone(tmp_path):
    """The volume remembers its header's Burned In Annotation: a de-identified export of it (or of
    a generator's output made from it) is refused after the DICOM folder was moved or deleted."""
    import shutil

    from app.io.dicom_export import ExportError
    from app.io.loader import load_volume

    header = source_header()
    header.BurnedInAnnotation = "YES"
    voxels = synthetic_mr_volume()
    write_derived_series(Volume(voxels.voxels, voxels.geometry, modality="MR"), tmp_path / "mr", source=header)
    loaded = load_volume(tmp_path / "mr")
    output = loaded.with_voxels(loaded.voxels, provenance=voxels.provenance, derived_from_series=str(tmp_path / "mr"))
    shutil.rmtree(tmp_path / "mr")
    for volume in (loaded, output):
        with pytest.raises(ExportError, match="Burned In Annotation YES"):
            write_derived_series(volume, tmp_path / "out", deidentify=True)


def test_burned_in_pixels_are_remembered_through_a_nifti_file(tmp_path, capsys):
    """NIfTI has no Burned In Annotation: a NIfTI made from a burned-in DICOM series (converted,
    or a generator's output) says it in its sidecar, and what is read back keeps refusing a
    de-identified export. A series that is not burned in writes no such key."""
    from app.io.dicom_export import ExportError
    from app.io.nifti import load_nifti, save_nifti

    header = source_header()
    header.BurnedInAnnotation = "YES"
    voxels = synthetic_mr_volume()
    write_derived_series(Volume(voxels.voxels, voxels.geometry, modality="MR"), tmp_path / "mr", source=header)
    assert main(["convert", str(tmp_path / "mr"), str(tmp_path / "converted.nii.gz")]) == 0
    loaded = load_volume(tmp_path / "mr")
    synthesized = loaded.with_voxels(loaded.voxels + 1, provenance=voxels.provenance)
    save_nifti(synthesized, tmp_path / "synthesized.nii.gz")
    for name in ("converted", "synthesized"):
        assert json.loads((tmp_path / f"{name}.json").read_text())["BurnedInAnnotation"] == "YES"
        read_back = load_nifti(tmp_path / f"{name}.nii.gz")
        with pytest.raises(ExportError, match="Burned In Annotation YES"):
            write_derived_series(read_back, tmp_path / f"{name}-out", deidentify=True)
    argv = ["export", str(tmp_path / "converted.nii.gz"), "--deidentify", "--dicom", str(tmp_path / "cli")]
    assert main(argv) == 2 and "Burned In Annotation YES" in capsys.readouterr().err

    plain = Volume(voxels.voxels, voxels.geometry, modality="MR")
    save_nifti(plain, tmp_path / "plain.nii.gz")
    assert "BurnedInAnnotation" not in json.loads((tmp_path / "plain.json").read_text())
    write_derived_series(load_nifti(tmp_path / "plain.nii.gz"), tmp_path / "plain-out", deidentify=True)

"""Measurements as DICOM SR (TID 1500) and masks as DICOM SEG, re-read with highdicom; masks
as NIfTI; dciodvfy finds no errors; de-identified SR/SEG carry no identifying values."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest

from app.annotations.document import AnnotationDocument
from app.annotations.roi_stats import roi_statistics
from app.annotations.shapes import Angle, EllipseRoi, FreehandRoi, PointMarker, RectangleRoi, Ruler
from app.core.volume import Geometry
from app.io.deidentify import identifying_values
from app.io.dicom_export import ExportError, write_derived_series
from app.io.dicom_seg import write_label_seg
from app.io.dicom_sr import write_measurement_sr
from app.io.mask_nifti import load_label_mask_nifti, save_label_mask_nifti
from tests.io.export_helpers import ct_volume, dciodvfy_errors, source_header, synthetic_mr_volume


@pytest.fixture(scope="module")
def measured_series(tmp_path_factory):
    """A CT series on disk (headers + Volume) with one annotation of each kind on slice 2."""
    volume = ct_volume()
    header = source_header()
    header.Modality = "CT"
    paths = write_derived_series(volume, tmp_path_factory.mktemp("ct"), source=header, keep_study_uid=True)
    datasets = [pydicom.dcmread(p) for p in paths]
    c = volume.geometry.lps_from_index([3, 2, 2])
    u, v = volume.geometry.direction[:, 0], volume.geometry.direction[:, 1]
    document = AnnotationDocument()
    for annotation in (
        PointMarker(label="marker", position_lps=c),
        Ruler(label="ruler", start_lps=c, end_lps=c + 3 * u + 4 * v),
        Angle(label="angle", first_lps=c + u, vertex_lps=c, second_lps=c + u + v),
        RectangleRoi(
            label="rect", center_lps=c, axis_u_lps=u, axis_v_lps=v, half_width_mm=1.0, half_height_mm=0.9
        ),
        EllipseRoi(
            label="ellipse", center_lps=c, axis_u_lps=u, axis_v_lps=v, half_width_mm=1.5, half_height_mm=1.0
        ),
        FreehandRoi(label="free", axis_u_lps=u, axis_v_lps=v, vertices_lps=[c - u, c + 2 * u, c + 2 * v]),
    ):
        document.insert(annotation)
    return volume, datasets, document, header


def test_sr_reread_by_highdicom_with_values(measured_series, tmp_path):
    volume, datasets, document, _ = measured_series
    path = write_measurement_sr(document, datasets, tmp_path / "sr.dcm", volume=volume)
    assert dciodvfy_errors(path) == []
    sr = hd.sr.srread(path)
    assert isinstance(sr, hd.sr.Comprehensive3DSR)
    assert sr.StudyInstanceUID == datasets[0].StudyInstanceUID
    groups = {str(g.tracking_identifier): g for g in sr.content.get_planar_roi_measurement_groups()}
    assert set(groups) == {"marker", "ruler", "angle", "rect", "ellipse", "free"}
    assert groups["marker"].roi.graphic_type.value == "POINT"
    np.testing.assert_allclose(
        groups["marker"].roi.value, [document.get(document.ids()[0]).position_lps], atol=1e-4
    )
    assert groups["ellipse"].roi.graphic_type.value == "ELLIPSE"
    assert groups["ellipse"].roi.frame_of_reference_uid == datasets[0].FrameOfReferenceUID

    def values(name):
        return {m.name.meaning: (m.value, m.unit.value) for m in groups[name].get_measurements()}

    assert values("ruler")["Length"][0] == pytest.approx(5.0, abs=1e-4)
    assert values("angle")["Angle"][0] == pytest.approx(45.0, abs=1e-4)
    rectangle = document.get(document.ids()[3])
    stats = roi_statistics(rectangle, volume)
    rect = values("rect")
    assert rect["Area"][0] == pytest.approx(3.6)
    assert rect["Mean"] == (pytest.approx(stats.mean), "[hnsf'U]")
    assert rect["Maximum"][0] == pytest.approx(stats.maximum)
    assert rect["Standard Deviation"][0] == pytest.approx(stats.sd)


def test_sr_deidentified(measured_series, tmp_path):
    volume, datasets, document, header = measured_series
    path = write_measurement_sr(document, datasets, tmp_path / "sr.dcm", volume=volume, deidentify=True)
    sr = pydicom.dcmread(path)
    texts = {str(element.value) for element in sr.iterall()}
    assert not set(identifying_values(header).values()) & texts
    assert header.StudyInstanceUID not in texts
    assert sr.PatientIdentityRemoved == "YES"


def test_sr_refuses_without_evidence():
    with pytest.raises(ExportError, match="evidence"):
        write_measurement_sr(AnnotationDocument(), [], "unused.dcm")


def test_seg_reread_by_highdicom(measured_series, tmp_path):
    volume, datasets, _, header = measured_series
    labels = np.zeros(volume.voxels.shape, np.uint8)
    labels[1, 1:3, 2:5] = 1
    labels[3, 0, 0] = 4
    shuffled = datasets[::-1]  # order of the files must not matter
    path = write_label_seg(labels, volume.geometry, shuffled, tmp_path / "seg.dcm", {1: "lesion", 4: "edema"})
    assert dciodvfy_errors(path) == []
    seg = hd.seg.segread(path)
    assert [item.SegmentLabel for item in seg.SegmentSequence] == ["lesion", "edema"]
    assert seg.FrameOfReferenceUID == datasets[0].FrameOfReferenceUID
    uids = [d.SOPInstanceUID for d in sorted(datasets, key=lambda d: d.InstanceNumber)]
    pixels = seg.get_pixels_by_source_instance(uids, combine_segments=True)
    expected = np.where(labels == 4, 2, labels)  # segment numbers are 1..n in label order
    np.testing.assert_array_equal(pixels, expected)
    deidentified = write_label_seg(
        labels, volume.geometry, datasets, tmp_path / "seg_anon.dcm", deidentify=True
    )
    texts = {
        str(element.value)
        for element in pydicom.dcmread(deidentified).iterall()
        if element.VR not in ("OB", "OW")
    }
    assert not set(identifying_values(header).values()) & texts


def test_seg_refuses_mask_on_another_grid(measured_series, tmp_path):
    volume, datasets, _, _ = measured_series
    labels = np.ones(volume.voxels.shape, np.uint8)
    shifted = Geometry(
        volume.geometry.origin_lps_mm + 5.0, volume.geometry.spacing_mm, volume.geometry.direction
    )
    with pytest.raises(ExportError, match="slice positions"):
        write_label_seg(labels, shifted, datasets, tmp_path / "seg.dcm")
    with pytest.raises(ExportError, match="empty"):
        write_label_seg(np.zeros_like(labels), volume.geometry, datasets, tmp_path / "seg.dcm")


def test_mask_nifti_round_trip(tmp_path):
    geometry = synthetic_mr_volume().geometry
    labels = np.zeros((5, 6, 7), np.uint8)
    labels[2, 3, 4] = 1
    labels[4, 5, 6] = 2
    path = save_label_mask_nifti(labels, geometry, tmp_path / "mask.nii.gz", {1: "lesion", 2: "edema"})
    reread, reread_geometry, names = load_label_mask_nifti(path)
    np.testing.assert_array_equal(reread, labels)
    assert reread_geometry.allclose(geometry, atol_mm=1e-4)
    assert names == {1: "lesion", 2: "edema"}


def test_sr_and_seg_of_a_series_missing_type2_patient_and_study_attributes(measured_series, tmp_path):
    # Many acquired (or anonymised) series leave out empty type 2 attributes; highdicom read
    # evidence[0].PatientBirthDate and the export died with an AttributeError traceback.
    volume, datasets, document, _ = measured_series
    bare = []
    for dataset in datasets:
        dataset = pydicom.dcmread(dataset.filename)
        for keyword in (
            "PatientBirthDate",
            "PatientSex",
            "AccessionNumber",
            "StudyID",
            "ReferringPhysicianName",
        ):
            delattr(dataset, keyword)
        bare.append(dataset)
    sr_path = write_measurement_sr(document, bare, tmp_path / "sr.dcm", volume=volume)
    labels = np.zeros(volume.voxels.shape, dtype=np.uint8)
    labels[2, 1:3, 1:4] = 1
    seg_path = write_label_seg(labels, volume.geometry, bare, tmp_path / "seg.dcm", {1: "lesion"})
    assert dciodvfy_errors(sr_path) == [] and dciodvfy_errors(seg_path) == []
    sr = pydicom.dcmread(sr_path)
    assert (
        sr.PatientName == "DOE^JANE"
        and sr.PatientBirthDate == ""
        and sr.StudyInstanceUID == bare[0].StudyInstanceUID
    )
    assert "PatientBirthDate" not in bare[0]  # the caller's headers are left as they were


def test_measurements_and_masks_of_a_synthetic_series_say_so(tmp_path):
    """An SR or SEG of synthesized images is an export of them: its series description says so."""
    volume = synthetic_mr_volume()
    paths = write_derived_series(volume, tmp_path / "synth", source=source_header())
    datasets = [pydicom.dcmread(p) for p in paths]
    assert {d.SyntheticData for d in datasets} == {"YES"}
    c = volume.geometry.lps_from_index([3, 2, 2])
    document = AnnotationDocument()
    document.insert(Ruler(label="ruler", start_lps=c, end_lps=c + 2 * volume.geometry.direction[:, 0]))
    sr = pydicom.dcmread(write_measurement_sr(document, datasets, tmp_path / "sr.dcm", volume=volume))
    labels = np.zeros(volume.voxels.shape, np.uint8)
    labels[2, 1:3, 1:3] = 1
    seg = pydicom.dcmread(write_label_seg(labels, volume.geometry, datasets, tmp_path / "seg.dcm"))
    assert sr.SeriesDescription == "SynthView measurements on SYNTHETIC images"
    assert seg.SeriesDescription == "SynthView label mask on SYNTHETIC images"
    assert dciodvfy_errors(tmp_path / "sr.dcm") == [] and dciodvfy_errors(tmp_path / "seg.dcm") == []

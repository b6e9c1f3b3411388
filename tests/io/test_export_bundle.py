"""The annotation bundle the viewer's Export button writes: sidecar, mask, SR, SEG."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest

from app.annotations.document import AnnotationDocument
from app.annotations.label_mask import LabelMask
from app.annotations.shapes import EllipseRoi
from app.core.volume import Volume
from app.io.annotation_export import export_annotation_bundle
from app.io.dicom_export import write_derived_series
from tests.io.export_helpers import source_header, synthetic_mr_volume


def annotate(volume: Volume) -> AnnotationDocument:
    document = AnnotationDocument()
    center = volume.geometry.lps_from_index([3, 3, 2])
    u, v = volume.geometry.direction[:, 0], volume.geometry.direction[:, 1]
    document.insert(
        EllipseRoi(
            label="lesion", center_lps=center, axis_u_lps=u, axis_v_lps=v, half_width_mm=2, half_height_mm=2
        )
    )
    document.mask = LabelMask.empty_like(volume.geometry, volume.shape_kji)
    document.mask.labels[2, 3, 3] = 1
    return document


def test_bundle_for_a_synthetic_nifti_volume_writes_its_own_series(tmp_path):
    volume = synthetic_mr_volume()
    written = export_annotation_bundle(annotate(volume), volume, tmp_path)
    names = {p.name for p in written}
    assert {"annotations.annotations.json", "mask.nii.gz", "measurements_sr.dcm", "mask_seg.dcm"} <= names
    series = sorted((tmp_path / "series").glob("*.dcm"))
    assert len(series) == 5 and pydicom.dcmread(series[0])[0x0008, 0x001C].value == "YES"
    seg = hd.seg.segread(tmp_path / "mask_seg.dcm")
    uids = [pydicom.dcmread(p).SOPInstanceUID for p in series]
    pixels = seg.get_pixels_by_source_instance(uids, combine_segments=True)
    assert pixels.sum() == 1 and pixels[2, 3, 3] == 1


def test_bundle_for_a_dicom_volume_refers_to_it(tmp_path):
    from app.io.loader import load_volume

    acquired = synthetic_mr_volume()
    acquired = Volume(acquired.voxels, acquired.geometry, modality="MR")
    header = source_header()
    write_derived_series(acquired, tmp_path / "mr", source=header, keep_study_uid=True)
    loaded = load_volume(tmp_path / "mr")
    export_annotation_bundle(annotate(loaded), loaded, tmp_path / "out")
    assert not (tmp_path / "out" / "series").exists()
    sr = pydicom.dcmread(tmp_path / "out" / "measurements_sr.dcm")
    assert sr.StudyInstanceUID == header.StudyInstanceUID and sr.PatientName == "DOE^JANE"
    deidentified = tmp_path / "anon"
    export_annotation_bundle(annotate(loaded), loaded, deidentified, deidentify=True)
    anonymous_sr = pydicom.dcmread(deidentified / "measurements_sr.dcm")
    assert anonymous_sr.StudyInstanceUID != header.StudyInstanceUID
    assert "DOE" not in str(anonymous_sr.PatientName)
    assert np.all(
        [pydicom.dcmread(p).PatientIdentityRemoved == "YES" for p in (deidentified / "series").glob("*.dcm")]
    )


def test_bundle_sidecar_carries_measurements_for_every_compare_volume(tmp_path):
    import json

    from app.annotations.shapes import Ruler
    from app.annotations.sidecar import load_annotations

    volume = synthetic_mr_volume()
    synthesized = volume.with_voxels(volume.voxels * 2.0)
    document = annotate(volume)
    start, end = volume.geometry.lps_from_index([0, 3, 2]), volume.geometry.lps_from_index([6, 3, 2])
    document.insert(Ruler(label="profile", start_lps=start, end_lps=end))
    volumes = {"original": volume, "synthesized": synthesized}
    export_annotation_bundle(document, volume, tmp_path, compare_volumes=volumes)
    sidecar = tmp_path / "annotations.annotations.json"
    data = json.loads(sidecar.read_text())
    panels = data["measurements"]["volumes"]
    assert list(panels) == ["original", "synthesized"]
    original, doubled = (panels[name]["line_profiles"][0]["values"] for name in volumes)
    assert doubled == pytest.approx([2.0 * value for value in original])
    assert panels["synthesized"]["noise"][0]["sd"] == pytest.approx(2.0 * panels["original"]["noise"][0]["sd"])
    assert len(load_annotations(sidecar)) == 2  # the derived block does not stop the file reopening
    plain = tmp_path / "plain"
    export_annotation_bundle(document, volume, plain)
    assert list(json.loads((plain / "annotations.annotations.json").read_text())["measurements"]["volumes"]) == ["image"]


def test_deidentified_bundle_scrubs_panel_names_in_measurements(tmp_path):
    import json

    from app.io.loader import load_volume

    acquired = synthetic_mr_volume()
    acquired = Volume(acquired.voxels, acquired.geometry, modality="MR")
    write_derived_series(acquired, tmp_path / "mr", source=source_header(), keep_study_uid=True)
    loaded = load_volume(tmp_path / "mr")
    volumes = {"DOE^JANE original": loaded, "DOE^JANE": loaded, "Jane Doe": loaded}
    export_annotation_bundle(annotate(loaded), loaded, tmp_path / "anon", deidentify=True, compare_volumes=volumes)
    text = (tmp_path / "anon" / "annotations.annotations.json").read_text()
    assert "DOE" not in text.upper().replace("[REMOVED]", "")
    assert len(json.loads(text)["measurements"]["volumes"]) == 3  # scrubbed names kept apart

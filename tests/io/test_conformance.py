"""dciodvfy (dicom3tools) on what SynthView writes: derived MR and CT series (plain and
de-identified), an SR and a SEG: no errors, and none of the warnings once reported (empty
Laterality beside an unpaired body part, Rescale in MR, a private coding scheme, OTHER in CT)."""

from __future__ import annotations

import subprocess

import numpy as np
import pydicom
import pytest

from app.core.volume import Volume
from app.io.annotation_export import export_annotation_bundle
from app.io.dicom_export import write_derived_series
from app.io.loader import load_volume
from tests.cli.test_export import annotated
from tests.io.export_helpers import ct_volume, source_header, synthetic_mr_volume, tool_path

NAMED_WARNINGS = ("Laterality", "Rescale", "Coding Scheme Designator", "Image Type")


def findings(path) -> tuple[list[str], list[str]]:
    result = subprocess.run([tool_path("dciodvfy"), str(path)], capture_output=True, text=True, timeout=60)
    lines = (result.stdout + result.stderr).splitlines()
    errors = [line for line in lines if line.startswith("Error")]
    named = [line for line in lines if line.startswith("Warning") and any(n in line for n in NAMED_WARNINGS)]
    return errors, named


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("conformance")
    mr_header = source_header()
    mr_header.BodyPartExamined = "BRAIN"
    mr_header.Laterality = ""  # what the 16 errors came from: an empty value copied over
    ct_header = source_header()
    ct_header.Modality, ct_header.BodyPartExamined = "CT", "HEAD"
    small = synthetic_mr_volume()
    small = small.with_voxels((small.voxels / 1000.0).astype(np.float32))  # scaled: no rounding
    paths = {
        "mr": write_derived_series(synthetic_mr_volume(), root / "mr", source=mr_header)[0],
        "mr-scaled": write_derived_series(small, root / "mr-scaled", source=mr_header)[0],
        "ct": write_derived_series(ct_volume(), root / "ct", source=ct_header, keep_study_uid=True)[0],
        "mr-deidentified": write_derived_series(
            synthetic_mr_volume(), root / "mr-de", source=mr_header, deidentify=True
        )[0],
    }
    volume = load_volume(root / "mr")
    export_annotation_bundle(annotated(volume), volume, root / "bundle")
    paths["sr"] = root / "bundle" / "measurements_sr.dcm"
    paths["seg"] = root / "bundle" / "mask_seg.dcm"
    export_annotation_bundle(annotated(volume), volume, root / "bundle-de", deidentify=True)
    paths["sr-deidentified"] = root / "bundle-de" / "measurements_sr.dcm"
    paths["seg-deidentified"] = root / "bundle-de" / "mask_seg.dcm"
    return root, paths


@pytest.mark.parametrize(
    "name", ["mr", "mr-scaled", "ct", "mr-deidentified", "sr", "seg", "sr-deidentified", "seg-deidentified"]
)
def test_dciodvfy_finds_no_errors_and_none_of_the_named_warnings(written, name):
    errors, named = findings(written[1][name])
    assert errors == [] and named == []


def test_ct_image_type_and_mr_without_modality_lut(written):
    _, paths = written
    assert list(pydicom.dcmread(paths["ct"]).ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
    mr = pydicom.dcmread(paths["mr-scaled"])
    assert "RescaleSlope" not in mr and "RescaleIntercept" not in mr
    assert float(mr.RealWorldValueMappingSequence[0].RealWorldValueSlope) > 0


def test_scaled_mr_reads_back_through_its_real_world_value_mapping(written):
    root, paths = written
    small = synthetic_mr_volume().voxels / 1000.0
    loaded = load_volume(root / "mr-scaled")
    slope = float(pydicom.dcmread(paths["mr-scaled"]).RealWorldValueMappingSequence[0].RealWorldValueSlope)
    assert np.max(np.abs(loaded.voxels - small)) <= slope / 2 + 1e-6
    assert isinstance(loaded, Volume)
    # The window is written in stored values and read back in the volume's.
    low, high = np.percentile(small[::1], [1.0, 99.0])
    assert loaded.metadata["WindowCenter"] == pytest.approx((low + high) / 2, abs=2 * slope)

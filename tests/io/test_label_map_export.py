"""A segmentation's label map is never exported as an image: NIfTI marks it as a label map
(label intent, SEGMENTATION description, its label table in the sidecar); the DICOM image-series
exporter refuses it and writes nothing."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from app.core.label_map import LabelEntry, LabelMapProvenance
from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io.dicom_export import ExportError, write_derived_nifti, write_derived_series
from app.io.nifti import LABEL_MAP_DESCRIP, SYNTHETIC_DESCRIP, save_nifti, sidecar_path

GEOMETRY = Geometry(np.array([10.0, -20.0, 5.0]), np.array([1.0, 1.0, 2.0]), np.diag([-1.0, -1.0, 1.0]))
TABLE = (LabelEntry(0, "background", (0, 0, 0)), LabelEntry(1, "grey matter", (200, 120, 120)))


def _label_map(**changes) -> Volume:
    labels = np.zeros((4, 6, 8), np.int16)
    labels[1:3, 2:4, 2:6] = 1
    provenance = LabelMapProvenance("tiny-tissue-seg", "0.1.0", TABLE, source_description="T1 filled")
    return Volume(labels, GEOMETRY, "SEG", "label", name="T1 → seg labels", label_map=provenance, **changes)


def test_nifti_marks_a_label_map_as_derived_segmentation(tmp_path):
    path = save_nifti(_label_map(), tmp_path / "labels.nii.gz")
    header = nib.load(str(path)).header
    assert header.get_intent()[0] == "label"
    assert bytes(header["descrip"]).rstrip(b"\x00") == LABEL_MAP_DESCRIP
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["LabelMap"]["kind"] == "derived label map" and sidecar["LabelMap"]["synthetic"] is False
    assert [entry["name"] for entry in sidecar["LabelMap"]["labels"]] == ["background", "grey matter"]
    assert sidecar["Modality"] == "SEG" and "Synthetic" not in sidecar
    np.testing.assert_array_equal(np.asarray(nib.load(str(path)).dataobj).T, _label_map().voxels)
    # The export command's NIfTI path (de-identified too) keeps the marking.
    again = write_derived_nifti(_label_map(), tmp_path / "again.nii.gz", deidentify=True)
    assert json.loads(sidecar_path(again).read_text())["LabelMap"]["plugin_name"] == "tiny-tissue-seg"


def test_a_label_map_marked_synthetic_keeps_the_synthetic_description(tmp_path):
    path = save_nifti(_label_map(provenance=Provenance("gan", "1.0")), tmp_path / "odd.nii.gz")
    assert bytes(nib.load(str(path)).header["descrip"]).rstrip(b"\x00") == SYNTHETIC_DESCRIP


def test_dicom_image_series_refuses_a_label_map(tmp_path):
    with pytest.raises(ExportError, match="label map .* not an image"):
        write_derived_series(_label_map(), tmp_path / "series")
    assert not (tmp_path / "series").exists()

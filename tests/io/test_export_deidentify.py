"""DICOM basic-profile de-identification of single datasets."""

from __future__ import annotations

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from app.io.deidentify import deidentify_dataset, identifying_values
from tests.io.export_helpers import source_header


def test_identifying_values_go_uids_are_replaced_consistently():
    first, second = source_header(), source_header()
    second.StudyInstanceUID = first.StudyInstanceUID
    first.SOPInstanceUID, second.SOPInstanceUID = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    first.OtherPatientIDs = "OLD-ID"
    first.add_new(0x00091001, "LO", "private vendor note")
    reference = Dataset()
    reference.ReferencedSOPInstanceUID = second.SOPInstanceUID
    reference.PatientName = "NESTED^NAME"
    first.ReferencedImageSequence = Sequence([reference])
    original_study = first.StudyInstanceUID
    uid_map: dict[str, str] = {}
    for dataset in (first, second):
        deidentify_dataset(dataset, uid_map)
    assert identifying_values(first) == {"PatientName": "ANONYMOUS^"}
    assert "OtherPatientIDs" not in first and "InstitutionName" not in first
    assert (0x0009, 0x1001) not in first
    assert first.StudyInstanceUID == second.StudyInstanceUID != original_study
    # A reference inside a sequence follows the same mapping as the referenced instance.
    assert first.ReferencedImageSequence[0].ReferencedSOPInstanceUID == second.SOPInstanceUID
    assert first.ReferencedImageSequence[0].PatientName == "ANONYMOUS^"
    assert first.PatientIdentityRemoved == "YES"
    assert first.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    # Type 2 attributes stay present but empty, as their modules require.
    assert "PatientID" in first and not first.PatientID

"""De-identification of DICOM datasets per the DICOM PS3.15 Basic Application Level
Confidentiality Profile (Annex E), for exports that leave the hospital.

Actions follow the profile's table: identifying attributes that a module requires (type 1/2)
are replaced by a dummy or emptied (``D``/``Z``), all others are removed (``X``), and UIDs
are replaced by new ones that stay consistent across every dataset handled with the same
``uid_map`` (``U``), so a de-identified series still hangs together. Private tags are
removed. The dataset records what was done (PatientIdentityRemoved, DeidentificationMethod
and its code sequence), as the profile asks.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

DEIDENTIFICATION_METHOD = "DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile"
PSEUDONYM_PATIENT_NAME = "ANONYMOUS^"

# Replaced by a dummy value (keyword -> value); the profile's "D" for attributes a module needs.
_DUMMY_VALUES: dict[str, str] = {
    "PatientName": PSEUDONYM_PATIENT_NAME,
}

# Emptied (type 2 attributes kept with zero length); the profile's "Z".
_EMPTIED: tuple[str, ...] = (
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
    "ContentCreatorName",
)

# Removed; the profile's "X" for identifying attributes (and dates/times that date a patient).
REMOVED_KEYWORDS: tuple[str, ...] = (
    "AcquisitionDate",
    "AcquisitionDateTime",
    "AcquisitionTime",
    "AdditionalPatientHistory",
    "AdmissionID",
    "AdmittingDiagnosesDescription",
    "Allergies",
    "BranchOfService",
    "ContentDate",
    "ContentTime",
    "CountryOfResidence",
    "CurrentPatientLocation",
    "DeviceSerialNumber",
    "EthnicGroup",
    "InstanceCreationDate",
    "InstanceCreationTime",
    "InstitutionAddress",
    "InstitutionName",
    "InstitutionalDepartmentName",
    "IssuerOfPatientID",
    "MedicalRecordLocator",
    "MilitaryRank",
    "NameOfPhysiciansReadingStudy",
    "Occupation",
    "OperatorsName",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientAddress",
    "PatientAge",
    "PatientBirthName",
    "PatientBirthTime",
    "PatientComments",
    "PatientInsurancePlanCodeSequence",
    "PatientMotherBirthName",
    "PatientReligiousPreference",
    "PatientSize",
    "PatientState",
    "PatientTelephoneNumbers",
    "PatientWeight",
    "PerformedProcedureStepID",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "PerformingPhysicianName",
    "PhysiciansOfRecord",
    "ReferencedPatientSequence",
    "ReferencedStudySequence",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "RequestAttributesSequence",
    "RequestingPhysician",
    "ScheduledProcedureStepID",
    "SeriesDate",
    "SeriesTime",
    "StationName",
    "StudyDescription",
)

# UIDs replaced consistently (the profile's "U"). SOP Class UIDs are not identifying and stay.
REPLACED_UID_KEYWORDS: tuple[str, ...] = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
    "ReferencedSOPInstanceUID",
    "ReferencedFrameOfReferenceUID",
    "MediaStorageSOPInstanceUID",
    "SynchronizationFrameOfReferenceUID",
    "IrradiationEventUID",
)

IDENTIFYING_KEYWORDS: tuple[str, ...] = REMOVED_KEYWORDS + tuple(_DUMMY_VALUES) + _EMPTIED


def deidentify_dataset(dataset: Dataset, uid_map: dict[str, str] | None = None) -> Dataset:
    """De-identify ``dataset`` in place (and return it).

    Pass the same ``uid_map`` for every dataset of an export so that replaced UIDs stay
    consistent (a series keeps one Series Instance UID, references still resolve).
    """
    uid_map = {} if uid_map is None else uid_map
    _deidentify_level(dataset, uid_map)
    if "MediaStorageSOPInstanceUID" in getattr(dataset, "file_meta", Dataset()):
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = DEIDENTIFICATION_METHOD
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    dataset.DeidentificationMethodCodeSequence = Sequence([code])
    return dataset


def _deidentify_level(dataset: Dataset, uid_map: dict[str, str]) -> None:
    dataset.remove_private_tags()
    for keyword in REMOVED_KEYWORDS:
        if keyword in dataset:
            delattr(dataset, keyword)
    for keyword in _EMPTIED:
        if keyword in dataset:
            dataset.data_element(keyword).value = None
    for keyword, value in _DUMMY_VALUES.items():
        if keyword in dataset:
            setattr(dataset, keyword, value)
    for keyword in REPLACED_UID_KEYWORDS:
        if keyword in dataset and dataset.data_element(keyword).value:
            old = str(dataset.data_element(keyword).value)
            setattr(dataset, keyword, uid_map.setdefault(old, generate_uid()))
    for element in dataset:
        if element.VR == "SQ":
            for item in element.value:
                _deidentify_level(item, uid_map)


def identifying_values(dataset: Dataset) -> dict[str, str]:
    """The non-empty identifying attribute values of ``dataset`` (top level), by keyword.

    Used to check that an export contains none of its source's identifying values.
    """
    found: dict[str, str] = {}
    for keyword in IDENTIFYING_KEYWORDS:
        if keyword in dataset and dataset.data_element(keyword).value not in (None, "", b""):
            found[keyword] = str(dataset.data_element(keyword).value)
    return found

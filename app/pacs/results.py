"""What the PACS operations return: plain data with a stable JSON form (``pacs find --json``)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

# The attributes a C-FIND / QIDO-RS match is reported with, by level (JSON keys in snake_case).
STUDY_FIELDS = {
    "PatientID": "patient_id",
    "PatientName": "patient_name",
    "StudyInstanceUID": "study_uid",
    "StudyDate": "study_date",
    "StudyDescription": "study_description",
    "AccessionNumber": "accession",
    "ModalitiesInStudy": "modalities",
    "NumberOfStudyRelatedSeries": "series_count",
    "NumberOfStudyRelatedInstances": "instance_count",
}
SERIES_FIELDS = {
    "PatientID": "patient_id",
    "PatientName": "patient_name",
    "StudyInstanceUID": "study_uid",
    "StudyDate": "study_date",
    "SeriesInstanceUID": "series_uid",
    "SeriesNumber": "series_number",
    "SeriesDescription": "series_description",
    "Modality": "modality",
    "NumberOfSeriesRelatedInstances": "instance_count",
}


@dataclass(frozen=True)
class Query:
    level: str = "study"  # "study" or "series"
    patient_id: str = ""
    patient_name: str = ""  # DICOM wildcards * and ?
    study_date: str = ""  # YYYYMMDD or YYYYMMDD-YYYYMMDD
    modality: str = ""
    accession: str = ""
    study_uid: str = ""

    def matching_keys(self) -> dict[str, str]:
        """DICOM keyword -> value for the fields the user filled in."""
        keys = {
            "PatientID": self.patient_id,
            "PatientName": self.patient_name,
            "StudyDate": self.study_date,
            "AccessionNumber": self.accession,
            "StudyInstanceUID": self.study_uid,
        }
        if self.modality:
            keys["ModalitiesInStudy" if self.level == "study" else "Modality"] = self.modality
        return {k: v for k, v in keys.items() if v}


def match_from(values: dict, level: str) -> dict:
    """A match as the JSON contract has it: every field of the level, missing ones as null."""
    fields = STUDY_FIELDS if level == "study" else SERIES_FIELDS
    result = {"level": level}
    for keyword, key in fields.items():
        value = values.get(keyword)
        if key in ("series_count", "instance_count", "series_number"):
            try:
                value = int(value) if value not in (None, "") else None
            except (TypeError, ValueError):
                value = None
        elif key == "modalities":
            value = [str(v) for v in value] if isinstance(value, list | tuple) else ([str(value)] if value else [])
        else:
            value = str(value) if value not in (None, "") else None
        result[key] = value
    return result


@dataclass
class TransferResult:
    """A retrieve or a send: what arrived/left, what failed and why."""

    expected: int | None = None  # instances the server announced (None: not said)
    done: int = 0
    failed: int = 0
    skipped: list[str] = field(default_factory=list)  # one line per instance: why it was not kept
    cancelled: bool = False
    files: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.cancelled and self.failed == 0 and not self.skipped and (
            self.expected is None or self.done >= self.expected
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["complete"] = self.complete
        data.pop("files")
        return data


_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def refusal_reason(study: str, series: str, instance: str, wanted_study: str, wanted_series: str | None) -> str | None:
    """Why an instance a server sent is not kept (invalid UIDs, or a study/series not asked for)."""
    if not all(_UID.match(uid) and len(uid) <= 64 for uid in (study, series, instance)):
        return f"an instance with invalid UIDs (study {study[:70]!r}, series {series[:70]!r}, instance {instance[:70]!r})"
    if study != wanted_study or (wanted_series and series != wanted_series):
        return f"instance {instance} of study {study}, which was not asked for: refused"
    return None

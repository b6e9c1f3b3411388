"""Known identifiers of a patient, and free text scrubbed of them.

A de-identified export also carries free text the user typed or the source named (annotation
labels, mask label names, a series description). Text cannot be proven clean, but every
identifier the source header holds (names and their parts, IDs, accession number, birth date in
the usual spellings, physicians, institution) can be found in it and replaced; whatever text is
left, the export says it kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

REMOVED = "[removed]"
_NAME_KEYWORDS = (
    "PatientName",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "PhysiciansOfRecord",
    "RequestingPhysician",
)
_ID_KEYWORDS = (
    "PatientID",
    "OtherPatientIDs",
    "AccessionNumber",
    "StudyID",
    "AdmissionID",
    "MedicalRecordLocator",
    "InstitutionName",
    "InstitutionAddress",
    "StationName",
    "PatientAddress",
    "PatientTelephoneNumbers",
)
_MIN_LENGTH = 2  # single letters would erase ordinary text
_MIN_DIGITS = 4  # a number alone ("12" as a study ID) would erase measurements


@dataclass(frozen=True)
class KnownIdentifiers:
    """Strings that identify the patient, longest first (so "DOE^JANE" goes before "DOE")."""

    values: tuple[str, ...] = ()
    _pattern: re.Pattern | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, *sources: Dataset | Mapping | None) -> KnownIdentifiers:
        """From DICOM headers and/or metadata dicts (keyword -> value)."""
        found: set[str] = set()
        for source in sources:
            if source is not None:
                found.update(_identifiers_in(source))
        return cls._from_values(found)

    @classmethod
    def _from_values(cls, found: Iterable[str]) -> KnownIdentifiers:
        values = tuple(sorted({v for v in found if _identifying(v)}, key=lambda v: (-len(v), v)))
        pattern = None
        if values:
            # Between letters/digits: "DOE" in "DOE_JANE" or "jane doe", not in "ANECDOTE".
            alternatives = "|".join(re.escape(v) for v in values)
            pattern = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.IGNORECASE)
        return cls(values, pattern)

    def merged(self, other: KnownIdentifiers | None) -> KnownIdentifiers:
        """These identifiers and ``other``'s."""
        if other is None or not other.values:
            return self
        return KnownIdentifiers._from_values({*self.values, *other.values})

    def scrub(self, text: str) -> str:
        """``text`` with every known identifier replaced by [removed]."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(REMOVED, text)

    def scrub_all(self, texts: Iterable[str]) -> list[str]:
        return [self.scrub(text) for text in texts]


def _identifying(value: str) -> bool:
    return len(value) >= (_MIN_DIGITS if value.isdigit() else _MIN_LENGTH)


def _identifiers_in(source: Dataset | Mapping) -> set[str]:
    found: set[str] = set()
    for keyword in _NAME_KEYWORDS:
        for value in _values(source, keyword):
            # Family, given and middle names (not the prefix or suffix: "MR", "DR", "JR").
            names = value.split("=")[0].split("^")[:3]
            found.add(" ".join(part.strip() for part in names if part.strip()))
            found.update(part for name in names for part in re.split(r"[\s,]+", name) if part)
    for keyword in _ID_KEYWORDS:
        found.update(_values(source, keyword))
    for value in _values(source, "PatientBirthDate"):
        found.update(_date_spellings(value))
    found.discard("")
    return {value for value in found if not value.upper().startswith("ANONYMOUS")}


def _values(source: Dataset | Mapping, keyword: str) -> list[str]:
    try:
        value = source.get(keyword)
    except Exception:  # noqa: BLE001 - a value pydicom cannot convert names nobody
        return []
    value = getattr(value, "value", value)
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue" else [value]
    return [str(item).strip() for item in items if str(item).strip()]


def _date_spellings(value: str) -> set[str]:
    match = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", value)
    if not match:
        return {value}
    year, month, day = match.groups()
    return {
        value,
        f"{year}-{month}-{day}",
        f"{day}.{month}.{year}",
        f"{day}/{month}/{year}",
        f"{month}/{day}/{year}",
        f"{day}-{month}-{year}",
    }

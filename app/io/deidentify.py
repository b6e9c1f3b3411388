"""De-identification of DICOM datasets per the DICOM PS3.15 Basic Application Level
Confidentiality Profile (Annex E), for exports that leave the hospital.

The profile's table (every attribute with its action code, DICOM 2026c) comes from the
maintained ``dicom-anonymizer`` package; this module applies it to a pydicom dataset, nested
sequences included:

* ``X`` remove, ``Z`` empty, ``D`` dummy value of the attribute's VR (a sequence under ``D``,
  such as an SR's Content Sequence, is kept and de-identified item by item), ``U`` a UID
  pseudonym (``app.io.pseudonym_uids``: keyed hash, the same on every call of an installation).
* Choices (``Z/D``, ``X/Z``, ``X/D``, ``X/Z/D``, ``X/Z/U*``): remove, unless the attribute is one the
  objects SynthView writes must hold (then empty, or a dummy for type 1); a reference sequence
  (``X/Z/U*``) is kept with its UIDs replaced, so references still resolve.
* Private attributes are removed. Text that stays (e.g. an SR's TEXT values) is scrubbed of the
  identifiers the dataset itself held before (``app.io.identifiers``), and of any given.

The dataset records what was done: Patient Identity Removed YES, De-identification Method and its
code, Longitudinal Temporal Information Modified REMOVED (dates are removed or emptied).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, MutableMapping

from dicomanonymizer.dicom_anonymization_databases import dicomfields_2026c as _annex_e
from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from app.io.identifiers import KnownIdentifiers
from app.io.pseudonym_uids import UidPseudonyms

DEIDENTIFICATION_METHOD = "DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile"
PSEUDONYM_PATIENT_NAME = "ANONYMOUS^"

# Action code of every attribute of the Annex E table, by tag.
_CATEGORIES = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z/D",
    "X_Z_TAGS": "X/Z",
    "X_D_TAGS": "X/D",
    "X_Z_D_TAGS": "X/Z/D",
    "X_Z_U_STAR_TAGS": "X/Z/U*",
}
ANNEX_E_ACTIONS: dict[int, str] = {}
_MASKED_ACTIONS: list[tuple[int, int, int, int, str]] = []  # group, element, masks (e.g. 60xx,4000)
for _name, _code in _CATEGORIES.items():
    for _entry in getattr(_annex_e, _name):
        if len(_entry) == 2:
            ANNEX_E_ACTIONS[(_entry[0] << 16) | _entry[1]] = _code
        else:
            _MASKED_ACTIONS.append((*_entry, _code))

# Attributes the objects SynthView writes must keep: a choice falls to empty (type 2) or to a
# dummy (type 1) for these instead of removal.
_TYPE1 = {"ContentDate", "ContentTime", "DeviceSerialNumber"}
_TYPE2 = {"ReferencedPerformedProcedureStepSequence", "ReferencedStudySequence"}
# Z attributes that get a recognisable dummy instead of an empty value.
_DUMMIES = {"PatientName": PSEUDONYM_PATIENT_NAME}
_TEXT_VRS = {"LO", "LT", "SH", "ST", "UT", "PN", "UC"}
_DUMMY_BY_VR = {
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "PN": PSEUDONYM_PATIENT_NAME,
    "AS": "000Y",
    "DS": "0",
    "IS": "0",
    "CS": "ANONYMIZED",
    "UR": "http://anonymized.invalid",
}
_NUMERIC_VRS = {"FD", "FL", "SS", "US", "SL", "UL", "SV", "UV"}


def annex_e_action(tag: int | BaseTag) -> str | None:
    """The profile's action code for ``tag`` ("X", "Z", "D", "U", "X/Z", ...), or None."""
    tag = int(tag)
    if tag in ANNEX_E_ACTIONS:
        return ANNEX_E_ACTIONS[tag]
    group, element = tag >> 16, tag & 0xFFFF
    for masked_group, masked_element, group_mask, element_mask, code in _MASKED_ACTIONS:
        if (group & group_mask) == masked_group and (element & element_mask) == masked_element:
            return code
    return None


def deidentify_dataset(
    dataset: Dataset,
    uid_map: Callable[[str], str] | MutableMapping[str, str] | None = None,
    keep: Iterable[str | int] = (),
    known: KnownIdentifiers | None = None,
) -> Dataset:
    """De-identify ``dataset`` in place (and return it).

    ``uid_map`` replaces UIDs: a ``UidPseudonyms`` (the default: this installation's keyed
    pseudonyms), or a dict, filled with those pseudonyms as a record of the map. ``keep`` names
    top-level attributes (keywords or tags) the caller wrote itself and vouches for (a SYNTHETIC
    series description, the derivation and provenance record of a synthesized series): they
    stay. ``known`` adds identifiers to scrub from the text that stays.
    """
    pseudonym = _uid_function(uid_map)
    identifiers = KnownIdentifiers.of(dataset).merged(known)
    kept = {keyword: copy.deepcopy(dataset[keyword]) for keyword in keep if keyword in dataset}
    _deidentify_level(dataset, pseudonym, identifiers)
    for element in kept.values():
        dataset[element.tag] = element
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta and "SOPInstanceUID" in dataset:
        meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = DEIDENTIFICATION_METHOD
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    dataset.DeidentificationMethodCodeSequence = Sequence([code])
    dataset.LongitudinalTemporalInformationModified = "REMOVED"
    return dataset


def _uid_function(uid_map) -> Callable[[str], str]:
    if callable(uid_map):
        return uid_map
    pseudonyms = UidPseudonyms()
    if uid_map is None:
        return pseudonyms

    def recorded(uid: str) -> str:
        if uid not in uid_map:
            uid_map[uid] = pseudonyms(uid)
        return uid_map[uid]

    return recorded


def _deidentify_level(
    dataset: Dataset, pseudonym: Callable[[str], str], identifiers: KnownIdentifiers
) -> None:
    dataset.remove_private_tags()
    for tag in list(dataset.keys()):
        element = dataset[tag]
        action = annex_e_action(tag)
        keyword = keyword_for_tag(tag)
        if action is None:
            if element.VR == "SQ":
                _each_item(element, pseudonym, identifiers)
            elif element.VR in _TEXT_VRS and element.value:
                _scrub(element, identifiers)
            continue
        if action == "X/Z/U*":
            if element.VR == "SQ":
                _each_item(element, pseudonym, identifiers)
            else:
                del dataset[tag]
            continue
        _apply(dataset, tag, element, _resolve(action, keyword, element), pseudonym, identifiers)


def _resolve(action: str, keyword: str, element) -> str:
    """One of X, Z, D, U for a profile action, given what SynthView's objects must hold."""
    if "/" not in action:
        return action
    choices = action.split("/")
    if keyword in _TYPE1 and "D" in choices:
        return "D"
    if "Z" in choices and (keyword in _TYPE2 or _is_empty(element)):
        return "Z"
    if "X" in choices:
        return "X"
    return "Z"


def _apply(dataset: Dataset, tag, element, action: str, pseudonym, identifiers: KnownIdentifiers) -> None:
    keyword = keyword_for_tag(tag)
    if action == "X":
        del dataset[tag]
    elif action == "U":
        if element.VR == "UI" and element.value:
            values = element.value if element.VM > 1 else [element.value]
            mapped = [pseudonym(str(v)) for v in values]
            element.value = mapped if element.VM > 1 else mapped[0]
        elif element.VR == "SQ":
            _each_item(element, pseudonym, identifiers)
    elif action == "Z":
        if keyword in _DUMMIES:
            element.value = _DUMMIES[keyword]
        else:
            element.value = Sequence([]) if element.VR == "SQ" else None
    elif element.VR == "SQ":  # D on a sequence: keep its items, de-identified
        _each_item(element, pseudonym, identifiers)
    elif element.VR == "UI":
        _apply(dataset, tag, element, "U", pseudonym, identifiers)
    else:
        element.value = _dummy(element.VR)


def _dummy(vr: str) -> object:
    if vr in _DUMMY_BY_VR:
        return _DUMMY_BY_VR[vr]
    if vr in _NUMERIC_VRS:
        return 0
    if vr in ("OB", "OW", "UN", "OD", "OF", "OL", "OV"):
        return b"\x00\x00"
    return "ANONYMIZED"


def _each_item(element, pseudonym, identifiers: KnownIdentifiers) -> None:
    for item in element.value or []:
        _deidentify_level(item, pseudonym, identifiers)


def _scrub(element, identifiers: KnownIdentifiers) -> None:
    if element.VM > 1:
        element.value = identifiers.scrub_all(str(v) for v in element.value)
    else:
        element.value = identifiers.scrub(str(element.value))


def _is_empty(element) -> bool:
    value = element.value
    return value is None or value == "" or value == b"" or (element.VR == "SQ" and len(value) == 0)


def identifying_values(dataset: Dataset) -> dict[str, str]:
    """The non-empty values of the profile's non-UID attributes in ``dataset`` (top level), by
    keyword (used to check that an export holds none of its source's identifying values)."""
    found: dict[str, str] = {}
    for element in dataset:
        action = annex_e_action(element.tag)
        if action is None or action == "U" or element.VR in ("SQ", "UI"):
            continue
        if element.value not in (None, "", b""):
            found[element.keyword or str(element.tag)] = str(element.value)
    return found

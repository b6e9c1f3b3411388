"""A synthesized series' provenance as SynthView records it in DICOM: the whole record, as JSON.

The Derivation Description (0008,2111) says in one line of prose who synthesized a series, for
readers and for other software; it holds only part of the record (16 hex digits of the weights
hash, no parameters or run time). The whole ``Provenance`` travels in a private block of every
instance: creator ``SYNTHVIEW PROVENANCE`` at (0077,0010), its ``to_dict()`` as JSON in
(0077,1001), UT. A reader takes it from there; a series written before the block existed
(SynthView before 2026-12) or whose block an archive dropped is read from the prose line
(``app.io.dicom_load.provenance_from_description``). The block never decides whether a series
is synthetic: the marking (``app.io.dicom_marking``) does.
"""

from __future__ import annotations

import json
from dataclasses import fields

from pydicom.dataset import Dataset
from pydicom.tag import Tag

from app.core.provenance import Provenance

PRIVATE_CREATOR = "SYNTHVIEW PROVENANCE"
CREATOR_TAG = Tag(0x0077, 0x0010)
JSON_TAG = Tag(0x0077, 0x1001)  # element 0x01 of the block reserved by CREATOR_TAG
TAGS = (CREATOR_TAG, JSON_TAG)
_MAX_JSON_BYTES = 1 << 20  # a record is a few kB; anything far larger is not ours

# The JSON type each field must have to be taken as SynthView's record.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "plugin_name": (str,),
    "plugin_version": (str,),
    "task": (str,),
    "weights_sha256": (str,),
    "device": (str,),
    "parameters": (dict,),
    "duration_s": (int, float),
    "seed": (int, type(None)),
    "source_description": (str,),
    "created_utc": (str,),
}
assert set(_FIELD_TYPES) == {f.name for f in fields(Provenance)}, "keep _FIELD_TYPES in step with Provenance"


def write_provenance(dataset: Dataset, provenance: Provenance) -> None:
    """Put ``provenance`` into ``dataset``'s SynthView block (replacing one already there)."""
    dataset.add_new(CREATOR_TAG, "LO", PRIVATE_CREATOR)
    dataset.add_new(JSON_TAG, "UT", json.dumps(provenance.to_dict(), sort_keys=True, default=str))


def read_provenance(dataset: Dataset) -> Provenance | None:
    """The record in ``dataset``'s SynthView block; None when there is none, or it is another
    creator's block, or its text is not a whole record (then the prose line is read instead)."""
    try:
        creator = _text(dataset.get(CREATOR_TAG))
        raw = dataset.get(JSON_TAG)
        raw = getattr(raw, "value", raw)
    except Exception:  # noqa: BLE001 - a value pydicom cannot convert is no record
        return None
    if creator != PRIVATE_CREATOR or raw is None:
        return None
    if isinstance(raw, bytes):  # implicit VR (a transcoded copy): a private element reads as UN
        raw = raw.decode("utf-8", errors="replace")
    text = str(raw).rstrip("\x00 ")
    if len(text) > _MAX_JSON_BYTES:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("synthetic") is not True:
        return None
    known = {name: data[name] for name in _FIELD_TYPES if name in data}
    if "plugin_name" not in known or "plugin_version" not in known:
        return None
    for name, value in known.items():  # (JSON true/false would pass for numbers: refused)
        if isinstance(value, bool) or not isinstance(value, _FIELD_TYPES[name]):
            return None
    return Provenance(**known)


def _text(element) -> str:
    value = getattr(element, "value", element)
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return "" if value is None else str(value).strip("\x00 ")

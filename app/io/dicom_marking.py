"""Whether a DICOM object says it is synthetic, wherever it says so.

A synthesized series that went through an archive comes back transcoded (implicit VR, big
endian, RLE, JPEG-LS, JPEG 2000) or rebuilt as an enhanced multi-frame object; its marking must
survive all of it. The marking is read from every place it can sit:

* Synthetic Data (0008,001C) = YES, at the top level or inside the Shared / Per-frame Functional
  Groups of an enhanced object;
* a Derivation Description or a Contributing Equipment contribution that starts "Synthesized by"
  (what SynthView writes: an archive that drops the newer Synthetic Data attribute keeps these);
* a Derivation Code Sequence holding the plugin code SynthView wrote before 2026-12 (scheme
  99SYNTHVIEW).

Image Type / Frame Type DERIVED is read too (a synthetic image is always derived; a derived one
need not be synthetic). A series is synthetic when any of its instances says so; a mixed series
gets a warning. Works on any pydicom Dataset (raw elements of the fast header reader included).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pydicom.dataset import Dataset

SYNTHVIEW_CODING_SCHEME = "99SYNTHVIEW"
SYNTHESIZED_PREFIX = "Synthesized by "
_SYNTHETIC_DATA_TAG = 0x0008001C
_GROUP_SEQUENCES = ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence")
_MAX_DEPTH = 4  # functional group -> macro sequence -> item -> nested code sequence


@dataclass(frozen=True)
class SyntheticMarking:
    """What one object (or a series of them) says about its origin."""

    synthetic: bool = False
    derived: bool = False
    derivation_description: str = ""
    said_by: str = ""  # which attribute marked it synthetic ("" when not synthetic)


def read_marking(dataset: Dataset) -> SyntheticMarking:
    """The marking of one object: top level first, then its functional groups."""
    found = _Found()
    found.visit(dataset, top_level=True)
    for keyword in _GROUP_SEQUENCES:
        for item in _items(dataset, keyword):
            for nested in _walk(item, _MAX_DEPTH):
                found.visit(nested, top_level=False)
    return SyntheticMarking(
        synthetic=bool(found.said_by),
        derived=found.derived,
        derivation_description=found.description,
        said_by=found.said_by,
    )


def is_synthetic(dataset: Dataset) -> bool:
    return read_marking(dataset).synthetic


def series_marking(markings: Iterable[SyntheticMarking]) -> tuple[SyntheticMarking, str]:
    """The marking of a series (synthetic when any instance is) and a warning for a mixed one."""
    markings = list(markings)
    synthetic = [m for m in markings if m.synthetic]
    if not synthetic:
        described = next((m.derivation_description for m in markings if m.derivation_description), "")
        return SyntheticMarking(
            derived=any(m.derived for m in markings), derivation_description=described
        ), ""
    first = synthetic[0]
    marking = SyntheticMarking(True, True, first.derivation_description, first.said_by)
    warning = ""
    if len(synthetic) < len(markings):
        warning = (
            f"mixed series: {len(synthetic)} of {len(markings)} images are marked synthetic "
            f"({first.said_by}); the whole series is treated as synthetic"
        )
    return marking, warning


class _Found:
    def __init__(self) -> None:
        self.said_by = ""
        self.derived = False
        self.description = ""

    def visit(self, item: Dataset, top_level: bool) -> None:
        where = "" if top_level else " in a functional group"
        if _text(_get(item, _SYNTHETIC_DATA_TAG)).upper() == "YES":
            self._say(f"Synthetic Data YES{where}")
        for keyword in ("ImageType", "FrameType"):
            value = _values(_get(item, keyword))
            if value and value[0].upper() == "DERIVED":
                self.derived = True
        description = _text(_get(item, "DerivationDescription"))
        if description:
            self.description = self.description or description
            if description.startswith(SYNTHESIZED_PREFIX):
                self._say(f"Derivation Description{where}")
        for code in _items(item, "DerivationCodeSequence"):
            if _text(_get(code, "CodingSchemeDesignator")) == SYNTHVIEW_CODING_SCHEME:
                self._say(f"SynthView derivation code{where}")
        for equipment in _items(item, "ContributingEquipmentSequence"):
            contribution = _text(_get(equipment, "ContributionDescription"))
            if contribution.startswith(SYNTHESIZED_PREFIX):
                self.description = self.description or contribution
                self._say("Contributing Equipment")

    def _say(self, said_by: str) -> None:
        self.said_by = self.said_by or said_by
        self.derived = True


def _walk(item: Dataset, depth: int) -> Iterator[Dataset]:
    """``item`` and the items of its sequences, ``depth`` levels down."""
    yield item
    if depth <= 0:
        return
    for element in item:
        if element.VR == "SQ" and element.value:
            for nested in element.value:
                if isinstance(nested, Dataset):
                    yield from _walk(nested, depth - 1)


def _get(dataset: Dataset, key):
    try:
        return dataset.get(key)
    except Exception:  # noqa: BLE001 - a value pydicom cannot convert is no marking
        return None


def _items(dataset: Dataset, keyword: str) -> list[Dataset]:
    value = _get(dataset, keyword)
    try:
        return [item for item in (getattr(value, "value", value) or []) if isinstance(item, Dataset)]
    except TypeError:
        return []


def _values(element) -> list[str]:
    value = getattr(element, "value", element)
    if value is None:
        return []
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str):
        return [v.strip() for v in value.split("\\")]
    try:
        return [str(v).strip() for v in value]
    except TypeError:
        return [str(value).strip()]


def _text(element) -> str:
    value = getattr(element, "value", element)
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value).strip("\x00 ").strip()

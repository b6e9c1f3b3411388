"""A label map's label table and where the map came from (a segmentation plugin's run).

A label map is derived data, neither an acquired nor a synthesized image: a Volume carrying a
``LabelMapProvenance`` (``Volume.label_map``) holds integer labels, is never marked synthetic
and is never windowed or exported as an image.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field

# Colours for labels whose manifest gives none (index = label value modulo the length).
DEFAULT_COLOURS = (
    (0, 0, 0),
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
)


@dataclass(frozen=True)
class LabelCode:
    """A coded meaning, e.g. SNOMED CT ("SCT", "8801005", "Basal ganglion") or DICOM ("DCM")."""

    scheme: str
    value: str
    meaning: str


@dataclass(frozen=True)
class LabelEntry:
    """One row of a label table: the stored value (= the network's output channel), a name,
    an RGB colour and an optional code."""

    value: int
    name: str
    colour_rgb: tuple[int, int, int]
    code: LabelCode | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["colour_rgb"] = list(self.colour_rgb)
        return data


def label_names(table: tuple[LabelEntry, ...]) -> dict[int, str]:
    return {entry.value: entry.name for entry in table}


@dataclass(frozen=True)
class LabelMapProvenance:
    """Which segmentation plugin produced a label map, from which volume, and its label table."""

    plugin_name: str
    plugin_version: str
    labels: tuple[LabelEntry, ...]
    weights_sha256: str = ""
    device: str = ""
    source_description: str = ""
    parameters: dict = field(default_factory=dict)
    duration_s: float = 0.0
    created_utc: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    # The segmented image was synthesized: the labels describe a generator's output, not the
    # patient as acquired (the map itself is still no synthetic image).
    source_synthetic: bool = False

    kind = "derived label map"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["labels"] = [entry.to_dict() for entry in self.labels]
        return {"kind": self.kind, "synthetic": False, **data}

    @classmethod
    def from_dict(cls, data: dict) -> LabelMapProvenance:
        """The record ``to_dict`` wrote (a NIfTI sidecar's ``LabelMap``); unknown keys ignored."""
        labels = tuple(
            LabelEntry(
                value=int(entry["value"]),
                name=str(entry["name"]),
                colour_rgb=tuple(int(c) for c in entry.get("colour_rgb") or DEFAULT_COLOURS[int(entry["value"]) % len(DEFAULT_COLOURS)]),
                code=LabelCode(**entry["code"]) if isinstance(entry.get("code"), dict) else None,
            )
            for entry in data.get("labels") or ()
        )
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "labels"}
        return cls(**{"plugin_name": "", "plugin_version": "", **known, "labels": labels})

    def label(self) -> str:
        """The on-screen label of a panel showing the map."""
        of = " of a SYNTHETIC image" if self.source_synthetic else ""
        return f"LABEL MAP — {self.plugin_name} {self.plugin_version} (derived{of}, not an image)"

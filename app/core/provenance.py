"""Provenance of a synthesized volume: which generator made it, how, and when.

A Volume with a Provenance is synthetic for the rest of its life: the viewer labels it, every
export marks it (DICOM Synthetic Data = YES, derived series, NIfTI JSON sidecar).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, field, replace

UNKNOWN_GENERATOR = "unknown generator"  # synthetic by its marking, generator not named


@dataclass(frozen=True)
class Provenance:
    plugin_name: str
    plugin_version: str
    task: str = ""
    weights_sha256: str = ""
    device: str = ""
    parameters: dict = field(default_factory=dict)
    duration_s: float = 0.0
    seed: int | None = None
    source_description: str = ""
    created_utc: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))

    def to_dict(self) -> dict:
        return {"synthetic": True, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> Provenance:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def deidentified(self) -> Provenance:
        """The record a de-identified export carries: no dates, nor the source's description
        (it may name the patient); the generator and how it ran stay."""
        return replace(self, source_description="(removed: de-identified export)", created_utc="")

    def label(self) -> str:
        """The on-screen label of every panel that shows this volume."""
        return f"SYNTHETIC — {self.plugin_name} {self.plugin_version}".strip()

    def derivation_description(self, dated: bool = True) -> str:
        """One line for DICOM DerivationDescription (at most 1024 characters); ``dated=False``
        leaves the creation time out (de-identified exports carry no dates)."""
        if self.plugin_name == UNKNOWN_GENERATOR:
            # Marked synthetic by other software: keep its own description, said once.
            prefix = f"Synthesized by {UNKNOWN_GENERATOR}"
            original = self.source_description
            return (original if original.startswith(prefix) else f"{prefix}: {original}".rstrip(": "))[:1024]
        text = (
            f"Synthesized by {self.plugin_name} {self.plugin_version}"
            f" ({self.task}); weights sha256 {self.weights_sha256[:16]}; device {self.device};"
            f" seed {self.seed}; {self.created_utc if dated else 'date removed'}"
        )
        return text[:1024]

"""Lesion checklist and radiologist sign-off, recorded in an append-only audit log (JSON lines).

Findings marked on the original are confirmed one by one on the synthesized output (present,
absent, altered, uncertain). Every action is appended as one JSON line carrying the SHA-256 of the previous
line, so an edited or deleted entry breaks the chain and ``verify`` reports where. The file is
only ever opened for appending.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

FINDING_STATES = ("present", "absent", "altered", "uncertain")
GENESIS = "0" * 64


@dataclass(frozen=True)
class Finding:
    """A finding marked on the original: where (LPS mm) and what."""

    finding_id: str
    centroid_lps_mm: tuple[float, float, float]
    description: str = ""
    diameter_mm: float = 0.0


class AuditLog:
    """An append-only JSON-lines log with a hash chain."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def _last_hash(self) -> str:
        if not self.path.exists():
            return GENESIS
        last = ""
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    last = line.rstrip("\n")
        return hashlib.sha256(last.encode()).hexdigest() if last else GENESIS

    def append(self, action: str, user: str, **details) -> dict:
        """Append one entry (UTC timestamp, user, action, details, hash of the previous line)."""
        if not user.strip():
            raise ValueError("an audit entry needs the name of the person acting")
        entry = {
            "time_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "user": user,
            "action": action,
            **details,
            "previous_sha256": self._last_hash(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True) + "\n")
        return entry

    def verify(self) -> list[str]:
        """Problems with the chain (empty when intact)."""
        problems = []
        previous = GENESIS
        if not self.path.exists():
            return problems
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate((raw.rstrip("\n") for raw in handle if raw.strip()), start=1):
                try:
                    entry = json.loads(line)
                except ValueError:
                    problems.append(f"line {number}: not JSON")
                    previous = hashlib.sha256(line.encode()).hexdigest()
                    continue
                if entry.get("previous_sha256") != previous:
                    problems.append(f"line {number}: chain broken (an earlier line was edited or removed)")
                previous = hashlib.sha256(line.encode()).hexdigest()
        return problems


def case_id_for(original, synthesized) -> str:
    """A case identifier for one original/synthesized pair: names, plugin and time of synthesis.

    Duck-typed on Volume (``name``, ``provenance``) so this module stays free of app.core.
    """
    provenance = getattr(synthesized, "provenance", None)
    parts = [original.name or "original", synthesized.name or "synthesized"]
    if provenance is not None:
        parts += [f"{provenance.plugin_name} {provenance.plugin_version}", provenance.created_utc]
    return " | ".join(parts)


class LesionChecklist:
    """Findings of the original, each to be confirmed on the output, then signed off."""

    def __init__(self, log: AuditLog, case_id: str, findings: list[Finding]):
        self.log = log
        self.case_id = case_id
        self.findings = {f.finding_id: f for f in findings}

    @classmethod
    def from_log(cls, log: AuditLog, case_id: str) -> LesionChecklist:
        """The checklist of ``case_id`` as recorded so far (findings marked with ``mark``)."""
        findings = []
        for entry in log.entries():
            if entry.get("case_id") == case_id and entry.get("action") == "mark_finding":
                data = entry["finding"]
                findings.append(
                    Finding(
                        data["finding_id"],
                        tuple(float(v) for v in data["centroid_lps_mm"]),
                        data.get("description", ""),
                        float(data.get("diameter_mm", 0.0)),
                    )
                )
        return cls(log, case_id, findings)

    def next_finding_id(self) -> str:
        return f"F{len(self.findings) + 1}"

    def mark(self, centroid_lps_mm, description: str, user: str, diameter_mm: float = 0.0) -> Finding:
        """Record a finding seen on the original (where, in LPS mm, and what); refused after sign-off."""
        if self.is_signed_off():
            raise ValueError("this case is signed off; no more findings can be added")
        finding = Finding(
            self.next_finding_id(),
            tuple(float(v) for v in centroid_lps_mm),
            description.strip(),
            float(diameter_mm),
        )
        self.log.append("mark_finding", user, case_id=self.case_id, finding=asdict(finding))
        self.findings[finding.finding_id] = finding
        return finding

    def states(self) -> dict[str, str]:
        """The latest recorded state of every finding ("" when not yet reviewed)."""
        result = {finding_id: "" for finding_id in self.findings}
        for entry in self.log.entries():
            if entry.get("case_id") == self.case_id and entry.get("action") == "confirm_finding":
                result[entry["finding_id"]] = entry["state"]
        return result

    def confirm(self, finding_id: str, state: str, user: str, note: str = "") -> dict:
        if self.is_signed_off():
            raise ValueError("this case is signed off; its findings can no longer be changed")
        if finding_id not in self.findings:
            raise KeyError(f"no finding {finding_id!r} in case {self.case_id}")
        if state not in FINDING_STATES:
            raise ValueError(f"state must be one of {FINDING_STATES}, not {state!r}")
        finding = asdict(self.findings[finding_id])
        return self.log.append(
            "confirm_finding",
            user,
            case_id=self.case_id,
            finding_id=finding_id,
            state=state,
            note=note,
            finding=finding,
        )

    def sign_off(self, user: str, statement: str = "") -> dict:
        """Record the reading radiologist's sign-off; refused until every finding is reviewed."""
        if self.is_signed_off():
            raise ValueError("this case is already signed off")
        missing = [fid for fid, state in self.states().items() if not state]
        if missing:
            raise ValueError(f"cannot sign off: findings not reviewed: {', '.join(missing)}")
        return self.log.append(
            "sign_off", user, case_id=self.case_id, states=self.states(), statement=statement
        )

    def is_signed_off(self) -> bool:
        return any(
            e.get("case_id") == self.case_id and e.get("action") == "sign_off" for e in self.log.entries()
        )

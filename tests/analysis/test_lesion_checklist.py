"""Lesion checklist: findings marked, reloaded from the log, confirmed, signed off and then locked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.analysis.audit_log import AuditLog, LesionChecklist, case_id_for
from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume


def test_marked_findings_come_back_from_the_log_and_sign_off_locks_the_case(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    checklist = LesionChecklist.from_log(log, "case-1")
    assert checklist.findings == {}
    first = checklist.mark((1.0, -2.5, 30.0), " nodule ", "dr.b", diameter_mm=6)
    checklist.mark([4, 5, 6], "cyst", "dr.b")
    assert first.finding_id == "F1" and first.description == "nodule"

    again = LesionChecklist.from_log(log, "case-1")  # e.g. after the viewer was restarted
    assert list(again.findings) == ["F1", "F2"] and again.findings["F1"] == first
    assert LesionChecklist.from_log(log, "case-2").findings == {}  # other cases do not mix in

    again.confirm("F1", "present", "dr.b")
    again.confirm("F2", "uncertain", "dr.b", note="faint on output")
    again.sign_off("dr.b", "checked against the original")
    for attempt in (
        lambda: again.confirm("F1", "absent", "dr.b"),
        lambda: again.mark((0, 0, 0), "late", "dr.b"),
        lambda: again.sign_off("dr.b"),
    ):
        with pytest.raises(ValueError, match="signed off"):
            attempt()
    actions = [json.loads(line)["action"] for line in log.path.read_text().splitlines()]
    assert actions == ["mark_finding", "mark_finding", "confirm_finding", "confirm_finding", "sign_off"]
    assert log.verify() == []


def test_case_id_names_the_pair_and_the_synthesis():
    grid = Geometry.identity()
    original = Volume(np.zeros((1, 2, 2), np.float32), grid, "MR", name="T1 head")
    synthesized = original.with_voxels(
        original.voxels,
        name="sCT",
        provenance=Provenance("mr2ct", "1.2", created_utc="2026-01-01T00:00:00+00:00"),
    )
    case_id = case_id_for(original, synthesized)
    assert case_id == "T1 head | sCT | mr2ct 1.2 | 2026-01-01T00:00:00+00:00"

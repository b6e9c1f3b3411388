"""Lesion checklist as a reader uses it: mark at the cursor, confirm on the output, sign off."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6 import QtCore

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.ui.hallucination_checklist import install_lesion_checklist
from app.ui.hallucination_panel import install_hallucination_panel

LEFT = QtCore.Qt.MouseButton.LeftButton


@pytest.fixture
def pair():
    geometry = Geometry(np.array([-20.0, -30.0, 5.0]), np.array([1.0, 1.0, 2.0]), np.eye(3))
    voxels = np.random.default_rng(0).uniform(0, 100, (8, 40, 40)).astype(np.float32)
    original = Volume(voxels, geometry, "MR", name="T1")
    synthesized = original.with_voxels(
        voxels * 0.9, name="pseudo-healthy", provenance=Provenance("eraser", "0.1")
    )
    return original, synthesized


def _click_row(qtbot, table, row: int) -> None:
    rect = table.visualRect(table.model().index(row, 0))
    qtbot.mouseClick(table.viewport(), LEFT, pos=rect.center())


def test_mark_confirm_and_sign_off_are_logged_and_locked(qtbot, main_window, pair, tmp_path):
    original, synthesized = pair
    install_hallucination_panel(main_window)
    checklist = install_lesion_checklist(main_window)
    log_path = tmp_path / "audit.jsonl"
    checklist.set_log_path(log_path)
    assert not checklist.mark_button.isEnabled()  # nothing compared yet
    main_window.show_compare(original, [synthesized])
    assert checklist.mark_button.isEnabled() and "eraser 0.1" in checklist.case_label.text()

    nodule = original.geometry.lps_from_index([10, 12, 3])
    cyst = original.geometry.lps_from_index([30, 25, 6])
    main_window.state.set_cursor(nodule)
    qtbot.keyClicks(checklist.label_edit, "nodule")
    qtbot.mouseClick(checklist.mark_button, LEFT)
    assert "name first" in checklist.status_label.text() and checklist.table.rowCount() == 0
    qtbot.keyClicks(checklist.reader_edit, "Dr. Reader")
    qtbot.mouseClick(checklist.mark_button, LEFT)
    main_window.state.set_cursor(cyst)
    qtbot.keyClicks(checklist.label_edit, "cyst")
    qtbot.keyClick(checklist.label_edit, QtCore.Qt.Key.Key_Return)  # Enter marks too
    assert checklist.table.rowCount() == 2
    assert [float(v) for v in checklist.table.item(0, 2).text().split()] == pytest.approx(nodule, abs=0.05)
    assert checklist.table.item(1, 3).text() == "to review"

    qtbot.mouseClick(checklist.sign_off_button, LEFT)
    assert "not reviewed: F1, F2" in checklist.status_label.text()

    _click_row(qtbot, checklist.table, 0)  # the cursor goes back to the finding
    assert np.allclose(main_window.state.cursor_lps_mm, nodule, atol=0.5)
    qtbot.mouseClick(checklist.state_buttons["present"], LEFT)
    assert np.allclose(main_window.state.cursor_lps_mm, cyst, atol=0.5)  # on to the next finding
    qtbot.mouseClick(checklist.state_buttons["uncertain"], LEFT)
    assert [checklist.table.item(r, 3).text() for r in (0, 1)] == ["present", "uncertain"]

    qtbot.keyClicks(checklist.statement_edit, "no hallucinated lesion")
    qtbot.mouseClick(checklist.sign_off_button, LEFT)
    assert "Signed off by Dr. Reader" in checklist.status_label.text()
    assert not checklist.mark_button.isEnabled() and not checklist.state_buttons["absent"].isEnabled()
    assert checklist.chain_label.text().endswith("chain intact")
    checklist.resize(420, 600)
    checklist.grab().save("/tmp/lesion_checklist.png")

    entries = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [e["action"] for e in entries] == ["mark_finding"] * 2 + ["confirm_finding"] * 2 + ["sign_off"]
    assert (
        entries[-1]["states"] == {"F1": "present", "F2": "uncertain"} and entries[-1]["user"] == "Dr. Reader"
    )

    # Another pair has its own (empty) checklist; coming back reloads this one from the log.
    other = synthesized.with_voxels(
        synthesized.voxels, name="other run", provenance=Provenance("eraser", "0.2")
    )
    main_window.show_compare(original, [other])
    assert checklist.table.rowCount() == 0 and checklist.mark_button.isEnabled()
    main_window.show_compare(original, [synthesized])
    assert checklist.table.rowCount() == 2 and "Signed off by Dr. Reader" in checklist.status_label.text()

    # An edited log line is caught by the hash chain.
    lines = log_path.read_text().splitlines()
    lines[2] = lines[2].replace('"present"', '"absent"')
    log_path.write_text("\n".join(lines) + "\n")
    checklist.refresh()
    assert "TAMPERED" in checklist.chain_label.text()

"""File > Open batch results: the table sorts by any column as numbers, a failed case says why,
and a double-click opens the case in the compare layout (input | synthesized, labelled)."""

from __future__ import annotations

import json

import pytest
from PySide6 import QtCore

from app.batch.case_run import run_case
from app.batch.cases import Case
from app.batch.cohort import spec_for_plugin
from app.batch.results import CaseRow, write_results
from app.io.loader import load_volume
from tests.batch.cohort_factory import write_cohort

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def batch_out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch")
    paths = write_cohort(folder / "in", 2)
    out = folder / "out"
    spec = spec_for_plugin("mr-t1-denoise", "cpu", compare=True)
    rows = [CaseRow.from_dict(run_case(Case(p.name[:6], str(p)), spec, str(out))) for p in paths]
    rows.append(CaseRow("bad", str(folder / "bad.nii"), None, "failed", reason="not a readable NIfTI image"))
    rows[0].region_count, rows[1].region_count = 3, 12  # sorting is by number, not text ("12" < "3")
    write_results(out, rows)
    return out


def test_the_table_sorts_as_numbers_and_opens_a_case_in_compare(qtbot, main_window, batch_out):
    from app.ui.batch_results import open_batch_results

    main_window.loader = load_volume
    main_window.batch_dialogs = []
    dialog = open_batch_results(main_window, batch_out)
    qtbot.addWidget(dialog)
    qtbot.waitExposed(dialog)
    assert dialog.table.rowCount() == 3
    header = dialog.table.horizontalHeader()
    qtbot.mouseClick(header.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(header.sectionPosition(2) + 5, 5))
    order = [dialog.table.item(r, 0).text() for r in range(3)]
    counts = [dialog.table.item(r, 2).text() for r in range(3)]
    assert counts[:2] in (["3", "12"], ["12", "3"]) and counts[2] == ""  # empty (failed) last
    assert order[:2] in (["case00", "case01"], ["case01", "case00"])
    failed = next(r for r in range(3) if dialog.table.item(r, 0).text() == "bad")
    dialog._open_row(failed)
    assert "bad has no output: not a readable NIfTI image" in dialog.status.text()
    target = next(r for r in range(3) if dialog.table.item(r, 0).text() == "case01")
    rect = dialog.table.visualItemRect(dialog.table.item(target, 0))
    qtbot.mouseClick(dialog.table.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=rect.center())  # select
    qtbot.mouseDClick(dialog.table.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: main_window.session.pair is not None or "Cannot" in dialog.status.text(), timeout=30000)
    assert main_window.session.pair is not None, dialog.status.text()
    original, synthesized = main_window.session.pair
    assert synthesized.is_synthetic and synthesized.provenance.plugin_name == "mr-t1-denoise"
    assert original.voxels.shape == synthesized.voxels.shape
    assert json.loads((batch_out / "results.json").read_text())["summary"]["failed"] == 1


def test_a_folder_without_results_is_refused_with_a_message(qtbot, main_window, tmp_path, monkeypatch):
    from PySide6 import QtWidgets

    from app.ui.batch_results import open_batch_results

    shown = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", lambda *args: shown.append(args[2]))
    main_window.batch_dialogs = []
    assert open_batch_results(main_window, tmp_path) is None
    assert "holds no batch results" in shown[0]


def test_the_file_menu_offers_batch_results(main_window):
    from app.ui.batch_results import install_batch_results_menu

    action = install_batch_results_menu(main_window)
    file_menu = next(a.menu() for a in main_window.menuBar().actions() if a.menu() and "File" in a.menu().title())
    assert action in file_menu.actions()

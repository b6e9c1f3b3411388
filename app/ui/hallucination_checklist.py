"""Lesion checklist dock: mark findings on the original, confirm each on the output, sign off.

A thin Qt adapter over ``app.analysis.audit_log``: every action is appended to the hash-chained
audit log at once (nothing is held only in the widget), and the checklist of the compared pair
is reloaded from the log whenever the compare changes. A finding's location is the shared
cursor (LPS mm) when it is marked; selecting a finding moves the cursor back there so the
reader sees the same place in the synthesized panels before confirming.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtWidgets

from app.analysis.audit_log import FINDING_STATES, AuditLog, LesionChecklist, case_id_for
from app.core.volume import Volume

PairProvider = Callable[[], tuple[Volume, Volume] | None]
CursorProvider = Callable[[], np.ndarray | None]


def default_log_path() -> Path:
    """The per-user audit log (application data folder)."""
    base = QtCore.QStandardPaths.writableLocation(QtCore.QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".synthview") / "audit" / "lesion_checklist.jsonl"


class LesionChecklistPanel(QtWidgets.QWidget):
    finding_activated = QtCore.Signal(object)  # np.ndarray (3,) LPS mm

    def __init__(
        self,
        pair_provider: PairProvider | None = None,
        cursor_provider: CursorProvider | None = None,
        log_path: str | Path | None = None,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.pair_provider = pair_provider or (lambda: None)
        self.cursor_provider = cursor_provider or (lambda: None)
        self.log = AuditLog(log_path or default_log_path())
        self.checklist: LesionChecklist | None = None

        self.case_label = QtWidgets.QLabel("No compare open.")
        self.case_label.setWordWrap(True)
        self.reader_edit = QtWidgets.QLineEdit()
        self.reader_edit.setPlaceholderText("Reading radiologist's name")
        self.label_edit = QtWidgets.QLineEdit()
        self.label_edit.setPlaceholderText("Finding, e.g. 8 mm nodule right lower lobe")
        self.mark_button = QtWidgets.QPushButton("Mark finding at cursor")
        self.mark_button.setToolTip("Record a finding of the ORIGINAL at the current cursor position")
        self.mark_button.clicked.connect(self.mark_at_cursor)
        self.label_edit.returnPressed.connect(self.mark_at_cursor)

        self.table = QtWidgets.QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["ID", "Finding", "LPS (mm)", "On output"])
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.cellClicked.connect(lambda row, _column: self.activate_finding(row))

        self.state_buttons: dict[str, QtWidgets.QPushButton] = {}
        states_row = QtWidgets.QHBoxLayout()
        for state in FINDING_STATES:
            button = QtWidgets.QPushButton(state.capitalize())
            button.setToolTip(f"The selected finding is {state} on the synthesized output")
            button.clicked.connect(lambda checked=False, s=state: self.confirm_selected(s))
            self.state_buttons[state] = button
            states_row.addWidget(button)

        self.statement_edit = QtWidgets.QLineEdit()
        self.statement_edit.setPlaceholderText("Sign-off statement (optional)")
        self.sign_off_button = QtWidgets.QPushButton("Sign off")
        self.sign_off_button.clicked.connect(self.sign_off)
        sign_row = QtWidgets.QHBoxLayout()
        sign_row.addWidget(self.statement_edit, 1)
        sign_row.addWidget(self.sign_off_button)

        self.status_label = QtWidgets.QLabel("")
        self.status_label.setWordWrap(True)
        self.chain_label = QtWidgets.QLabel("")
        self.chain_label.setWordWrap(True)

        form = QtWidgets.QFormLayout()
        form.addRow("Reader", self.reader_edit)
        form.addRow("Finding", self.label_edit)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.case_label)
        layout.addLayout(form)
        layout.addWidget(self.mark_button)
        layout.addWidget(self.table, 1)
        layout.addWidget(QtWidgets.QLabel("Confirm the selected finding on the output:"))
        layout.addLayout(states_row)
        layout.addLayout(sign_row)
        layout.addWidget(self.status_label)
        layout.addWidget(self.chain_label)
        self.refresh()

    # ----- model ----------------------------------------------------------------------------
    def set_log_path(self, path: str | Path) -> None:
        self.log = AuditLog(path)
        self.refresh()

    def refresh(self) -> None:
        """Reload the compared pair's checklist from the audit log and show it."""
        pair = self.pair_provider()
        if pair is None:
            self.checklist = None
            self.case_label.setText("Open a compare (original and synthesized) to review findings.")
        else:
            case_id = case_id_for(*pair)
            if (
                self.checklist is None
                or self.checklist.case_id != case_id
                or self.checklist.log is not self.log
            ):
                self.checklist = LesionChecklist.from_log(self.log, case_id)
            self.case_label.setText(f"Case: {case_id}")
        self._fill()

    def _reader(self) -> str | None:
        reader = self.reader_edit.text().strip()
        if not reader:
            self.status_label.setText("Enter your name first: every entry is signed.")
            self.reader_edit.setFocus()
            return None
        return reader

    def _act(self, action: Callable[[], object], done: str) -> bool:
        """Run one checklist action; a refusal (not reviewed, signed off) becomes the status text."""
        try:
            action()
        except (ValueError, KeyError, OSError) as error:
            self.status_label.setText(str(error).strip("'\""))
            return False
        self.status_label.setText(done)
        self._fill()
        return True

    def mark_at_cursor(self) -> bool:
        """Record a finding of the original at the cursor, with the typed label."""
        if self.checklist is None:
            self.status_label.setText("Open a compare first.")
            return False
        reader = self._reader()
        cursor = self.cursor_provider()
        if reader is None or cursor is None:
            return False
        label = self.label_edit.text().strip()
        if not label:
            self.status_label.setText("Type what the finding is, then mark it.")
            self.label_edit.setFocus()
            return False
        done = self._act(
            lambda: self.checklist.mark(np.asarray(cursor, float), label, reader), f"Marked: {label}"
        )
        if done:
            self.label_edit.clear()
            self.table.selectRow(self.table.rowCount() - 1)
        return done

    def selected_finding_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 0).text() if rows else None

    def confirm_selected(self, state: str) -> bool:
        finding_id = self.selected_finding_id()
        if self.checklist is None or finding_id is None:
            self.status_label.setText("Select a finding first.")
            return False
        reader = self._reader()
        if reader is None:
            return False
        row = self.table.currentRow()
        done = self._act(lambda: self.checklist.confirm(finding_id, state, reader), f"{finding_id}: {state}")
        if done and row + 1 < self.table.rowCount():
            self.activate_finding(row + 1)  # on to the next finding
        return done

    def sign_off(self) -> bool:
        if self.checklist is None:
            self.status_label.setText("Open a compare first.")
            return False
        reader = self._reader()
        if reader is None:
            return False
        statement = self.statement_edit.text().strip()
        return self._act(lambda: self.checklist.sign_off(reader, statement), f"Signed off by {reader}.")

    def activate_finding(self, row: int) -> None:
        if self.checklist is None or not 0 <= row < self.table.rowCount():
            return
        self.table.selectRow(row)
        finding = self.checklist.findings[self.table.item(row, 0).text()]
        self.finding_activated.emit(np.asarray(finding.centroid_lps_mm, dtype=float))

    # ----- view -----------------------------------------------------------------------------
    def _fill(self) -> None:
        checklist = self.checklist
        findings = list(checklist.findings.values()) if checklist else []
        states = checklist.states() if checklist else {}
        selected = self.selected_finding_id()
        self.table.setRowCount(len(findings))
        for row, finding in enumerate(findings):
            cells = (
                finding.finding_id,
                finding.description,
                " ".join(f"{v:.1f}" for v in finding.centroid_lps_mm),
                states.get(finding.finding_id, "") or "to review",
            )
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QtWidgets.QTableWidgetItem(text))
            if finding.finding_id == selected:
                self.table.selectRow(row)
        self.table.resizeColumnsToContents()
        signed = checklist is not None and checklist.is_signed_off()
        open_case = checklist is not None and not signed
        for widget in (self.mark_button, self.label_edit, self.sign_off_button, self.statement_edit):
            widget.setEnabled(open_case)
        for button in self.state_buttons.values():
            button.setEnabled(open_case and bool(findings))
        if signed:
            entry = next(
                e
                for e in reversed(self.log.entries())
                if e.get("case_id") == checklist.case_id and e.get("action") == "sign_off"
            )
            self.status_label.setText(f"Signed off by {entry['user']} at {entry['time_utc']} (locked).")
        problems = self.log.verify()
        self.chain_label.setText(
            f"Audit log {self.log.path.name}: "
            + ("chain intact" if not problems else "TAMPERED — " + "; ".join(problems))
        )
        self.chain_label.setStyleSheet("" if not problems else "color: #e04040; font-weight: bold")


def install_lesion_checklist(window, log_path: str | Path | None = None) -> LesionChecklistPanel:
    """Dock the checklist: the pair is the compare's, the location the shared cursor."""

    def pair() -> tuple[Volume, Volume] | None:
        return window.session.pair

    def cursor() -> np.ndarray | None:
        return None if window.state is None else np.asarray(window.state.cursor_lps_mm, dtype=float)

    panel = LesionChecklistPanel(pair, cursor, log_path)

    def go_to(lps_mm: np.ndarray) -> None:
        if window.state is not None:
            window.state.set_cursor(lps_mm)

    panel.finding_activated.connect(go_to)
    window.view_changed.connect(panel.refresh)
    panel.refresh()  # built when first shown: the compare may be open already
    window.add_dock(panel, "Lesion checklist")
    return panel

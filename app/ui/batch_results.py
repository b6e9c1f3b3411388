"""File > Open batch results: a batch run's results table, sortable by any column; a double-click
opens that case (input and synthesized output) in the compare layout.

The table comes from ``app.batch.results`` (plain data); volumes are loaded off the UI thread
through the window's injected loader.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from app.batch.results import CaseRow, read_results

COLUMNS: tuple[tuple[str, str], ...] = (
    ("case", "case_id"),
    ("status", "status"),
    ("flagged regions", "region_count"),
    ("largest |peak|", "max_abs_peak"),
    ("domain warnings", "ood_warnings"),
    ("MAE", "mae"),
    ("PSNR (dB)", "psnr_db"),
    ("SSIM", "ssim"),
    ("NCC", "ncc"),
    ("time (s)", "duration_s"),
    ("reason", "reason"),
)


STATUS_SHOWN = {"done": "done", "skipped": "done (earlier run)", "failed": "failed"}


def _value(row: CaseRow, key: str):
    if key == "status":
        return STATUS_SHOWN.get(row.status, row.status)
    if key in ("mae", "psnr_db", "ssim", "ncc"):
        return (row.metrics or {}).get(key)
    return getattr(row, key)


class _Item(QtWidgets.QTableWidgetItem):
    """Sorts numbers as numbers (empty cells last), text as text."""

    def __init__(self, value) -> None:
        text = "" if value is None else (f"{value:.4g}" if isinstance(value, float) else str(value))
        super().__init__(text)
        self.sort_key = value
        self.setFlags(self.flags() & ~QtCore.Qt.ItemFlag.ItemIsEditable)

    def __lt__(self, other) -> bool:
        mine, theirs = self.sort_key, getattr(other, "sort_key", None)
        if isinstance(mine, int | float) and isinstance(theirs, int | float):
            return mine < theirs
        if mine is None or theirs is None:
            return mine is not None and theirs is None
        return str(mine) < str(theirs)


class _CaseLoader(QtCore.QRunnable):
    class Signals(QtCore.QObject):
        loaded = QtCore.Signal(object, object)
        failed = QtCore.Signal(str)

    def __init__(self, loader, original: tuple[str, str | None], synthesized: str) -> None:
        super().__init__()
        self.loader, self.original, self.synthesized = loader, original, synthesized
        self.signals = self.Signals()

    def run(self) -> None:
        try:
            original = self.loader(*self.original)
            synthesized = self.loader(self.synthesized, None)
        except Exception as error:  # noqa: BLE001 - shown in the dialog, never a crash
            self.signals.failed.emit(f"{type(error).__name__}: {error}")
            return
        self.signals.loaded.emit(original, synthesized)


class BatchResultsDialog(QtWidgets.QDialog):
    def __init__(self, out_dir: str | Path, window=None, parent=None) -> None:
        super().__init__(parent)
        self.out_dir = Path(out_dir)
        self.window_ = window
        self.rows = read_results(self.out_dir)
        self.setWindowTitle(f"Batch results: {self.out_dir.name}")
        layout = QtWidgets.QVBoxLayout(self)
        done = sum(r.status in ("done", "skipped") for r in self.rows)
        self.summary = QtWidgets.QLabel(
            f"{len(self.rows)} case(s): {done} finished, {len(self.rows) - done} failed. Outputs are SYNTHETIC."
            " Click a column to sort; double-click a case to open it in the compare layout."
        )
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.table = QtWidgets.QTableWidget(len(self.rows), len(COLUMNS))
        self.table.setHorizontalHeaderLabels([title for title, _ in COLUMNS])
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        for r, row in enumerate(self.rows):
            for c, (_, key) in enumerate(COLUMNS):
                item = _Item(_value(row, key))
                item.setData(QtCore.Qt.ItemDataRole.UserRole, row.case_id)
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        self.table.sortItems(2, QtCore.Qt.SortOrder.DescendingOrder)  # most flagged regions first
        self.table.resizeColumnsToContents()
        self.table.cellDoubleClicked.connect(self._open_row)
        layout.addWidget(self.table)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.resize(900, 480)

    def row_for(self, table_row: int) -> CaseRow:
        case_id = self.table.item(table_row, 0).data(QtCore.Qt.ItemDataRole.UserRole)
        return next(r for r in self.rows if r.case_id == case_id)

    def _open_row(self, table_row: int, _column: int = 0) -> None:
        row = self.row_for(table_row)
        if row.status == "failed" or not row.output:
            self.status.setText(f"{row.case_id} has no output: {row.reason}")
            return
        if self.window_ is None:
            return
        self.status.setText(f"Opening {row.case_id}...")
        task = _CaseLoader(self.window_.loader, (row.path, row.series_uid), str(self.out_dir / row.output))
        task.signals.loaded.connect(self._show)
        task.signals.failed.connect(lambda message: self.status.setText(f"Cannot open {row.case_id}: {message}"))
        self._task = task
        QtCore.QThreadPool.globalInstance().start(task)

    def _show(self, original, synthesized) -> None:
        self.status.setText("")
        self.window_.show_compare(original, [synthesized])


def install_batch_results_menu(window) -> QtGui.QAction:
    """File > Open batch results... (a `batch synthesize` output folder)."""
    file_menu = next(
        a.menu() for a in window.menuBar().actions() if a.menu() is not None and a.menu().title().replace("&", "") == "File"
    )
    action = QtGui.QAction("Open batch results...", window)
    window.batch_dialogs = []

    def choose() -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(window, "Batch output folder")
        if folder:
            open_batch_results(window, folder)

    action.triggered.connect(choose)
    actions = file_menu.actions()
    file_menu.insertAction(actions[3] if len(actions) > 3 else None, action)
    return action


def open_batch_results(window, folder: str | Path) -> BatchResultsDialog | None:
    try:
        dialog = BatchResultsDialog(folder, window, window)
    except ValueError as error:
        QtWidgets.QMessageBox.warning(window, "Cannot open the batch results", str(error))
        return None
    dialog.show()
    window.batch_dialogs.append(dialog)
    return dialog

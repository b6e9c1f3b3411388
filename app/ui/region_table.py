"""A sortable table of regions (residual or segmentation disagreement) for the check dock.

One row per region; numbers sort as numbers; each row remembers its region's index in the
result it was filled from, so a click after sorting still goes to the right region. Centroids
are shown in LPS millimetres, as the compare CLI prints them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6 import QtCore, QtWidgets


class RegionItem(QtWidgets.QTableWidgetItem):
    """A cell that sorts numbers as numbers and remembers its region's index in the result."""

    def __init__(self, value, region_index: int) -> None:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        if isinstance(value, float) and math.isnan(value):
            text = "—"  # not measured (a region outside the plugin's input range has no z): not "nan"
        super().__init__(text)
        self.sort_key = value
        self.setData(QtCore.Qt.ItemDataRole.UserRole, region_index)
        if isinstance(value, float | int) and not isinstance(value, bool):
            self.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other) -> bool:
        mine, theirs = self.sort_key, getattr(other, "sort_key", None)
        if isinstance(mine, float | int) and isinstance(theirs, float | int):
            mine = -math.inf if isinstance(mine, float) and math.isnan(mine) else mine
            theirs = -math.inf if isinstance(theirs, float) and math.isnan(theirs) else theirs
            return bool(mine < theirs)
        return bool(str(mine) < str(theirs))


def centroid_text(lps_mm: Sequence[float]) -> str:
    """'L P S' in mm, one decimal: how the region tables and the CLI give a centroid."""
    return " ".join(f"{v:.1f}" for v in lps_mm)


def region_table(headers: Sequence[str]) -> QtWidgets.QTableWidget:
    """A read-only, row-selecting, header-sortable table."""
    table = QtWidgets.QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.setSortingEnabled(True)
    table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def fit_last_column(table: QtWidgets.QTableWidget) -> None:
    """Wrap the last column's text inside the table's width (no sideways scrolling for a long
    'grey matter -> white matter; ...'); each cell keeps its whole text as a tooltip."""
    header = table.horizontalHeader()
    header.setSectionResizeMode(table.columnCount() - 1, QtWidgets.QHeaderView.ResizeMode.Stretch)
    table.setWordWrap(True)
    table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    for row in range(table.rowCount()):
        item = table.item(row, table.columnCount() - 1)
        if item is not None:
            item.setToolTip(item.text())
    table.resizeRowsToContents()


def legend_swatch(rgb: Sequence[int]) -> str:
    """A colour square for a rich-text legend, on a dark backing so that a white or pale label
    colour (white matter) shows on the light theme too."""
    r, g, b = rgb
    return f'<span style="background-color: #303030; color: rgb({r}, {g}, {b})">&#9632;</span> '


def fill_rows(
    table: QtWidgets.QTableWidget, rows: Sequence[Sequence], row_tooltips: Sequence[str] | None = None
) -> None:
    """Put ``rows`` (cells per region, in the result's order) into ``table`` and keep its sorting;
    ``row_tooltips``: what every cell of that row says when the mouse rests on it."""
    table.setSortingEnabled(False)  # rows are filled in the regions' order, then sorted
    table.clearContents()
    table.setRowCount(len(rows))
    for row, cells in enumerate(rows):
        for column, value in enumerate(cells):
            item = RegionItem(value, row)
            if row_tooltips is not None:
                item.setToolTip(row_tooltips[row])
            table.setItem(row, column, item)
    table.setSortingEnabled(True)
    table.resizeColumnsToContents()
    fitter = table.findChild(ColumnFit)
    if fitter is not None:
        fitter.fit()


class ColumnFit(QtCore.QObject):
    """Keeps every column of ``table`` inside its width, with no sideways scrolling, as the
    dock is resized: each column takes its contents' width and the last (text) column the rest,
    its text elided. Where the contents are wider than the table (several map columns), every
    column gives up width in proportion; a cut cell ends in '…' and its tooltip has it whole."""

    MIN_COLUMN_PX = 24
    HEADER_PADDING_PX = 12
    SORT_ARROW_PX = 16

    def __init__(self, table: QtWidgets.QTableWidget) -> None:
        super().__init__(table.viewport())  # gone with the viewport it watches
        self.table = table
        table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        table.setTextElideMode(QtCore.Qt.TextElideMode.ElideRight)
        table.setWordWrap(False)
        header = table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(self.MIN_COLUMN_PX)
        header.setTextElideMode(QtCore.Qt.TextElideMode.ElideRight)
        table.viewport().installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QtCore.QEvent.Type.Resize:
            self.fit()  # the dock resized, or the vertical scroll bar came or went
        return False

    def fit(self) -> None:
        table, header = self.table, self.table.horizontalHeader()
        columns = table.columnCount()
        if columns == 0:
            return
        available = table.viewport().width()
        # The cells set a column's width (a number is never cut while it can be whole); the
        # header's text widens it where there is room. A header's own size hint is no guide: it
        # keeps room for the sort arrow in every column (44 px for '±' in the application's
        # theme); only the sorted column gets that room here.
        header_metrics = header.fontMetrics()
        arrow = header.sortIndicatorSection() if header.isSortIndicatorShown() else -1
        need = [max(self.MIN_COLUMN_PX, table.sizeHintForColumn(c)) for c in range(columns - 1)]
        nice = [
            max(
                need[c],
                header_metrics.horizontalAdvance(table.horizontalHeaderItem(c).text())
                + self.HEADER_PADDING_PX
                + (self.SORT_ARROW_PX if c == arrow else 0),
            )
            for c in range(columns - 1)
        ]
        room = available - 2 * self.MIN_COLUMN_PX  # the text column keeps its first letters
        if sum(need) > room:  # not even the numbers fit: every column gives up width in proportion
            wanted = [max(self.MIN_COLUMN_PX, int(width * max(room, 0) / sum(need))) for width in need]
        else:
            wanted, spare = list(need), room - sum(need)
            for c in range(columns - 1):
                grow = min(nice[c] - need[c], spare)
                wanted[c] += grow
                spare -= grow
        widths = [*wanted, max(available - sum(wanted), self.MIN_COLUMN_PX)]
        for column, width in enumerate(widths):
            header.setSectionResizeMode(column, QtWidgets.QHeaderView.ResizeMode.Interactive)
            header.resizeSection(column, width)


def region_index_at(table: QtWidgets.QTableWidget, row: int, count: int) -> int | None:
    """The result index of the region shown in ``row`` (after any sorting), or None."""
    item = table.item(row, 0)
    index = item.data(QtCore.Qt.ItemDataRole.UserRole) if item is not None else None
    return int(index) if index is not None and 0 <= int(index) < count else None

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


def fill_rows(table: QtWidgets.QTableWidget, rows: Sequence[Sequence]) -> None:
    """Put ``rows`` (cells per region, in the result's order) into ``table`` and keep its sorting."""
    table.setSortingEnabled(False)  # rows are filled in the regions' order, then sorted
    table.clearContents()
    table.setRowCount(len(rows))
    for row, cells in enumerate(rows):
        for column, value in enumerate(cells):
            table.setItem(row, column, RegionItem(value, row))
    table.setSortingEnabled(True)
    table.resizeColumnsToContents()


def region_index_at(table: QtWidgets.QTableWidget, row: int, count: int) -> int | None:
    """The result index of the region shown in ``row`` (after any sorting), or None."""
    item = table.item(row, 0)
    index = item.data(QtCore.Qt.ItemDataRole.UserRole) if item is not None else None
    return int(index) if index is not None and 0 <= int(index) < count else None

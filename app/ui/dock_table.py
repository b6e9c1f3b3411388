"""Tables in the tool docks: every column in the dock's width, read without sideways scrolling.

The columns share the table's width (a cut cell shows whole in its tooltip); a column name too
long for its share is elided in the middle, so that 'synthesized 1', 'synthesized 2' and
'synthesized 3' stay told apart ('synth…ed 1'), and is whole in the header's tooltip. Centred
and unelided, names were cut at both ends ('nthesized', 'ifference' at 1600x950).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6 import QtCore, QtWidgets


def share_dock_width(table: QtWidgets.QTableWidget) -> None:
    """Columns stretched to share the table's width; no horizontal scroll bar; names elided."""
    header = table.horizontalHeader()
    header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
    table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    header.setTextElideMode(QtCore.Qt.TextElideMode.ElideMiddle)
    header.setDefaultAlignment(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter)


def set_column_names(table: QtWidgets.QTableWidget, names: Sequence[str]) -> None:
    """``names`` as the columns (as many as there are), each whole in its header's tooltip."""
    table.setColumnCount(len(names))
    table.setHorizontalHeaderLabels(list(names))
    for column, name in enumerate(names):
        table.horizontalHeaderItem(column).setToolTip(name)

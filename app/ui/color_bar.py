"""A vertical colour bar with its value labels (for the difference panel's diverging map)."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.ui.colormaps import lookup_table


class ColorBar(QtWidgets.QWidget):
    """Paints ``lookup_table(colormap)`` from ``low`` (bottom) to ``high`` (top) with labels."""

    def __init__(self, colormap: str, low: float, high: float, units: str = "", parent=None) -> None:
        super().__init__(parent)
        self.colormap, self.low, self.high, self.units = colormap, float(low), float(high), units
        # Wide enough for the longest label (units included), never cut.
        widest = max(self.fontMetrics().horizontalAdvance(text) for text in self.labels())
        self.setFixedWidth(24 + widest + 6)
        self.setMinimumHeight(80)

    def labels(self) -> list[str]:
        middle = (self.low + self.high) / 2
        suffix = f" {self.units}" if self.units else ""
        return [f"{value:+.4g}{suffix}" for value in (self.high, middle, self.low)]

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        painter = QtGui.QPainter(self)
        bar = QtCore.QRect(4, 10, 16, self.height() - 20)
        gradient = QtGui.QLinearGradient(QtCore.QPointF(bar.bottomLeft()), QtCore.QPointF(bar.topLeft()))
        table = lookup_table(self.colormap)
        for stop in np.linspace(0, 1, 9):
            r, g, b = (int(c) for c in table[int(round(stop * 255))])
            gradient.setColorAt(float(stop), QtGui.QColor(r, g, b))
        painter.fillRect(bar, gradient)
        painter.setPen(QtGui.QColor("#dddddd"))
        top, middle, bottom = self.labels()
        painter.drawText(24, bar.top() + 10, top)
        painter.drawText(24, bar.center().y() + 5, middle)
        painter.drawText(24, bar.bottom(), bottom)
        painter.end()

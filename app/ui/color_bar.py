"""A vertical colour bar with its title, units and value labels (the difference panel's and
the signed maps' diverging map), with optional marks at the hallucination check's flag level."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.ui.colormaps import lookup_table

LABEL_COLOUR = "#e8e8e8"  # on BACKGROUND: about 15:1
BACKGROUND = "#101010"
FLAG_COLOUR = "#ffffff"


class ColorBar(QtWidgets.QWidget):
    """Paints ``lookup_table(colormap)`` from ``low`` (bottom) to ``high`` (top) with labels.

    ``title`` names what the colours are (e.g. "original - synthesized"), ``units`` the values'
    units; ``flag_level`` (optional, same units) draws ticks at +-level: where the check flags.
    """

    def __init__(
        self,
        colormap: str,
        low: float,
        high: float,
        units: str = "",
        parent=None,
        title: str = "",
        flag_level: float | None = None,
    ) -> None:
        super().__init__(parent)
        self.colormap, self.low, self.high, self.units = colormap, float(low), float(high), units
        self.title, self.flag_level = title, flag_level
        self.setToolTip(self.description())
        self._fit_width()
        self.setMinimumHeight(120)

    def description(self) -> str:
        parts = [self.title or "value"]
        if self.units:
            parts.append(f"in {self.units}")
        text = " ".join(parts)
        if self.flag_level:
            text += f"; ticks at +-{self.flag_level:.3g}: the flag level of the hallucination check"
        return text

    def _fit_width(self) -> None:
        metrics = self.fontMetrics()
        widest = max(metrics.horizontalAdvance(text) for text in [*self.labels(), *self._title_lines()])
        self.setFixedWidth(24 + widest + 6)

    def _title_lines(self) -> list[str]:
        lines = [line.strip() for line in (self.title or "").split(" - ")]
        lines = [f"{lines[0]} -", *lines[1:]] if len(lines) > 1 else lines
        return [line for line in lines if line] + ([f"({self.units})"] if self.units else [])

    def set_range(self, low: float, high: float, flag_level: float | None = None) -> None:
        self.low, self.high, self.flag_level = float(low), float(high), flag_level
        self.setToolTip(self.description())
        self._fit_width()
        self.update()

    def picture_at(self, size: QtCore.QSize) -> QtGui.QPixmap:
        """This bar painted at ``size`` (a figure whose panels are shorter than on screen)."""
        copy = ColorBar(
            self.colormap, self.low, self.high, self.units, title=self.title, flag_level=self.flag_level
        )
        copy.setFont(self.font())
        copy.setFixedSize(size)
        picture = copy.grab()
        copy.deleteLater()
        return picture

    def labels(self) -> list[str]:
        middle = (self.low + self.high) / 2
        return [f"{value:+.4g}" for value in (self.high, middle, self.low)]

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        painter = QtGui.QPainter(self)
        # Its own dark backing, like the panels beside it: light text reads on it in any theme.
        painter.fillRect(self.rect(), QtGui.QColor(BACKGROUND))
        metrics = self.fontMetrics()
        painter.setPen(QtGui.QColor(LABEL_COLOUR))
        title_lines = self._title_lines()
        y = metrics.ascent() + 2
        for line in title_lines:
            painter.drawText(2, y, line)
            y += metrics.height()
        top = y + 4
        bar = QtCore.QRect(4, top, 16, max(self.height() - top - 10, 20))
        gradient = QtGui.QLinearGradient(QtCore.QPointF(bar.bottomLeft()), QtCore.QPointF(bar.topLeft()))
        table = lookup_table(self.colormap)
        for stop in np.linspace(0, 1, 17):
            r, g, b = (int(c) for c in table[int(round(stop * 255))])
            gradient.setColorAt(float(stop), QtGui.QColor(r, g, b))
        painter.fillRect(bar, gradient)
        painter.setPen(QtGui.QColor("#808080"))
        painter.drawRect(bar)
        if self.flag_level and self.high > self.low:
            painter.setPen(QtGui.QPen(QtGui.QColor(FLAG_COLOUR), 2))
            for value in (self.flag_level, -self.flag_level):
                fraction = (value - self.low) / (self.high - self.low)
                if 0 <= fraction <= 1:
                    y_value = int(bar.bottom() - fraction * bar.height())
                    painter.drawLine(0, y_value, bar.right() + 4, y_value)
        painter.setPen(QtGui.QColor(LABEL_COLOUR))
        high_text, middle_text, low_text = self.labels()
        painter.drawText(24, bar.top() + metrics.ascent(), high_text)
        painter.drawText(24, bar.center().y() + metrics.ascent() // 2, middle_text)
        painter.drawText(24, bar.bottom(), low_text)
        painter.end()

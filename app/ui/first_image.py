"""The first image: the opened volume's slices painted while the interactive panels are built.

The interactive panels (``SliceView``) are pyqtgraph views, and importing pyqtgraph alone takes
longer than a bare Qt window's whole start (0.13 s against 0.10 s here). The window a person
starts with a study (``start_interactive_window``) paints this grid first, in place of its
panels: the same cells, slices at the cursor, window and colour table (``windowed_argb``, the
panels' own mapping), field of view, crosshair, edge letters, title, corner line and SYNTHETIC
label, from the same functions the panels use. The panels replace it on the next turns of the
event loop; until then there is nothing to click (a click waits for them, a fraction of a second).

Single-volume layouts only (one plane, MPR, 2x2 with the 3D cell left dark until the panels
come); the compare grid is never drawn by it.
"""

from __future__ import annotations

import importlib
import threading

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.core.planes import (
    Plane,
    edge_letters,
    extract_slice,
    field_of_view_mm,
    scene_from_lps,
    slice_position_mm,
)
from app.core.viewer_state import ViewerState
from app.core.volume import Volume
from app.ui.colormaps import lookup_table
from app.ui.panel_text import (
    TITLE_STRIP_COLOUR,
    TITLE_TEXT_COLOUR,
    corner_text,
    synthetic_labels,
)
from app.ui.windowed_image import premultiplied_argb, windowed_argb

CELL_SPACING_PX = 2  # as the panel grid's layout
VIEW_PADDING = 0.02  # the panels' field of view: the reference volume plus 2 % on each side
CROSSHAIR_COLOUR = QtGui.QColor(255, 200, 0, 160)
LETTER_COLOUR = QtGui.QColor("#ffd24a")
LETTER_BACKING = QtGui.QColor(0, 0, 0, 110)
SYNTHETIC_BACKING = QtGui.QColor("#c0001a")


class FirstImageGrid(QtWidgets.QWidget):
    """``planes[row][col]``: the plane drawn in that cell (None: a dark cell, the 3D view's)."""

    painted = QtCore.Signal()  # after each paint of the grid (the window swaps in its panels)

    def __init__(self, state: ViewerState, volume: Volume, planes: list[list[Plane | None]], parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.volume = volume
        self.planes = planes
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self._images: dict[Plane, tuple[QtGui.QImage, np.ndarray, tuple[float, float, float, float]]] = {}
        # Keys pressed before the panels come (I, C, T, Alt+N, a window preset) change the shared
        # state the panels will be built from; the still picture shows them at once too (it
        # stayed as first painted, so a reader saw nothing happen and pressed again, undoing it).
        state.display_changed.connect(self._state_changed)
        state.cursor_changed.connect(self._state_changed)

    def detach(self) -> None:
        """Stop following the state (the grid is being replaced)."""
        self.state.display_changed.disconnect(self._state_changed)
        self.state.cursor_changed.disconnect(self._state_changed)

    def _state_changed(self, *_args) -> None:
        self._images.clear()
        try:
            self.update()
        except RuntimeError:  # the window closed with it on screen: nothing to repaint
            pass

    def cell_rects(self) -> list[tuple[QtCore.QRect, Plane | None]]:
        """Each cell's rectangle in this widget, with its plane (equal stretch, as the grid)."""
        rows = len(self.planes)
        columns = max((len(row) for row in self.planes), default=1)
        width = (self.width() - CELL_SPACING_PX * (columns - 1)) / columns
        height = (self.height() - CELL_SPACING_PX * (rows - 1)) / rows
        rects = []
        for r, row in enumerate(self.planes):
            for c, plane in enumerate(row):
                x, y = round(c * (width + CELL_SPACING_PX)), round(r * (height + CELL_SPACING_PX))
                rects.append((QtCore.QRect(x, y, round(width), round(height)), plane))
        return rects

    def slice_image(self, plane: Plane) -> tuple[QtGui.QImage, tuple[float, float, float, float]]:
        """The windowed slice at the cursor (premultiplied ARGB32) and its extent in scene mm."""
        if plane not in self._images:
            cut = extract_slice(self.volume, plane, slice_position_mm(plane, self.state.cursor_lps_mm))
            pixels = np.ascontiguousarray(cut.pixels)
            if pixels.ndim == 3:  # colour: shown as it is
                rgb = np.ascontiguousarray(np.clip(pixels[..., :3], 0, 255).astype(np.uint8))
                image = QtGui.QImage(rgb.data, rgb.shape[1], rgb.shape[0], 3 * rgb.shape[1], QtGui.QImage.Format.Format_RGB888)
                buffer = rgb
            else:
                display = self.state.display
                window = display.window
                words = premultiplied_argb(lookup_table(display.colormap, display.invert))
                buffer = windowed_argb(pixels.astype(np.float32, copy=False), window.low, window.high, words)
                rows, columns = buffer.shape
                image = QtGui.QImage(buffer.data, columns, rows, 4 * columns, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
            self._images[plane] = (image, buffer, cut.extent_mm)  # the image reads the buffer's memory
        image, _, extent = self._images[plane]
        return image, extent

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:
        painter = QtGui.QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        for rect, plane in self.cell_rects():
            painter.fillRect(rect, QtCore.Qt.GlobalColor.black)
            if plane is not None:
                self._paint_cell(painter, rect, plane)
        painter.end()
        self.painted.emit()

    def _paint_cell(self, painter: QtGui.QPainter, rect: QtCore.QRect, plane: Plane) -> None:
        painter.save()
        painter.setClipRect(rect)
        metrics = painter.fontMetrics()
        header = metrics.height() + 4
        strip = QtCore.QRect(rect.x(), rect.y(), rect.width(), header)
        painter.fillRect(strip, QtGui.QColor(TITLE_STRIP_COLOUR))
        painter.setPen(QtGui.QColor(TITLE_TEXT_COLOUR))
        title = metrics.elidedText(self.volume.name, QtCore.Qt.TextElideMode.ElideRight, max(20, rect.width() - 20))
        painter.drawText(strip.adjusted(4, 0, -4, 0), QtCore.Qt.AlignmentFlag.AlignVCenter, title)
        area = QtCore.QRectF(rect.x(), rect.y() + header, rect.width(), rect.height() - header)

        labels = synthetic_labels([self.volume])
        label_box = QtCore.QRect()
        bold = QtGui.QFont(painter.font())
        bold.setBold(True)
        bold.setPixelSize(14)
        if labels:
            # Never elided: wrapped onto as many lines as the cell's width needs.
            text_rect = QtGui.QFontMetrics(bold).boundingRect(
                QtCore.QRect(0, 0, rect.width() - 16, 10_000), QtCore.Qt.TextFlag.TextWordWrap, "\n".join(labels)
            )
            label_box = text_rect.adjusted(-4, -2, 4, 2)
            label_box.moveTo(rect.x() + 4, round(area.top()) + 2)

        # The field of view of the panels' reset zoom: the reference volume's bounds, room at the
        # top for the SYNTHETIC label (SliceView.reset_zoom), padded, scaled to fit with square
        # pixels (mm on both axes), centred.
        u_low, v_low, u_high, v_high = field_of_view_mm(self.state.reference, plane)
        room = label_box.bottom() + 1 - area.top() + 2 if labels else 0
        if 0 < room < area.height():
            v_low -= room * (v_high - v_low) / (area.height() - room)
        pad_u, pad_v = (u_high - u_low) * VIEW_PADDING, (v_high - v_low) * VIEW_PADDING
        u_low, u_high, v_low, v_high = u_low - pad_u, u_high + pad_u, v_low - pad_v, v_high + pad_v
        scale = min(area.width() / max(u_high - u_low, 1e-6), area.height() / max(v_high - v_low, 1e-6))
        origin_x = area.center().x() - scale * (u_low + u_high) / 2
        origin_y = area.center().y() - scale * (v_low + v_high) / 2

        def to_screen(u: float, v: float) -> QtCore.QPointF:
            return QtCore.QPointF(origin_x + scale * u, origin_y + scale * v)

        image, (left, top, width, height) = self.slice_image(plane)
        painter.setClipRect(area)
        painter.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(QtCore.QRectF(to_screen(left, top), to_screen(left + width, top + height)), image)
        u, v = scene_from_lps(plane, self.state.cursor_lps_mm)
        painter.setPen(QtGui.QPen(CROSSHAIR_COLOUR, 0))
        painter.drawLine(QtCore.QPointF(to_screen(u, 0).x(), area.top()), QtCore.QPointF(to_screen(u, 0).x(), area.bottom()))
        painter.drawLine(QtCore.QPointF(area.left(), to_screen(0, v).y()), QtCore.QPointF(area.right(), to_screen(0, v).y()))

        painter.setClipRect(rect)
        painter.setFont(bold)
        letter_metrics = painter.fontMetrics()
        if labels:
            painter.fillRect(label_box, SYNTHETIC_BACKING)
            painter.setPen(QtCore.Qt.GlobalColor.white)
            painter.drawText(label_box.adjusted(4, 2, -4, -2), QtCore.Qt.TextFlag.TextWordWrap, "\n".join(labels))

        for edge, letter in edge_letters(plane).items():
            box = letter_metrics.boundingRect(letter).adjusted(-2, 0, 2, 0)
            box.setSize(QtCore.QSize(letter_metrics.horizontalAdvance(letter) + 4, letter_metrics.height()))
            x = {"left": rect.x() + 4, "right": rect.right() - box.width() - 4}.get(edge, rect.center().x() - box.width() // 2)
            y = {"top": area.top() + 2, "bottom": rect.bottom() - box.height() - 2}.get(
                edge, area.center().y() - box.height() / 2
            )
            box.moveTo(round(x), round(y))
            if edge == "top" and box.intersects(label_box):
                box.moveTop(label_box.bottom() + 2)  # under the label, not hidden by it
            painter.fillRect(box, LETTER_BACKING)
            painter.setPen(LETTER_COLOUR)
            painter.drawText(box, QtCore.Qt.AlignmentFlag.AlignCenter, letter)

        painter.setFont(QtGui.QFont(self.font()))
        text = corner_text(self.volume, plane, self.state.cursor_lps_mm, self.state.display.window)
        corner_metrics = painter.fontMetrics()
        if corner_metrics.horizontalAdvance(text) + 14 <= rect.width():
            line = corner_metrics.height()
            width = corner_metrics.horizontalAdvance(text) + 6
            box = QtCore.QRect(rect.right() - width - 4, rect.bottom() - 2 * line - 4, width, line + 2)
            painter.fillRect(box, QtGui.QColor(0, 0, 0, 120))
            painter.setPen(QtGui.QColor("#e8e8e8"))
            painter.drawText(box, QtCore.Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()



PANEL_MODULES = ("app.ui.slice_view", "app.ui.panel_grid", "app.ui.compare_view")  # and pyqtgraph


class PanelImport(QtCore.QObject):
    """Imports the panels' modules (pyqtgraph) in a thread; ``done`` arrives on the UI thread
    (also after a failed import: the panels' build imports them again and reports the error)."""

    done = QtCore.Signal()

    def start(self) -> None:
        threading.Thread(target=self._run, name="import panels", daemon=True).start()

    def _run(self) -> None:
        try:
            for name in PANEL_MODULES:
                importlib.import_module(name)
        except Exception:  # noqa: BLE001, S110 - reported by the build on the UI thread
            pass
        try:
            self.done.emit()  # queued to the UI thread: this object lives there
        except RuntimeError:  # the window (its parent) closed meanwhile
            pass

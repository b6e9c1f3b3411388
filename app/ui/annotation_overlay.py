"""Draws the annotations on one SliceView and turns its mouse gestures into annotations.

Everything is placed through world coordinates: an annotation's LPS points are projected
with the panel's plane (``scene_from_lps``), so the same ROI shows at the same anatomical
place on the original, synthesized and difference panels. An annotation shows on a slice when
it lies within half a slice step of it (regions: only in views parallel to their plane).

Mouse gestures are taken from the panel's viewport with an event filter while a drawing tool
is active (left button only); with the navigate tool, or with the right/middle buttons, the
panel behaves as usual (crosshair, window/level, pan).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from app.annotations.builders import Tool
from app.annotations.shapes import Angle, Annotation, EllipseRoi, PlanarRegion, PointMarker, Ruler
from app.core.planes import PLANE_AXES, extract_slice, scene_from_lps, slice_position_mm, slice_step_mm
from app.core.volume import Volume

if TYPE_CHECKING:
    from app.ui.annotation_panel import AnnotationController
    from app.ui.slice_view import SliceView

# Not yellow: the crosshair and the orientation letters are yellow; not red: SYNTHETIC is red.
ANNOTATION_COLOR = (255, 120, 220)
TEXT_BACKING = (0, 0, 0, 170)  # measurement text stays readable over white matter
SELECTED_COLOR = (0, 230, 255)
PREVIEW_COLOR = (120, 255, 120)
MASK_RGBA = (0, 200, 255, 110)
OVERLAY_Z = 20
LETTER_ROOM_PX = 28  # the R/L letters' strip at a panel's side edges (4 px margin, bold 16 px letter)


class AnnotationOverlay(QtCore.QObject):
    """The annotation layer of one panel (drawing + gestures)."""

    def __init__(self, panel: SliceView, controller: AnnotationController) -> None:
        super().__init__(panel)
        self.panel = panel
        self.controller = controller
        self._items: list[QtCore.QObject] = []
        self._preview: pg.PlotDataItem | None = None
        self._gesture: list[np.ndarray] = []
        self._stroke = None
        self._moving: tuple[Annotation, np.ndarray] | None = None  # (annotation, press point)
        self._mask_item = pg.ImageItem(axisOrder="row-major")
        self._mask_item.setZValue(OVERLAY_Z - 1)
        panel.view_box.addItem(self._mask_item, ignoreBounds=True)
        panel.viewport().installEventFilter(self)
        panel.state.cursor_changed.connect(self._on_cursor_changed)
        self.redraw()

    # ----- drawing ------------------------------------------------------------------------
    def _on_cursor_changed(self, _cursor) -> None:
        self.redraw()

    def visible_annotations(self) -> list[Annotation]:
        """The annotations that lie on the slice this panel shows now."""
        return [a for a in self.controller.document if self._on_slice(a)]

    def _slice(self) -> tuple[float, float]:
        position = slice_position_mm(self.panel.plane, self.panel.state.cursor_lps_mm)
        return position, 0.5 * slice_step_mm(self.panel.volume, self.panel.plane)

    def _on_slice(self, annotation: Annotation) -> bool:
        position, half_step = self._slice()
        normal = PLANE_AXES[self.panel.plane].normal_lps
        if isinstance(annotation, PlanarRegion):
            parallel = abs(float(annotation.normal_lps @ normal)) > 0.999
            distance = float(annotation.plane_point_lps @ normal) - position
            return parallel and -half_step < distance <= half_step + 1e-6
        points = _points(annotation)
        return bool(np.any(np.abs(points @ normal - position) <= half_step + 1e-6))

    def redraw(self) -> None:
        view_box = self.panel.view_box
        for item in self._items:
            view_box.removeItem(item)
        self._items = []
        selected = self.controller.selected_id
        for annotation in self.visible_annotations():
            color = SELECTED_COLOR if annotation.annotation_id == selected else ANNOTATION_COLOR
            self._draw(annotation, color)
        self._draw_mask()

    def _add(self, item) -> None:
        item.setZValue(OVERLAY_Z)
        self.panel.view_box.addItem(item, ignoreBounds=True)
        self._items.append(item)

    def _draw(self, annotation: Annotation, color) -> None:
        pen = pg.mkPen(color, width=2)
        uv = scene_from_lps(self.panel.plane, _outline(annotation))
        if isinstance(annotation, PointMarker):
            self._add(pg.ScatterPlotItem(x=uv[:, 0], y=uv[:, 1], symbol="+", size=14, pen=pen, brush=None))
        else:
            closed = isinstance(annotation, PlanarRegion)
            if closed:
                uv = np.vstack([uv, uv[:1]])
            self._add(pg.PlotDataItem(uv[:, 0], uv[:, 1], pen=pen))
        top = int(np.argmin(uv[:, 1])) if isinstance(annotation, PlanarRegion) else 0  # above a region
        x, y = float(uv[top, 0]), float(uv[top, 1])
        # Grow toward the middle of the view, and kept inside the band between the R/L letters
        # at its edges (a label 60 px wide from the middle of a 170 px panel ran into the 'L').
        (left, right), _ = self.panel.view_box.viewRange()
        anchor_x = 1.0 if x > (left + right) / 2 else 0.0
        text = pg.TextItem(
            measurement_text(annotation), color=color, anchor=(anchor_x, 1), fill=pg.mkBrush(*TEXT_BACKING)
        )
        units_per_pixel = self.panel.view_box.viewPixelSize()[0]
        width = text.textItem.boundingRect().width() * units_per_pixel
        low, high = left + LETTER_ROOM_PX * units_per_pixel, right - LETTER_ROOM_PX * units_per_pixel
        text_left = x - anchor_x * width
        if text_left + width > high:
            text_left = high - width
        text_left = max(text_left, low)  # a panel narrower than the label: it starts after the letter
        text.setPos(text_left + anchor_x * width, y)
        self._add(text)

    def _draw_mask(self) -> None:
        mask = self.controller.document.mask
        if mask is None or mask.voxel_count() == 0:
            self._mask_item.hide()
            return
        position, _ = self._slice()
        cut = extract_slice(Volume(mask.labels, mask.geometry), self.panel.plane, position)
        rgba = np.zeros(cut.pixels.shape + (4,), dtype=np.uint8)
        rgba[np.nan_to_num(cut.pixels) > 0.5] = MASK_RGBA
        self._mask_item.setImage(rgba, autoLevels=False, levels=None)
        self._mask_item.setRect(QtCore.QRectF(*cut.extent_mm))
        self._mask_item.show()

    def _show_preview(self, points: list[np.ndarray]) -> None:
        tool = self.controller.tool
        if tool in (Tool.RECTANGLE, Tool.ELLIPSE) and len(points) >= 2:
            a, b = scene_from_lps(self.panel.plane, np.array([points[0], points[-1]]))
            uv = np.array([[a[0], a[1]], [b[0], a[1]], [b[0], b[1]], [a[0], b[1]], [a[0], a[1]]])
        else:
            uv = scene_from_lps(self.panel.plane, np.array(points))
        if self._preview is None:
            self._preview = pg.PlotDataItem(
                pen=pg.mkPen(PREVIEW_COLOR, width=1, style=QtCore.Qt.PenStyle.DashLine)
            )
            self._preview.setZValue(OVERLAY_Z + 1)
            self.panel.view_box.addItem(self._preview, ignoreBounds=True)
        self._preview.setData(uv[:, 0], uv[:, 1])

    def _clear_preview(self) -> None:
        if self._preview is not None:
            self.panel.view_box.removeItem(self._preview)
            self._preview = None

    # ----- gestures -----------------------------------------------------------------------
    def lps_at(self, widget_pos: QtCore.QPointF) -> np.ndarray:
        """World point under a viewport position, on the slice shown."""
        scene_point = self.panel.mapToScene(widget_pos.toPoint())
        return self.panel.scene_to_lps(self.panel.view_box.mapSceneToView(scene_point))

    def eventFilter(self, watched, event) -> bool:
        tool = self.controller.tool
        kind = event.type()
        mouse_kinds = (
            QtCore.QEvent.Type.MouseButtonPress,
            QtCore.QEvent.Type.MouseMove,
            QtCore.QEvent.Type.MouseButtonRelease,
            QtCore.QEvent.Type.MouseButtonDblClick,
        )
        if tool is Tool.NAVIGATE or kind not in mouse_kinds:
            return False
        event: QtGui.QMouseEvent
        left_held = bool(event.buttons() & QtCore.Qt.MouseButton.LeftButton)
        if kind == QtCore.QEvent.Type.MouseButtonPress and event.button() == QtCore.Qt.MouseButton.LeftButton:
            self.panel.setFocus()
            self._press(self.lps_at(event.position()))
            return True
        if kind == QtCore.QEvent.Type.MouseMove and left_held and self._gesture_active():
            self._move(self.lps_at(event.position()))
            return True
        if (
            kind == QtCore.QEvent.Type.MouseButtonRelease
            and event.button() == QtCore.Qt.MouseButton.LeftButton
        ):
            self._release(self.lps_at(event.position()))
            return True
        if (
            kind == QtCore.QEvent.Type.MouseButtonDblClick
            and event.button() == QtCore.Qt.MouseButton.LeftButton
        ):
            return True
        return False

    def _gesture_active(self) -> bool:
        return bool(self._gesture) or self._stroke is not None or self._moving is not None

    def annotation_near(self, lps: np.ndarray, tolerance_pixels: float = 8.0) -> Annotation | None:
        """The shown annotation whose drawing passes closest to ``lps`` (within a few pixels)."""
        pixel_mm = 1.0 / max(pixels_per_mm(self.panel), 1e-9)
        target = scene_from_lps(self.panel.plane, lps)
        best, best_distance = None, tolerance_pixels * pixel_mm
        for annotation in self.visible_annotations():
            uv = scene_from_lps(self.panel.plane, _outline(annotation))
            if isinstance(annotation, PlanarRegion):
                uv = np.vstack([uv, uv[:1]])
            distance = _distance_to_polyline(target, uv)
            if distance <= best_distance:
                best, best_distance = annotation, distance
        return best

    def _press(self, lps: np.ndarray) -> None:
        tool = self.controller.tool
        if tool is Tool.MOVE:
            hit = self.annotation_near(lps)
            self.controller.select(hit.annotation_id if hit is not None else None)
            self._moving = (hit, lps) if hit is not None else None
            return
        if tool in (Tool.BRUSH, Tool.ERASER):
            self._stroke = self.controller.begin_stroke(self.panel, lps)
            return
        if tool is Tool.ANGLE:
            self._gesture.append(lps)
            if len(self._gesture) == 3:
                self._finish()
            else:
                self._show_preview(self._gesture)
            return
        self._gesture = [lps]

    def _move(self, lps: np.ndarray) -> None:
        tool = self.controller.tool
        if self._moving is not None:
            annotation, start = self._moving
            self._show_preview(list(_outline(annotation.moved(lps - start))))
            return
        if self._stroke is not None:
            self.controller.continue_stroke(self._stroke, self.panel, lps)
            return
        if tool is Tool.ANGLE:
            return
        if tool is Tool.FREEHAND:
            self._gesture.append(lps)
        else:
            self._gesture = [self._gesture[0], lps]
        self._show_preview(self._gesture)

    def _release(self, lps: np.ndarray) -> None:
        if self._moving is not None:
            annotation, start = self._moving
            self._moving = None
            self._clear_preview()
            self.controller.move_annotation(annotation, lps - start)
            return
        if self._stroke is not None:
            self._stroke = None
            return
        tool = self.controller.tool
        if tool is Tool.ANGLE or not self._gesture:
            return
        if tool is Tool.FREEHAND:
            self._gesture.append(lps)
        elif tool is not Tool.POINT:
            self._gesture = [self._gesture[0], lps]
        self._finish()

    def _finish(self) -> None:
        points, self._gesture = self._gesture, []
        self._clear_preview()
        self.controller.finish_gesture(self.panel, points)

    def cancel_gesture(self) -> None:
        self._moving = None
        self._gesture = []
        self._stroke = None
        self._clear_preview()

    def detach(self) -> None:
        """Stop following the viewer state first: the panel may already be gone on Qt's side."""
        self.panel.state.cursor_changed.disconnect(self._on_cursor_changed)
        try:
            self.panel.viewport().removeEventFilter(self)
        except RuntimeError:  # the panel was deleted with its view
            pass


def pixels_per_mm(panel) -> float:
    """On-screen pixels per millimetre of a panel (its view box keeps a 1:1 aspect)."""
    view_box = panel.view_box
    # In fractional pixels: mapFromScene rounds to whole pixels (up to 0.1 px/mm off over 10 mm).
    to_viewport = panel.viewportTransform()
    origin = to_viewport.map(view_box.mapViewToScene(QtCore.QPointF(0.0, 0.0)))
    ten_mm = to_viewport.map(view_box.mapViewToScene(QtCore.QPointF(10.0, 0.0)))
    return abs(ten_mm.x() - origin.x()) / 10.0


def _distance_to_polyline(point: np.ndarray, polyline: np.ndarray) -> float:
    """Shortest distance from a 2D point to a polyline (a single point counts as one)."""
    if len(polyline) == 1:
        return float(np.linalg.norm(point - polyline[0]))
    starts, ends = polyline[:-1], polyline[1:]
    segment = ends - starts
    length2 = np.maximum(np.sum(segment**2, axis=1), 1e-12)
    t = np.clip(np.sum((point - starts) * segment, axis=1) / length2, 0.0, 1.0)
    nearest = starts + t[:, None] * segment
    return float(np.min(np.linalg.norm(point - nearest, axis=1)))


def _points(annotation: Annotation) -> np.ndarray:
    if isinstance(annotation, PointMarker):
        return annotation.position_lps.reshape(1, 3)
    if isinstance(annotation, Ruler):
        return np.stack([annotation.start_lps, annotation.end_lps])
    if isinstance(annotation, Angle):
        return np.stack([annotation.first_lps, annotation.vertex_lps, annotation.second_lps])
    if isinstance(annotation, PlanarRegion):
        return annotation.outline_lps(64)
    return np.zeros((0, 3))


def _outline(annotation: Annotation) -> np.ndarray:
    if isinstance(annotation, EllipseRoi):
        return annotation.outline_lps(64)
    return _points(annotation)


def measurement_text(annotation: Annotation) -> str:
    """The text drawn beside an annotation: its label and its measurement."""
    label = f"{annotation.label}: " if annotation.label else ""
    if isinstance(annotation, Ruler):
        return f"{label}{annotation.length_mm:.1f} mm"
    if isinstance(annotation, Angle):
        return f"{label}{annotation.angle_deg:.1f}°"
    if isinstance(annotation, PlanarRegion):
        return f"{label}{annotation.area_mm2:.1f} mm²"
    return annotation.label

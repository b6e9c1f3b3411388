"""SliceView: one 2D panel showing a volume cut along a plane at the linked cursor.

Scene coordinates are millimetres along screen right / screen down (``app.core.planes``), so
panels of one plane share them and link zoom/pan directly; the view box has a locked 1:1 aspect,
which draws every volume with the right aspect ratio from its spacing.

Mouse: left click/drag moves the crosshair (cursor), right drag changes window/level, middle
drag pans, wheel scrolls slices, Ctrl+wheel zooms. Keys: Up/Down, Page Up/Down.

Hooks for other tools (annotations): ``view_box``, ``image_item``, ``plane``, ``volume``,
``scene_to_lps`` and ``lps_to_scene``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from app.core.display import WindowLevel
from app.core.events import Event
from app.core.planes import (
    Plane,
    SliceImage,
    edge_letters,
    extract_slice,
    field_of_view_mm,
    lps_from_scene,
    scene_from_lps,
    slice_position_mm,
)
from app.core.viewer_state import ViewerState
from app.core.volume import Volume
from app.ui.colormaps import lookup_table
from app.ui.fast_image_item import WindowedImageItem
from app.ui.panel_text import (
    LETTER_STYLE,
    SYNTHETIC_STYLE,
    TITLE_STRIP_COLOUR,
    TITLE_TEXT_COLOUR,
    corner_text,
    synthetic_labels,
)


class CompareMode(StrEnum):
    """How an original panel shows the first compared volume (the value is what the menu says)."""

    SIDE_BY_SIDE = "side by side"
    OVERLAY = "overlay"
    CHECKERBOARD = "checkerboard"
    FLICKER = "flicker"


COMPARE_MODES = tuple(mode.value for mode in CompareMode)
CHECKER_TILE_PIXELS = 16


@dataclass
class PanelContent:
    """What a panel shows. ``fixed_window``/``colormap`` None: follow the shared display.

    A panel of another modality keeps its own window (``fixed_window``), which right-drag
    adjusts when ``window_adjustable``; the difference panel's symmetric range is not adjustable.
    Panels showing the same content (one per plane) all follow ``window_changed``.
    """

    volume: Volume
    fixed_window: WindowLevel | None = None
    colormap: str | None = None
    title: str = ""
    window_adjustable: bool = False
    window_changed: Event = field(default_factory=Event, compare=False, repr=False)


@dataclass
class LabelLayer:
    """A label map drawn over a panel: ``colours`` is RGBA per label value (row = value; alpha 0
    leaves a value undrawn), faded by ``opacity``; ``note`` joins the panel's title while shown;
    ``names`` (value -> name) are read out under the mouse."""

    volume: Volume
    colours: np.ndarray
    opacity: float = 0.4
    shown: bool = True
    note: str = ""
    names: dict[int, str] = field(default_factory=dict)


class _SliceViewBox(pg.ViewBox):
    """A ViewBox whose mouse gestures follow workstation habits instead of pyqtgraph's."""

    def __init__(self, owner: SliceView) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self._owner = owner

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            self._owner.setFocus()
            self._owner.move_cursor_to_scene(self.mapSceneToView(ev.scenePos()))
        else:
            ev.ignore()

    def mouseDragEvent(self, ev, axis=None) -> None:
        button = ev.button()
        if button == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            self._owner.move_cursor_to_scene(self.mapSceneToView(ev.scenePos()))
        elif button == QtCore.Qt.MouseButton.RightButton:
            ev.accept()
            delta = ev.scenePos() - ev.lastScenePos()
            self._owner.drag_window(float(delta.x()), float(delta.y()))
        else:
            super().mouseDragEvent(ev, axis)  # middle button pans

    def wheelEvent(self, ev, axis=None) -> None:
        if ev.modifiers() & QtCore.Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        ev.accept()
        notches = int(ev.delta() / 120) or (1 if ev.delta() > 0 else -1)  # high-resolution wheels: >= 1
        self._owner.scroll(notches)


class CrosshairLine(QtWidgets.QGraphicsLineItem):
    """One crosshair line across the whole panel at ``value()`` mm (scene u for a vertical line,
    v for a horizontal one), one screen pixel wide at any zoom.

    A plain Qt line item, drawn and bounded in C++: pyqtgraph's InfiniteLine recomputed its
    bounding box from the view in Python on every move and every paint, and every scroll moves
    the crosshair of all six panels of the other planes."""

    COLOUR = QtGui.QColor(255, 200, 0, 160)
    EXTENT_MM = 1.0e5  # far beyond any field of view: the line always crosses the whole panel

    def __init__(self, vertical: bool) -> None:
        super().__init__()
        self.vertical = vertical
        pen = QtGui.QPen(self.COLOUR, 1)
        pen.setCosmetic(True)  # pixels, not millimetres
        self.setPen(pen)
        extent = self.EXTENT_MM
        if vertical:
            self.setLine(0.0, -extent, 0.0, extent)
        else:
            self.setLine(-extent, 0.0, extent, 0.0)

    def set_value(self, value_mm: float) -> None:
        if self.vertical:
            self.setPos(value_mm, 0.0)
        else:
            self.setPos(0.0, value_mm)

    def value(self) -> float:
        return float(self.pos().x() if self.vertical else self.pos().y())


def wrap_to_width(text: str, width_px: int, advance) -> list[str]:
    """``text`` broken into lines no wider than ``width_px`` (``advance``: str -> pixels).

    Breaks at spaces first, inside a word only where the word alone is too wide; nothing is
    dropped, so joining the lines gives back every character of ``text`` (less the breaking
    spaces). Existing line breaks are kept; a dash stays with the word after it
    ("SYNTHETIC — plugin": the plugin's name does not start a line alone).
    """
    lines: list[str] = []
    for paragraph in text.replace(" — ", " —\u00a0").split("\n"):
        current = ""
        for word in paragraph.split(" "):
            candidate = f"{current} {word}" if current else word
            if advance(candidate) <= width_px:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = ""
            # A word on its own line; one wider than the line breaks after "_" or "-" where it
            # can (plugin names: mr_t1_denoise), between characters where it must.
            for piece in re.split(r"(?<=[_\-])", word):
                if current and advance(current + piece) > width_px:
                    lines.append(current)
                    current = ""
                for character in piece if advance(piece) > width_px else [piece]:
                    if current and advance(current + character) > width_px:
                        lines.append(current)
                        current = ""
                    current += character
        lines.append(current)
    return [line.replace("\u00a0", " ") for line in lines]


def _overlay_label(parent: QtWidgets.QWidget, style: str) -> QtWidgets.QLabel:
    label = QtWidgets.QLabel(parent)
    label.setStyleSheet(style)
    label.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
    return label


class SliceView(pg.GraphicsView):
    """One panel: ``content`` cut along ``plane`` at ``state``'s cursor, redrawn when it moves."""

    readout_changed = QtCore.Signal(str)
    # A reader-study package image opened in the viewer is labelled: it may be synthetic. The
    # reading window turns this off (its readers know; the label is the same on every case).
    labels_blinded_study_images = True

    def __init__(self, state: ViewerState, content: PanelContent, plane: Plane, parent=None) -> None:
        super().__init__(parent, background="k")
        self.state = state
        self.content = content
        self.plane = plane
        self.partner: Volume | None = None  # second volume for overlay/checkerboard/flicker
        self.compare_mode = CompareMode.SIDE_BY_SIDE
        self.overlay_opacity = 0.5
        self.flicker_shows_partner = False
        self.last_readout = ""
        self._shown_position_mm: float | None = None
        self._label_texts: tuple[str, str, str] | None = None
        self._overlay_text_visible = True  # title and corner read-out (see set_overlay_text_visible)
        self._recent_cuts: dict[tuple[int, float], tuple[Volume, SliceImage]] = {}

        self.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        # Only what changed is repainted: a scroll moves the crosshair of the six panels of the
        # other planes (two thin strips each) and leaves their images as they are; the corner
        # text, which the view draws itself (drawForeground), asks for its strip when it changes.
        self.setViewportUpdateMode(QtWidgets.QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        # The view's background brush (black) covers every pixel of the viewport on each paint:
        # the viewport's own background fill under it was a second full fill per redraw.
        self.viewport().setAutoFillBackground(False)
        self.viewport().setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._view_box = _SliceViewBox(self)
        self.setCentralItem(self._view_box)
        self._image_item = WindowedImageItem(axisOrder="row-major")
        self._overlay_item = WindowedImageItem(axisOrder="row-major")
        self._labels_item = pg.ImageItem(axisOrder="row-major")  # a segmentation's label map (RGBA)
        self.label_layer: LabelLayer | None = None
        self._mask_item = pg.ImageItem(axisOrder="row-major")
        self._outline_item = pg.ImageItem(axisOrder="row-major")  # the selected region's outline
        self.outline: Volume | None = None
        layers = (self._image_item, self._overlay_item, self._labels_item, self._mask_item, self._outline_item)
        for z, item in enumerate(layers):
            item.setZValue(z)
            # Each item keeps its picture scaled to the screen: a panel whose image did not change
            # repaints the crosshair's strips (MinimalViewportUpdate, above) with a blit from it.
            # It also keeps partial repaints exact: a scaled image drawn again through a strip's
            # clip samples its source pixels with another phase (a seam a pixel off).
            item.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
            self._view_box.addItem(item)
        self._vertical_line = CrosshairLine(vertical=True)
        self._horizontal_line = CrosshairLine(vertical=False)
        for line in (self._vertical_line, self._horizontal_line):
            line.setZValue(10)
            self._view_box.addItem(line, ignoreBounds=True)

        self._letter_labels = {edge: _overlay_label(self, LETTER_STYLE) for edge in edge_letters(plane)}
        for edge, letter in edge_letters(plane).items():
            self._letter_labels[edge].setText(letter)
        # The title has a strip of its own above the image, the panel's whole width: never
        # over the anatomy, never squeezed beside the top letter (it was cut to "original: T1 M...").
        self._title_label = _overlay_label(
            self, f"color: {TITLE_TEXT_COLOUR}; background: {TITLE_STRIP_COLOUR}; padding: 0 4px;"
        )
        self._header_px = 0
        # The corner text changes on every scroll: drawn in the view's own paint pass
        # (drawForeground) rather than as a label, whose every change costs another paint.
        self.drawn_position_text = ""
        self.drawn_position_box = QtCore.QRect()
        self._synthetic_label = _overlay_label(self, SYNTHETIC_STYLE)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        state.cursor_changed.connect(self._on_cursor_changed)
        state.display_changed.connect(self._on_display_changed)
        content.window_changed.connect(self._on_content_window_changed)
        self.refresh(force=True)
        self.reset_zoom()

    # ----- public hooks -------------------------------------------------------------------
    def set_overlay_text_visible(self, visible: bool) -> None:
        """Show or hide the text drawn over the image: the title (volume name) and the corner
        read-out (slice, position, window). Orientation letters stay, and so does the SYNTHETIC
        label, which follows only what is drawn. Blinded reading sessions hide the text."""
        self._overlay_text_visible = bool(visible)
        self._title_label.setVisible(self._overlay_text_visible)
        self._place_overlays()
        self.viewport().update()

    @property
    def overlay_text_visible(self) -> bool:
        return self._overlay_text_visible

    def set_crosshair_visible(self, visible: bool) -> None:
        """Show or hide the crosshair lines (the cursor position still follows the state)."""
        self._vertical_line.setVisible(bool(visible))
        self._horizontal_line.setVisible(bool(visible))

    @property
    def view_box(self) -> pg.ViewBox:
        return self._view_box

    @property
    def image_item(self) -> pg.ImageItem:
        return self._image_item

    @property
    def volume(self) -> Volume:
        """The volume drawn in the base image (the partner in flicker mode when it is shown)."""
        if self.compare_mode is CompareMode.FLICKER and self.flicker_shows_partner and self.partner is not None:
            return self.partner
        return self.content.volume

    def scene_to_lps(self, point_mm: QtCore.QPointF) -> np.ndarray:
        """LPS (mm) of a point in the view box's coordinates on the slice shown."""
        position = slice_position_mm(self.plane, self.state.cursor_lps_mm)
        return lps_from_scene(self.plane, float(point_mm.x()), float(point_mm.y()), position)

    def lps_to_scene(self, lps_mm) -> QtCore.QPointF:
        u, v = scene_from_lps(self.plane, lps_mm)
        return QtCore.QPointF(float(u), float(v))

    def synthetic_labels(self) -> list[str]:
        """The SYNTHETIC labels of every synthesized volume drawn in this panel now."""
        shown = [self.volume]
        if self.partner is not None and self.compare_mode in (CompareMode.OVERLAY, CompareMode.CHECKERBOARD):
            shown.append(self.partner)
        return synthetic_labels(shown, self.labels_blinded_study_images)

    def set_partner(self, partner: Volume | None, mode: CompareMode | str) -> None:
        """Compare this panel's volume with ``partner`` (already on this volume's grid for
        checkerboard) in one of ``COMPARE_MODES``."""
        if mode not in COMPARE_MODES:
            raise ValueError(f"unknown compare mode {mode!r}")
        self.partner = partner
        self.compare_mode = CompareMode(mode) if partner is not None else CompareMode.SIDE_BY_SIDE
        self.flicker_shows_partner = False
        self.refresh(force=True)

    def toggle_flicker(self) -> None:
        if self.compare_mode is CompareMode.FLICKER and self.partner is not None:
            self.flicker_shows_partner = not self.flicker_shows_partner
            self.refresh(force=True)

    def set_label_layer(self, layer: LabelLayer | None) -> None:
        """Draw a label map over this panel (None: no label map); redrawn with every slice."""
        self.label_layer = layer
        self._draw_labels(self._shown_position_mm)
        self._update_labels()

    def set_overlay_opacity(self, opacity: float) -> None:
        self.overlay_opacity = float(np.clip(opacity, 0.0, 1.0))
        self._overlay_item.setOpacity(self.overlay_opacity)

    def synthetic_label_room(self) -> int:
        """Viewport pixels the SYNTHETIC label takes at the top of the image (0 without one)."""
        label = self._synthetic_label
        if not label.isVisibleTo(self) or not label.text():
            return 0
        return max(0, label.geometry().bottom() + 1 - self.viewport().y() + 2)

    def reset_zoom(self, top_room_px: int | None = None) -> None:
        """Fit the reference volume (the same field of view in every linked panel) below the
        top ``top_room_px`` pixels of the viewport (default: this panel's SYNTHETIC label's
        room), so that the label never lies over the image: wrapped onto two or three lines in
        a four-column compare it covered the top of the anatomy (a phantom's superior marker)."""
        u_low, v_low, u_high, v_high = field_of_view_mm(self.state.reference, self.plane)
        room = self.synthetic_label_room() if top_room_px is None else top_room_px
        height = self.viewport().height()
        # The view's top is v_low (y runs down): room mm above it, in the scale the fit will have
        # where the height limits it (where the width does, the image sits lower still).
        above = room * (v_high - v_low) / (height - room) if 0 < room < height else 0.0
        self._view_box.setRange(xRange=(u_low, u_high), yRange=(v_low - above, v_high), padding=0.02)

    # ----- interaction --------------------------------------------------------------------
    def move_cursor_to_scene(self, point_mm: QtCore.QPointF) -> None:
        """Put the crosshair where the user clicked, kept inside the volume this panel shows: a
        click on the black around a thin (one- or two-slice) image must not leave the other
        panels showing nothing."""
        low, high = self.volume.bounds_lps_mm()
        self.state.set_cursor(np.clip(self.scene_to_lps(point_mm), low, high))

    def scroll(self, slices: int) -> None:
        self.state.step(self.plane, slices)

    def drag_window(self, dx_pixels: float, dy_pixels: float) -> None:
        """Right drag: right = wider window, up = lower level (brighter), scaled to the window."""
        content = self.content
        window = content.fixed_window or self.state.display.window
        delta_center, delta_width = dy_pixels * window.width / 256, dx_pixels * window.width / 128
        if content.fixed_window is None:
            self.state.adjust_window(delta_center=delta_center, delta_width=delta_width)
        elif content.window_adjustable:
            content.fixed_window = WindowLevel(
                window.center + delta_center, max(window.width + delta_width, 1e-3)
            )
            content.window_changed.emit()

    def enterEvent(self, event) -> None:
        # Keys scroll the panel under the mouse, as the wheel does (no click needed first).
        if not self.hasFocus() and self.isActiveWindow():
            self.setFocus(QtCore.Qt.FocusReason.MouseFocusReason)
        super().enterEvent(event)

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        steps = {
            QtCore.Qt.Key.Key_Up: 1,
            QtCore.Qt.Key.Key_Down: -1,
            QtCore.Qt.Key.Key_PageUp: 10,
            QtCore.Qt.Key.Key_PageDown: -10,
        }
        if event.key() in steps:
            self.scroll(steps[event.key()])
            event.accept()
        else:
            super().keyPressEvent(event)

    # ----- drawing ------------------------------------------------------------------------
    def _on_cursor_changed(self, cursor_lps_mm: np.ndarray) -> None:
        self.refresh()

    def _on_display_changed(self, display) -> None:
        self.refresh(force=True, keep_cuts=True)

    def _on_content_window_changed(self) -> None:
        self.refresh(force=True, keep_cuts=True)

    def _window_and_table(self) -> tuple[WindowLevel, np.ndarray]:
        display = self.state.display
        window = self.content.fixed_window or display.window
        if self.content.colormap is not None:
            return window, lookup_table(self.content.colormap)
        return window, lookup_table(display.colormap, display.invert)

    def refresh(self, force: bool = False, keep_cuts: bool = False) -> None:
        """Redraw: re-cut the slice only when the slice position changed, or when ``force``d
        (then from the voxels again, unless ``keep_cuts``: only the display changed).

        A panel put aside (``set_shown(False)``: a compare row not shown) waits until shown.
        """
        if force and not keep_cuts:
            self._recent_cuts.clear()  # voxels may have changed in place
        if getattr(self, "_put_aside", False):
            self._stale = True
            return
        self._stale = False
        cursor = self.state.cursor_lps_mm
        u, v = scene_from_lps(self.plane, cursor)
        self._vertical_line.set_value(float(u))
        self._horizontal_line.set_value(float(v))
        position = slice_position_mm(self.plane, cursor)
        if force or position != self._shown_position_mm:
            self._shown_position_mm = position
            self._draw_slices(position)
        self._update_labels()

    def _cut(self, volume: Volume, position_mm: float) -> SliceImage:
        """The slice of ``volume`` at ``position_mm``, kept for redraws that change only the
        display (a window drag redraws many times; a lazily resampled slice costs milliseconds)."""
        key = (id(volume), position_mm)
        cut = self._recent_cuts.get(key)
        if cut is None or cut[0] is not volume:
            cut = (volume, extract_slice(volume, self.plane, position_mm))
            self._recent_cuts[key] = cut
            while len(self._recent_cuts) > 4:
                self._recent_cuts.pop(next(iter(self._recent_cuts)))
        return cut[1]

    def _draw_slices(self, position_mm: float) -> None:
        window, table = self._window_and_table()
        base = self._cut(self.volume, position_mm)
        pixels = base.pixels
        if self.compare_mode is CompareMode.CHECKERBOARD and self.partner is not None:
            other = self._cut(self.partner, position_mm).pixels
            if other.shape == pixels.shape:
                rows, cols = np.indices(pixels.shape)
                tiles = ((rows // CHECKER_TILE_PIXELS) + (cols // CHECKER_TILE_PIXELS)) % 2 == 1
                pixels = np.where(tiles, other, pixels)
        self._set_image(self._image_item, pixels, base, window, table)
        if self.compare_mode is CompareMode.OVERLAY and self.partner is not None:
            overlay = self._cut(self.partner, position_mm)
            self._set_image(self._overlay_item, overlay.pixels, overlay, window, lookup_table("hot"))
            self._overlay_item.setOpacity(self.overlay_opacity)
            self._overlay_item.show()
        else:
            self._overlay_item.hide()
        threshold = self.state.display.threshold
        if threshold is not None and self.content.fixed_window is None and pixels.ndim == 2:
            mask = np.zeros(pixels.shape + (4,), dtype=np.uint8)
            above = np.nan_to_num(pixels, nan=-np.inf) > threshold
            mask[above] = (255, 40, 40, 140)
            self._mask_item.setImage(mask, autoLevels=False, levels=None)
            self._mask_item.setRect(QtCore.QRectF(*base.extent_mm))
            self._mask_item.show()
        else:
            self._mask_item.hide()
        self._draw_labels(position_mm)
        self._draw_outline(position_mm)
        # A new image repaints the whole viewport at once: its rectangle joined to the
        # crosshair's strips and the corner band made a many-rectangle clip, slower to paint
        # through than the whole viewport (3x3 re-cut 15.1 vs 11.9 ms CPU, same process).
        self.scene().update(self.mapToScene(self.viewport().rect()).boundingRect())

    def shown_label_layer(self) -> LabelLayer | None:
        """The label layer drawn now: not while flicker shows the partner (the labels are of the
        panel's own volume, not of the image flickered in)."""
        layer = self.label_layer
        if layer is None or not layer.shown or self.volume is not self.content.volume:
            return None
        return layer

    def _draw_labels(self, position_mm: float | None) -> None:
        layer = self.shown_label_layer()
        if layer is None or position_mm is None:
            self._labels_item.hide()
            return
        cut = self._cut(layer.volume, position_mm)
        values = np.nan_to_num(np.asarray(cut.pixels, dtype=np.float64), nan=0.0)
        index = np.clip(np.rint(values), 0, len(layer.colours) - 1).astype(np.intp)
        self._labels_item.setImage(layer.colours[index], autoLevels=False, levels=None)
        self._labels_item.setRect(QtCore.QRectF(*cut.extent_mm))
        self._labels_item.setOpacity(layer.opacity)
        self._labels_item.show()

    def set_outline(self, outline: Volume | None) -> None:
        """Outline the non-zero voxels of ``outline`` (a region's mask, any grid) in this panel."""
        self.outline = outline
        self._draw_outline(self._shown_position_mm)

    def _draw_outline(self, position_mm: float | None) -> None:
        if self.outline is None or position_mm is None:
            self._outline_item.hide()
            return
        cut = self._cut(self.outline, position_mm)
        inside = np.nan_to_num(cut.pixels, nan=0.0) > 0.5
        from scipy import ndimage  # here: scipy's import would delay the first image by ~0.3 s

        edge = inside & ~ndimage.binary_erosion(inside, border_value=0)
        if not edge.any():
            self._outline_item.hide()
            return
        image = np.zeros(edge.shape + (4,), dtype=np.uint8)
        image[edge] = (60, 255, 120, 255)  # green: neither sign's colour in the diverging maps
        self._outline_item.setImage(image, autoLevels=False, levels=None)
        self._outline_item.setRect(QtCore.QRectF(*cut.extent_mm))
        self._outline_item.show()

    @staticmethod
    def _set_image(
        item: pg.ImageItem, pixels: np.ndarray, cut: SliceImage, window: WindowLevel, table: np.ndarray
    ) -> None:
        if pixels.ndim == 3:  # colour: shown as it is, no window/level or colour map
            item.setImage(pixels, autoLevels=False, levels=(0, 255), lut=None)
        else:
            item.setImage(pixels, autoLevels=False, levels=(window.low, window.high), lut=table)
        item.setRect(QtCore.QRectF(*cut.extent_mm))

    def position_text(self) -> str:
        """Bottom-right corner: slice number / count of the drawn volume, position, window."""
        window, _ = self._window_and_table()
        return corner_text(self.volume, self.plane, self.state.cursor_lps_mm, window)

    def shown_title(self) -> str:
        """The panel's title: what it shows, and the label map drawn over it (derived data)."""
        title = self.content.title or self.volume.name
        layer = self.shown_label_layer()
        if layer is not None and layer.note:
            title += f"  + {layer.note}"
        return title

    def _update_labels(self) -> None:
        title = self.shown_title()
        if self.compare_mode is CompareMode.FLICKER and self.partner is not None:
            # First, so that no elision hides which image is on screen.
            title = "[flicker: " + ("partner" if self.flicker_shows_partner else "base") + "]  " + title
        position = self.position_text()
        synthetic = "\n".join(self.synthetic_labels())
        # Text changes repaint the image under the labels: touch them only when they change.
        previous = self._label_texts
        self._label_texts = (title, position, synthetic)
        if previous is None or (title, synthetic) != (previous[0], previous[2]):
            self._full_title = title
            self._place_overlays()
            self.viewport().update()  # the corner text gives way to the SYNTHETIC label
        elif position != previous[1]:
            # Through the scene, with the items' changes: one paint of the panel, not two.
            self.scene().update(self.mapToScene(self._corner_text_strip()).boundingRect())
        # Not switchable: re-asserted on every redraw, following only what is drawn.
        self._synthetic_label.setVisible(bool(synthetic))

    def _title_base_font(self) -> QtGui.QFont:
        """The title's font as the style gave it (the title may be drawn smaller to fit)."""
        if not hasattr(self, "_title_font"):
            self._title_font = QtGui.QFont(self._title_label.font())
        return self._title_font

    def _place_overlays(self) -> None:
        # The header strip (the title's) is a viewport margin: the image starts below it.
        base_font = self._title_base_font()
        header = QtGui.QFontMetrics(base_font).height() + 4 if self._overlay_text_visible else 0
        if header != self._header_px:
            self._header_px = header
            self.setViewportMargins(0, header, 0, 0)
            self._fit_scene_to_viewport()
        width, height = self.width(), self.height()
        for edge, label in self._letter_labels.items():
            label.adjustSize()
            x = {"left": 4, "right": width - label.width() - 4}.get(edge, (width - label.width()) // 2)
            y = {"top": header + 2, "bottom": height - label.height() - 2}.get(
                edge, header + (height - header - label.height()) // 2
            )
            label.move(x, y)
        # Title in the strip, the panel's whole width, elided at its end only where even that is
        # too narrow: the kind ("original", "synthesized", "difference") comes first and stays.
        # A title a little too wide is set a little smaller (down to 80 %) before it is elided.
        full, available = getattr(self, "_full_title", ""), max(20, width - 20)
        font = QtGui.QFont(base_font)
        for scale in (1.0, 0.92, 0.86, 0.8):
            if base_font.pointSizeF() > 0:
                font.setPointSizeF(base_font.pointSizeF() * scale)
            if QtGui.QFontMetrics(font).horizontalAdvance(full) <= available:
                break
        self._title_label.setFont(font)
        metrics = QtGui.QFontMetrics(font)
        self._title_label.setText(metrics.elidedText(full, QtCore.Qt.TextElideMode.ElideRight, available))
        frame = self.frameWidth()  # the strip is the whole margin above the image, inside the frame
        self._title_label.setGeometry(frame, frame, max(0, width - 2 * frame), header)
        # Top left, under the title, so neither hides the other. Never elided: wrapped onto
        # as many lines as the panel's width needs, so every character stays on screen.
        label = self._synthetic_label
        synthetic = self._label_texts[2] if self._label_texts else ""
        label.ensurePolished()  # the style sheet's bold font, before measuring with it
        room = width - 8
        for slack in (10, 20, 40):  # the style sheet's padding, then more if the style adds some
            lines = wrap_to_width(synthetic, max(room - slack, 1), label.fontMetrics().horizontalAdvance)
            label.setText("\n".join(lines))
            label.adjustSize()
            if label.width() <= room:
                break
        label.move(4, header + 2)
        label.raise_()
        top = self._letter_labels.get("top")
        if top is not None and synthetic and label.geometry().intersects(top.geometry()):
            top.move(top.x(), label.geometry().bottom() + 2)  # under the label, not hidden by it

    def is_shown(self) -> bool:
        """Not put aside (``set_shown``)."""
        return not getattr(self, "_put_aside", False)

    def set_shown(self, shown: bool) -> None:
        """Show or put aside this panel; a panel put aside skips redraws and catches up when shown."""
        self._put_aside = not shown
        self.setVisible(shown)
        if shown and getattr(self, "_stale", False):
            self.refresh(force=True)

    def drawForeground(self, painter: QtGui.QPainter, rect: QtCore.QRectF) -> None:
        """Bottom right, one line up (clear of the bottom letter): slice, position, window."""
        super().drawForeground(painter, rect)
        if not self._overlay_text_visible:
            self.drawn_position_text = ""
            return
        text = self._label_texts[1] if self._label_texts else ""
        painter.save()
        painter.resetTransform()  # viewport pixels, not scene millimetres
        metrics = painter.fontMetrics()
        viewport = self.viewport().rect()
        text, box = self._corner_text_box(text, metrics, viewport)
        if text:
            painter.fillRect(box, QtGui.QColor(0, 0, 0, 120))
            painter.setPen(QtGui.QColor("#e8e8e8"))
            painter.drawText(box, QtCore.Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()
        self.drawn_position_text = text
        self.drawn_position_box = box

    def _corner_text_strip(self) -> QtCore.QRect:
        """The viewport's band that holds the corner text (``_corner_text_box``), whatever its width."""
        line = self.viewport().fontMetrics().height()
        viewport = self.viewport().rect()
        return QtCore.QRect(0, viewport.height() - 2 * line - 6, viewport.width(), line + 6)

    def _corner_text_box(
        self, text: str, metrics: QtGui.QFontMetrics, viewport: QtCore.QRect
    ) -> tuple[str, QtCore.QRect]:
        """The corner text that fits and where: the full line, then without the window, then
        the slice number alone, elided at last; nothing where it would cover the SYNTHETIC label."""
        line = metrics.height()
        slice_only = text.split("  ")[0]
        candidates = [text, text.split("  W ")[0], slice_only]
        fitting = [c for c in candidates if metrics.horizontalAdvance(c) + 14 <= viewport.width()]
        chosen = (
            fitting[0]
            if fitting
            else metrics.elidedText(
                slice_only, QtCore.Qt.TextElideMode.ElideRight, max(viewport.width() - 14, 0)
            )
        )
        width = metrics.horizontalAdvance(chosen) + 6
        box = QtCore.QRect(viewport.width() - width - 4, viewport.height() - 2 * line - 4, width, line + 2)
        label = self._synthetic_label
        if label.isVisibleTo(self) and label.geometry().intersects(box.translated(self.viewport().pos())):
            return "", QtCore.QRect()
        return chosen, box

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        if hasattr(self, "_synthetic_label"):  # pyqtgraph resizes during its own __init__
            self._fit_scene_to_viewport()
            self._place_overlays()

    def _fit_scene_to_viewport(self) -> None:
        """pyqtgraph sizes the scene to the whole widget; with the title strip (a viewport
        margin) the image area is the viewport only, or its bottom would be cut off."""
        if self.closed or not self.autoPixelRange:
            return
        size = self.viewport().size()
        self.range = QtCore.QRectF(0, 0, size.width(), size.height())
        pg.GraphicsView.setRange(self, self.range, padding=0, disableAutoPixel=False)
        self.updateMatrix()

    def readout_at_scene(self, point_mm: QtCore.QPointF) -> str:
        """'i j k | L P S mm | value' for a scene point on the slice shown."""
        lps = self.scene_to_lps(point_mm)
        volume = self.volume
        index = volume.geometry.index_from_lps(lps)
        value = volume.value_at_index(index)
        rounded = np.round(index).astype(int)
        value_text = "outside" if np.isnan(value) else f"{value:.6g}"
        if volume.units and not np.isnan(value):
            value_text += f" {volume.units}"
        # A value read off a synthesized volume says so, like every panel that shows one.
        source = (
            f"SYNTHETIC ({volume.provenance.plugin_name}) {volume.name}"
            if volume.is_synthetic
            else volume.name
        )
        layer = self.shown_label_layer()
        label_text = ""
        if layer is not None and layer.names:
            label = layer.volume.value_at_lps(lps)
            if not np.isnan(label):
                label_text = f"  label {layer.names.get(int(label), int(label))}"
        return (
            f"{source}  voxel ({rounded[0]}, {rounded[1]}, {rounded[2]})  "
            f"LPS ({lps[0]:.1f}, {lps[1]:.1f}, {lps[2]:.1f}) mm  value {value_text}{label_text}"
        )

    def _on_mouse_moved(self, scene_pos: QtCore.QPointF) -> None:
        if not self._view_box.sceneBoundingRect().contains(scene_pos):
            return
        self.last_readout = self.readout_at_scene(self._view_box.mapSceneToView(scene_pos))
        self.readout_changed.emit(self.last_readout)

    def detach(self) -> None:
        """Stop following the shared state (before the panel is discarded)."""
        self.state.cursor_changed.disconnect(self._on_cursor_changed)
        self.state.display_changed.disconnect(self._on_display_changed)
        self.content.window_changed.disconnect(self._on_content_window_changed)

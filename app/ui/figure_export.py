"""Export the panels on screen (e.g. the compare layout) as a PNG or SVG figure.

What is burned in, so a figure cannot be mistaken or misread once it leaves the app:
the orientation letters at every panel edge, a scale bar in millimetres per panel, each
panel's title, the red SYNTHETIC label on every panel that shows synthesized data, and a
footer saying the figure contains synthesized images. Panels keep their on-screen
arrangement; images are the panels' own renderings (annotations included), the text and the
marks are drawn by the figure painter, so in SVG they stay text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PySide6 import QtCore, QtGui, QtSvg, QtWidgets

from app.core.output_path import folder_needed_reason
from app.core.planes import edge_letters
from app.ui.annotation_overlay import pixels_per_mm
from app.ui.slice_view import wrap_to_width

LETTER_COLOR = QtGui.QColor(255, 210, 74)
MARK_BACKING = QtGui.QColor(0, 0, 0, 150)  # letters and the scale bar stay readable on white
TITLE_COLOR = QtGui.QColor(221, 221, 221)
TITLE_HEIGHT = 18
SYNTHETIC_BACKGROUND = QtGui.QColor(192, 0, 26)
FOOTER_HEIGHT = 26
BAND_ROOM_ABOVE = 64  # px kept above the images: the top letter and a two-line SYNTHETIC label
BAND_ROOM_BELOW = 40  # px kept below them: the scale bar and the bottom letter
MARGIN = 4
SYNTHETIC_FOOTER = "Contains SYNTHETIC (generated) images — not acquired data"


@dataclass(frozen=True)
class ScaleBar:
    length_mm: float
    length_pixels: float

    @property
    def text(self) -> str:
        if self.length_mm >= 10 and self.length_mm % 10 == 0:
            return f"{self.length_mm / 10:g} cm"
        return f"{self.length_mm:g} mm"


def scale_bar(panel, target_fraction: float = 0.25) -> ScaleBar:
    """A round length (1, 2 or 5 x 10^n mm) close to ``target_fraction`` of the panel width."""
    per_mm = pixels_per_mm(panel)
    wanted_mm = max(panel.viewport().width() * target_fraction / max(per_mm, 1e-9), 1e-3)
    exponent = math.floor(math.log10(wanted_mm))
    candidates = [m * 10**exponent for m in (1, 2, 5, 10)]
    length = max((c for c in candidates if c <= wanted_mm), default=candidates[0])
    return ScaleBar(float(length), float(length * per_mm))


def shown_panels(panels) -> list:
    """The panels on screen: a compare row put aside (one-plane rows) is not in the figure."""
    return [panel for panel in panels if not getattr(panel, "_put_aside", False)]


def _rects(widgets: list[QtWidgets.QWidget]) -> list[QtCore.QRect]:
    """Each widget's rectangle in the figure: on-screen arrangement, shifted to start at 0, 0."""
    rects = [QtCore.QRect(w.mapTo(w.window(), QtCore.QPoint(0, 0)), w.size()) for w in widgets]
    bounds = rects[0]
    for rect in rects[1:]:
        bounds = bounds.united(rect)
    return [rect.translated(-bounds.topLeft()) for rect in rects]


@dataclass(frozen=True)
class Band:
    """The rows of every panel's viewport a figure keeps: ``top`` to ``bottom`` (exclusive), the
    image with room for the marks, then the viewport's last ``strip`` rows (the corner read-out)."""

    top: int
    bottom: int
    strip: int
    full_height: int

    @property
    def height(self) -> int:
        return self.bottom - self.top + self.strip

    @property
    def cropped(self) -> bool:
        return self.height < self.full_height


def image_band(panels) -> Band:
    """The band of the viewports that holds the images (the slices' extent), with room above for
    the top letter and a SYNTHETIC label and below for the scale bar, plus the corner read-out.

    A single-row compare at 1600x950 with the docks open is a row of tall, narrow panels: the
    whole viewports made a figure ~70 % black above and below the anatomy. Panels of different
    heights, or a band that would save under 15 % of the height, keep the whole viewports."""
    heights = {panel.viewport().height() for panel in panels}
    full = max(heights)
    whole = Band(0, full, 0, full)
    if len(heights) != 1:
        return whole
    tops, bottoms = [], []
    for panel in panels:
        item = getattr(panel, "image_item", None)
        if item is None or item.image is None:
            return whole
        box = panel.mapFromScene(item.sceneBoundingRect()).boundingRect() & panel.viewport().rect()
        if box.isEmpty():
            return whole
        tops.append(box.top())
        bottoms.append(box.bottom() + 1)
    strip = 2 * panels[0].viewport().fontMetrics().height() + 6  # the corner read-out and below
    above = max(BAND_ROOM_ABOVE, *(_synthetic_labels_bottom(panel) + 4 for panel in panels))
    top = max(0, min(tops) - above)
    bottom = min(full - strip, max(bottoms) + BAND_ROOM_BELOW)
    if bottom <= top:
        return whole
    band = Band(top, bottom, strip, full)
    return band if band.height < 0.85 * full else whole


def _panel_rects(panels, extras=()) -> tuple[list[QtCore.QRect], list[QtCore.QRect]]:
    """Each panel's image in the figure, under a title strip of TITLE_HEIGHT, and each extra's
    place, in the on-screen arrangement (rows closed up to the ``image_band``); the extras start
    level with the images and span the panels' height."""
    panels = shown_panels(panels)
    rects = _rects([p.viewport() for p in panels] + list(extras))
    images, others = rects[: len(panels)], rects[len(panels) :]
    band = image_band(panels)
    if band.cropped:
        cut = band.full_height - band.height
        row_tops = sorted({rect.top() for rect in images})
        images = [
            QtCore.QRect(r.left(), r.top() - cut * row_tops.index(r.top()), r.width(), band.height)
            for r in images
        ]
        span = max(r.bottom() for r in images) + 1
        others = [QtCore.QRect(r.left(), r.top(), r.width(), span - r.top()) for r in others]
    images = [r.translated(0, TITLE_HEIGHT) for r in images]
    others = [r.translated(0, TITLE_HEIGHT) for r in others]
    return images, others


def figure_size(panels, extras=()) -> QtCore.QSize:
    images, others = _panel_rects(panels, extras)
    rects = images + others
    width = max(r.right() for r in rects) + 1
    height = max(r.bottom() for r in rects) + 1 + FOOTER_HEIGHT
    return QtCore.QSize(width, height)


def _paint_panel_image(painter, rect: QtCore.QRect, panel, band: Band) -> QtCore.QRect | None:
    """The panel's rendering in the band; returns where its corner read-out lies (viewport
    pixels from the rect's top), None when it shows none."""
    picture = panel.viewport().grab()
    scale = picture.devicePixelRatio()
    read_out = getattr(panel, "drawn_position_box", None)
    if not band.cropped:
        painter.drawPixmap(rect, picture)
        return read_out
    width = panel.viewport().width()
    image_rows = band.bottom - band.top

    def source(top: int, height: int) -> QtCore.QRect:
        return QtCore.QRect(0, int(top * scale), int(width * scale), int(height * scale))

    painter.drawPixmap(
        QtCore.QRect(rect.left(), rect.top(), width, image_rows), picture, source(band.top, image_rows)
    )
    strip_top = band.full_height - band.strip
    painter.drawPixmap(
        QtCore.QRect(rect.left(), rect.top() + image_rows, width, band.strip),
        picture,
        source(strip_top, band.strip),
    )
    if read_out is None or read_out.isEmpty():
        return read_out
    return read_out.translated(0, image_rows - strip_top)


def _extra_picture(widget: QtWidgets.QWidget, size: QtCore.QSize) -> QtGui.QPixmap:
    """An extra (the colour bar) as it looks, painted at the figure's ``size`` when it has its own."""
    picture_at = getattr(widget, "picture_at", None)
    return picture_at(size) if picture_at is not None and size != widget.size() else widget.grab()


def title_text(panel) -> tuple[str, str]:
    """(title, window) of a panel in the figure: its whole title and 'W 936 L 468'."""
    title = panel.shown_title()
    window = panel.position_text().partition("  W ")[2]
    return title, f"W {window}" if window else ""


def paint_figure(painter: QtGui.QPainter, panels, extras=()) -> None:
    """Paint the panels (and ``extras`` such as the colour bar, as they look) with their
    burned-in marks; the painter's device has figure_size()."""
    QtWidgets.QApplication.processEvents()
    size = figure_size(panels, extras)
    painter.fillRect(QtCore.QRect(QtCore.QPoint(0, 0), size), QtGui.QColor("black"))
    panels = shown_panels(panels)
    images, others = _panel_rects(panels, extras)
    band = image_band(panels)
    lines = title_lines(panels)
    for widget, rect in zip(extras, others, strict=True):
        painter.drawPixmap(rect, _extra_picture(widget, rect.size()))
    any_synthetic = False
    for panel, rect in zip(panels, images, strict=True):
        read_out = _paint_panel_image(painter, rect, panel, band)
        _paint_letters(painter, rect, panel)
        _paint_title(painter, rect, *title_text(panel), lines)
        _paint_scale_bar(painter, rect, scale_bar(panel), read_out)
        labels = panel.synthetic_labels()
        if labels:
            any_synthetic = True
            _paint_synthetic(painter, rect, labels)
    footer = QtCore.QRect(0, size.height() - FOOTER_HEIGHT, size.width(), FOOTER_HEIGHT)
    if any_synthetic:
        painter.fillRect(footer, SYNTHETIC_BACKGROUND)
        _text(painter, footer.adjusted(MARGIN, 0, 0, 0), SYNTHETIC_FOOTER, QtGui.QColor("white"), bold=True)


def _font(painter: QtGui.QPainter, pixel_size: int, bold: bool) -> None:
    font = QtGui.QFont(painter.font())
    font.setPixelSize(pixel_size)
    font.setBold(bold)
    painter.setFont(font)


def _text(painter, rect: QtCore.QRect, text: str, color, bold=False, align=None, pixel_size=13) -> None:
    _font(painter, pixel_size, bold)
    painter.setPen(color)
    flags = (
        align
        if align is not None
        else QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter
    )
    painter.drawText(rect, int(flags), text)


def _paint_letters(painter, rect: QtCore.QRect, panel) -> None:
    a = QtCore.Qt.AlignmentFlag
    places = {
        "top": a.AlignHCenter | a.AlignTop,
        "bottom": a.AlignHCenter | a.AlignBottom,
        "left": a.AlignLeft | a.AlignVCenter,
        "right": a.AlignRight | a.AlignVCenter,
    }
    inner = rect.adjusted(MARGIN, 2, -MARGIN, -2)
    for edge, letter in edge_letters(panel.plane).items():
        _font(painter, 16, True)
        box = painter.boundingRect(inner, int(places[edge]), letter).adjusted(-2, 0, 2, 0)
        painter.fillRect(box, MARK_BACKING)  # yellow on a white difference was unreadable
        _text(painter, inner, letter, LETTER_COLOR, bold=True, align=places[edge], pixel_size=16)


def _title_font() -> QtGui.QFont:
    font = QtGui.QFont()
    font.setPixelSize(13)
    return font


def _title_fits(panel) -> bool:
    """Whether the panel's whole title and its window fit on one line of its width."""
    title, window = title_text(panel)
    metrics = QtGui.QFontMetrics(_title_font())
    needed = metrics.horizontalAdvance(title) + (
        metrics.horizontalAdvance(window) + 2 * MARGIN if window else 0
    )
    return needed <= panel.viewport().width() - 2 * MARGIN


def title_lines(panels) -> int:
    """Lines of the figure's title strips: two when a title and its window do not fit on one
    (narrow panels: the window went, and the corner read-out had dropped it too)."""
    return 1 if all(_title_fits(panel) for panel in shown_panels(panels)) else 2


def _paint_title(painter, rect: QtCore.QRect, title: str, window: str, lines: int = 1) -> None:
    """Above the image, the panel's whole width: the title on the left, the window on the right
    (the panel's corner drops the window when it is narrow; a figure keeps it), on a second line
    of the strip when they do not fit on one."""
    strip = QtCore.QRect(rect.left(), rect.top() - TITLE_HEIGHT * lines, rect.width(), TITLE_HEIGHT)
    painter.setFont(_title_font())
    metrics = QtGui.QFontMetrics(painter.font())
    window_width = metrics.horizontalAdvance(window) + 2 * MARGIN if window else 0
    title_room = strip.width() - window_width - 2 * MARGIN
    window_strip = strip
    if metrics.horizontalAdvance(title) > title_room and window:  # the title first, then the window
        title_room = strip.width() - 2 * MARGIN
        window_strip = strip.translated(0, TITLE_HEIGHT) if lines > 1 else QtCore.QRect()
    elided = metrics.elidedText(title, QtCore.Qt.TextElideMode.ElideRight, title_room)
    _text(painter, strip.adjusted(MARGIN, 0, -MARGIN, 0), elided, TITLE_COLOR)
    if window and not window_strip.isEmpty():
        right = QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter
        _text(painter, window_strip.adjusted(MARGIN, 0, -MARGIN, 0), window, TITLE_COLOR, align=right)


def _paint_scale_bar(
    painter, rect: QtCore.QRect, bar: ScaleBar, read_out: QtCore.QRect | None = None
) -> None:
    """Bottom right, above the panel's own corner read-out (``read_out``, viewport pixels) when shown."""
    right = rect.right() - 3 * MARGIN
    left = right - bar.length_pixels
    y = rect.bottom() - 24
    if read_out is not None and not read_out.isEmpty():
        y = min(y, rect.top() + read_out.top() - 24)  # the label (y + 4 .. y + 22) ends above it
    painter.fillRect(QtCore.QRectF(left - 6, y - 9, bar.length_pixels + 12, 33), MARK_BACKING)
    pen = QtGui.QPen(QtGui.QColor("white"), 3)
    painter.setPen(pen)
    painter.drawLine(QtCore.QPointF(left, y), QtCore.QPointF(right, y))
    for x in (left, right):
        painter.drawLine(QtCore.QPointF(x, y - 5), QtCore.QPointF(x, y + 5))
    label_rect = QtCore.QRect(int(left), int(y) + 4, int(max(bar.length_pixels, 48)), 18)
    _text(
        painter,
        label_rect,
        bar.text,
        QtGui.QColor("white"),
        bold=True,
        align=QtCore.Qt.AlignmentFlag.AlignLeft,
    )


def _synthetic_font() -> QtGui.QFont:
    font = QtGui.QFont()
    font.setPixelSize(13)
    font.setBold(True)
    return font


def _synthetic_lines(label: str, width: int, metrics: QtGui.QFontMetrics) -> list[str]:
    # Wrapped, never cut, in a narrow panel (the next panel is painted over any overflow).
    return wrap_to_width(label, max(width - 2 * MARGIN - 10, 1), metrics.horizontalAdvance)


def _synthetic_labels_bottom(panel) -> int:
    """How far below the image's top edge a figure's SYNTHETIC labels of ``panel`` reach (0: none)."""
    labels = panel.synthetic_labels()
    if not labels:
        return 0
    metrics = QtGui.QFontMetrics(_synthetic_font())
    width = panel.viewport().width()
    return 22 + sum(len(_synthetic_lines(label, width, metrics)) * metrics.height() + 6 for label in labels)


def _paint_synthetic(painter, rect: QtCore.QRect, labels: list[str]) -> None:
    painter.setFont(_synthetic_font())
    metrics = QtGui.QFontMetrics(painter.font())
    y = rect.top() + 22
    for label in labels:
        lines = _synthetic_lines(label, rect.width(), metrics)
        box = QtCore.QRect(
            rect.left() + MARGIN,
            y,
            max(metrics.horizontalAdvance(line) for line in lines) + 10,
            len(lines) * metrics.height() + 4,
        )
        painter.fillRect(box, SYNTHETIC_BACKGROUND)
        _text(
            painter,
            box,
            "\n".join(lines),
            QtGui.QColor("white"),
            bold=True,
            align=QtCore.Qt.AlignmentFlag.AlignCenter,
        )
        y += box.height() + 2


def export_figure(panels, path: str | Path, extras=()) -> Path:
    """Write ``panels`` (plus ``extras`` widgets, e.g. the colour bar) as a figure; the format
    follows the suffix (.png or .svg)."""
    panels = shown_panels(panels)
    if not panels:
        raise ValueError("there is nothing on screen to export: open a volume first")
    path = Path(path)
    suffix = path.suffix.lower()
    # Qt's writers give no reason (the SVG one writes nothing and says nothing): a file in the
    # way of the folder is named before anything is drawn.
    in_the_way = folder_needed_reason(path)
    if in_the_way is not None:
        raise OSError(f"cannot write {path}: {in_the_way}")
    size = figure_size(panels, extras)
    if suffix == ".svg":
        generator = QtSvg.QSvgGenerator()
        generator.setFileName(str(path))
        generator.setSize(size)
        generator.setViewBox(QtCore.QRect(QtCore.QPoint(0, 0), size))
        generator.setTitle("SynthView figure")
        generator.setDescription(
            SYNTHETIC_FOOTER if any(p.synthetic_labels() for p in panels) else "SynthView figure"
        )
        painter = QtGui.QPainter(generator)
        paint_figure(painter, panels, extras)
        painter.end()
    elif suffix == ".png":
        image = QtGui.QImage(size, QtGui.QImage.Format.Format_RGB32)
        painter = QtGui.QPainter(image)
        paint_figure(painter, panels, extras)
        painter.end()
        if not image.save(str(path)):
            raise OSError(f"cannot write {path}: the image could not be written there")
    else:
        raise ValueError(f"figure format {suffix or '(none)'} not supported: use .png or .svg")
    return path


def figure_extras(window) -> list[QtWidgets.QWidget]:
    """Widgets that belong in the figure besides the panels: the difference colour bar."""
    color_bar = getattr(getattr(window, "view", None), "color_bar", None)
    return [color_bar] if color_bar is not None and color_bar.isVisible() else []


def install_figure_export(window) -> None:
    """Add File > Export figure (PNG/SVG) to a MainWindow."""
    menus = [action.menu() for action in window.menuBar().actions() if action.menu() is not None]
    file_menu = next((m for m in menus if m.title().replace("&", "") == "File"), None)
    if file_menu is None:
        file_menu = window.menuBar().addMenu("&File")
    action = QtGui.QAction("Export figure (PNG/SVG)...", window)
    action.setShortcut(QtGui.QKeySequence("Ctrl+E"))

    def choose() -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            window, "Export figure", "figure.png", "PNG image (*.png);;SVG drawing (*.svg)"
        )
        if path:
            try:
                export_figure(window.panels, path, figure_extras(window))
                window.statusBar().showMessage(f"Figure written to {path}", 5000)
            except (OSError, ValueError) as error:  # through the window's one error channel
                window.session.report_error("Cannot export the figure", str(error))

    action.triggered.connect(choose)
    # Beside Save screenshot, before the separator that sets Quit apart (Quit stays last).
    separator = next((a for a in file_menu.actions() if a.isSeparator()), None)
    file_menu.insertAction(separator, action)
    window.export_figure_action = action

"""Render resources/icons/synthview.svg into the PNG, ICO and ICNS files the installers use.

Run once after editing the SVG (the outputs are committed, so builds need neither Qt's SVG
renderer nor network): ``QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/make_icons.py``.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image
from PySide6 import QtCore, QtGui, QtSvg, QtWidgets

ICON_DIR = Path(__file__).resolve().parents[1] / "resources" / "icons"


def render_png(svg_path: Path, size_px: int) -> Image.Image:
    """The SVG rasterised at size_px x size_px with a transparent background."""
    renderer = QtSvg.QSvgRenderer(str(svg_path))
    image = QtGui.QImage(size_px, size_px, QtGui.QImage.Format.Format_ARGB32)
    image.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(image)
    renderer.render(painter)
    painter.end()
    buffer = QtCore.QBuffer()
    buffer.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGBA")


def main() -> int:
    QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    svg_path = ICON_DIR / "synthview.svg"
    large = render_png(svg_path, 512)
    render_png(svg_path, 256).save(ICON_DIR / "synthview.png")
    large.save(
        ICON_DIR / "synthview.ico", sizes=[(16, 16), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]
    )
    large.save(ICON_DIR / "synthview.icns")
    print(f"icons written to {ICON_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

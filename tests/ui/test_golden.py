"""Golden-image tests on the orientation phantom: a flipped or swapped axis fails loudly.

Only the graphics scene is rendered (image, crosshair), not the text overlays, so the goldens
do not depend on fonts. Set SYNTHVIEW_UPDATE_GOLDEN=1 to rewrite them after a deliberate change
(and look at them before committing).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from app.core.display import WindowLevel
from app.core.orientation_phantom import orientation_phantom
from app.core.planes import Plane
from app.core.viewer_state import ViewerState
from app.ui.panel_grid import PanelGrid
from app.ui.slice_view import PanelContent

GOLDEN_DIR = Path(__file__).parent / "golden"
PANEL_PIXELS = 96
RAS_ORDER = np.diag([-1.0, -1.0, 1.0])
PERMUTED_ORDER = np.array([[0, 0, 1.0], [1.0, 0, 0], [0, -1.0, 0]])
# Odd sizes: the centre (initial cursor) is a voxel centre in every array order.
PHANTOM_SIZE_LPS = (33, 41, 25)


def render_plane(qtbot, volume, plane: Plane) -> np.ndarray:
    """Grey levels (rows, cols) of the scene of one panel showing ``plane`` at the centre."""
    state = ViewerState(volume)
    state.set_window(WindowLevel.from_range(0, 3000))
    grid = PanelGrid(state, [[(PanelContent(volume), plane)]])
    grid.setFixedSize(PANEL_PIXELS, PANEL_PIXELS)
    qtbot.addWidget(grid)
    grid.show()
    qtbot.waitExposed(grid)
    panel = grid.panels[0]
    panel.set_overlay_text_visible(False)  # the image alone (no title strip): the goldens' size
    panel.reset_zoom()
    QtWidgets.QApplication.processEvents()
    viewport = panel.viewport()
    image = QtGui.QImage(viewport.size(), QtGui.QImage.Format.Format_RGB32)
    image.fill(QtGui.QColor("black"))
    painter = QtGui.QPainter(image)
    panel.scene().render(
        painter, QtCore.QRectF(image.rect()), panel.mapToScene(viewport.rect()).boundingRect()
    )
    painter.end()
    grey = image.convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    pixels = np.frombuffer(grey.constBits(), np.uint8).reshape(grey.height(), grey.bytesPerLine())
    return pixels[:, : grey.width()].copy()


def _golden(name: str, rendered: np.ndarray) -> np.ndarray:
    path = GOLDEN_DIR / f"{name}.png"
    if os.environ.get("SYNTHVIEW_UPDATE_GOLDEN") == "1" or not path.exists():
        GOLDEN_DIR.mkdir(exist_ok=True)
        rows, cols = rendered.shape
        QtGui.QImage(rendered.tobytes(), cols, rows, cols, QtGui.QImage.Format.Format_Grayscale8).save(
            str(path)
        )
        if os.environ.get("SYNTHVIEW_UPDATE_GOLDEN") != "1":
            pytest.fail(f"golden {path.name} was missing and has been written; look at it, then rerun")
    image = QtGui.QImage(str(path)).convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return pixels[:, : image.width()].copy()


def differing_fraction(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return 1.0
    return float(np.mean(np.abs(a.astype(int) - b.astype(int)) > 40))


@pytest.mark.parametrize("plane", list(Plane), ids=lambda p: p.value)
def test_phantom_matches_golden_whatever_the_array_order(qtbot, plane):
    golden = None
    for direction in (np.eye(3), RAS_ORDER, PERMUTED_ORDER):
        # Same patient, three array orders: the screen must be identical.
        spacing = np.abs(direction.T) @ np.array([1.0, 1.5, 2.0])  # keep mm spacing per patient axis
        size = np.abs(direction.T).astype(int) @ np.array(PHANTOM_SIZE_LPS)
        rendered = render_plane(
            qtbot,
            orientation_phantom(size_ijk=tuple(size), spacing_mm=tuple(spacing), direction=direction),
            plane,
        )
        golden = _golden(f"phantom_{plane.value}", rendered) if golden is None else golden
        assert differing_fraction(rendered, golden) < 0.01, (
            f"{plane.value} differs for direction\n{direction}"
        )


@pytest.mark.parametrize("plane", list(Plane), ids=lambda p: p.value)
def test_golden_comparison_catches_flips(qtbot, plane):
    golden = _golden(
        f"phantom_{plane.value}", render_plane(qtbot, orientation_phantom(size_ijk=PHANTOM_SIZE_LPS), plane)
    )
    assert differing_fraction(golden[:, ::-1], golden) > 0.02
    assert differing_fraction(golden[::-1, :], golden) > 0.02

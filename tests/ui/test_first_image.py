"""The first image a started window paints before its panels (``app.ui.first_image``): it stands
in for them until they are built, and it draws what they draw (orientation, field of view,
window, SYNTHETIC label)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtGui

from app.core.session import Layout
from app.ui.first_image import FirstImageGrid


def grey(image: QtGui.QImage) -> np.ndarray:
    image = image.convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    width, height = image.width(), image.height()
    return np.frombuffer(image.constBits(), np.uint8).reshape(height, image.bytesPerLine())[:, :width].copy()


def test_the_first_image_stands_in_until_the_panels_replace_it(started_window, phantom, qtbot):
    window = started_window
    window.open_volume(phantom)
    grid = window.first_image
    assert isinstance(grid, FirstImageGrid)
    assert window.centralWidget().currentWidget() is grid
    assert window.view is None  # no panels yet: nothing to click
    assert window.windowTitle().endswith(phantom.name)
    # After its paint, the panels are built on a later turn of the event loop and replace it.
    qtbot.waitUntil(lambda: window.view is not None, timeout=5000)
    assert window.first_image is None
    assert window.centralWidget().currentWidget() is window.view
    assert [panel.plane.value for panel in window.view.panels] == ["axial", "coronal", "sagittal"]


def test_whoever_asks_for_the_panels_gets_them_at_once(started_window, phantom):
    window = started_window
    window.open_volume(phantom)
    assert window.first_image is not None
    panels = window.panels  # a dock or a test asking now: built now, not a first image's empty list
    assert len(panels) == 3 and window.first_image is None


@pytest.mark.parametrize("shown", ["phantom", "synthetic_phantom"])
def test_the_first_image_draws_what_the_panels_draw(started_window, shown, request, qtbot, tmp_path):
    """A synthesized volume too: the panels keep room for its SYNTHETIC label above the image."""
    window = started_window
    window.open_volume(request.getfixturevalue(shown))
    grid = window.first_image
    first = grid.grab().toImage()
    first.save(str(tmp_path / "first_image.png"))
    qtbot.waitUntil(lambda: window.view is not None, timeout=5000)
    qtbot.wait(50)  # the panels' zoom is reset on the next turn
    panels = window.view.grab().toImage()
    panels.save(str(tmp_path / "panels.png"))
    a, b = grey(first), grey(panels)
    assert a.shape == b.shape
    # The images and markers at the same places: most pixels equal; a mirrored first image is not.
    same = np.mean(np.abs(a.astype(int) - b.astype(int)) <= 24)
    mirrored = np.mean(np.abs(a[:, ::-1].astype(int) - b.astype(int)) <= 24)
    assert same > 0.97, same
    assert mirrored < same - 0.05


def test_a_synthetic_volume_is_labelled_in_the_first_image(started_window, synthetic_phantom, qtbot):
    window = started_window
    window.resize(900, 600)  # narrow cells: the label reaches the middle, where the top letter is
    window.open_volume(synthetic_phantom)
    image = window.first_image.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGB888)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    rgb = pixels[:, : 3 * image.width()].reshape(image.height(), image.width(), 3).astype(int)
    red = (np.abs(rgb - np.array([0xC0, 0x00, 0x1A])).sum(axis=2) <= 12)
    yellow = (np.abs(rgb - np.array([0xFF, 0xD2, 0x4A])).sum(axis=2) <= 12)
    for rect, _ in window.first_image.cell_rects():  # each cell's top-left carries the label
        cell = red[rect.top() : rect.top() + 80, rect.left() : rect.left() + rect.width() // 2]
        assert cell.sum() > 200
        # The top letter is moved under the label, not hidden by it (it was, in a wide label).
        centre = rect.left() + rect.width() // 2
        assert yellow[rect.top() : rect.top() + 90, centre - 12 : centre + 12].sum() > 10


def test_the_compare_grid_is_never_stood_in_for(started_window, phantom, synthetic_phantom):
    window = started_window
    window.show_compare(phantom, [synthetic_phantom])
    assert window.first_image is None and window.view is not None


def test_two_by_two_leaves_the_3d_cell_dark(started_window, phantom):
    window = started_window
    window.session.set_layout(Layout.TWO_BY_TWO)
    window.open_volume(phantom)
    grid = window.first_image
    assert [plane and plane.value for _, plane in grid.cell_rects()] == ["axial", "coronal", "sagittal", None]
    image = grey(grid.grab().toImage())
    rect = grid.cell_rects()[3][0]
    assert image[rect.top() + 5 : rect.bottom() - 5, rect.left() + 5 : rect.right() - 5].max() == 0


def test_a_window_not_started_by_a_person_builds_its_panels_at_once(main_window, phantom):
    main_window.open_volume(phantom)  # tests, 'view --screenshot': no first image
    assert main_window.first_image is None and len(main_window.panels) == 3


def test_the_panels_modules_are_imported_off_the_ui_thread(started_window, phantom, qtbot, tmp_path, monkeypatch):
    # A panel module whose import takes 0.6 s (pyqtgraph's takes 0.13 s here): the UI thread
    # keeps turning meanwhile (a 20 ms timer ticks), with the first image on screen.
    from PySide6 import QtCore

    from app.ui import first_image

    (tmp_path / "slow_panel_module.py").write_text("import time\ntime.sleep(0.6)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(first_image, "PANEL_MODULES", ("slow_panel_module", *first_image.PANEL_MODULES))
    ticks = []
    timer = QtCore.QTimer()
    timer.timeout.connect(lambda: ticks.append(window.first_image is not None))
    window = started_window
    window.open_volume(phantom)
    timer.start(20)
    qtbot.waitUntil(lambda: window.view is not None, timeout=5000)
    timer.stop()
    assert sum(ticks) >= 10  # >= 0.2 s of ticks while the first image stood in

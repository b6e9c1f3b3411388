"""What a reader sees of the compare at a laptop-like 1600x950 with the docks open: whole titles,
a single-row compare at full height, the flicker state in view."""

import pytest
from PySide6 import QtWidgets

from app.ui.application import install_tool_docks


@pytest.fixture
def docked_compare(qtbot, main_window, phantom, synthetic_phantom):
    phantom.name = "T1 MNI152 2009a 1mm"
    synthetic_phantom.name = "pseudo T1 from demo"
    assert install_tool_docks(main_window) == []
    main_window.resize(1600, 950)
    main_window.show_compare(phantom, [synthetic_phantom])
    QtWidgets.QApplication.processEvents()
    qtbot.waitUntil(lambda: main_window.view.width() > 600, timeout=3000)
    QtWidgets.QApplication.processEvents()
    return main_window


def _title(panel) -> str:
    return panel._title_label.text()


def test_titles_are_whole_at_1600x950_with_docks(qtbot, docked_compare):
    window = docked_compare
    original, synthesized = window.panels[0], window.panels[1]
    assert _title(original) == "original: T1 MNI152 2009a 1mm"
    assert _title(synthesized) == "synthesized: pseudo T1 from demo"
    # The difference's title repeated both names and was cut to 'difference original - synthesized: T1 MN...'.
    assert _title(window.panels[2]) == "difference original - synthesized"
    for panel in window.panels:  # the title strip sits above the image, inside the panel
        title = panel._title_label.geometry()
        assert title.right() <= panel.width() and title.bottom() <= panel.viewport().geometry().top()


def test_a_single_row_compare_fills_the_height(qtbot, docked_compare):
    window = docked_compare
    grid_height = window.view.grid.height()
    three_rows = window.panels[0].height()
    window.view.show_planes("axial")
    QtWidgets.QApplication.processEvents()
    shown = [panel for panel in window.panels if panel.isVisible()]
    assert len(shown) == 3
    assert all(panel.height() >= 0.9 * grid_height for panel in shown), (grid_height, three_rows)
    window.view.show_planes("all planes")
    QtWidgets.QApplication.processEvents()
    assert all(panel.isVisible() for panel in window.panels)
    assert abs(window.panels[0].height() - three_rows) <= 2


def test_the_flicker_state_is_in_view(qtbot, docked_compare):
    window = docked_compare
    window.view.show_planes("axial")
    window.view.toggle_flicker()
    QtWidgets.QApplication.processEvents()
    original = window.view.original_panels()[0]
    assert _title(original).startswith("[flicker: partner]")
    assert original._title_label.geometry().right() <= original.width()
    window.view.toggle_flicker()
    QtWidgets.QApplication.processEvents()
    assert _title(original).startswith("[flicker: base]")


def _whole_and_large(panel) -> bool:
    image = panel.mapFromScene(panel.image_item.sceneBoundingRect()).boundingRect()
    viewport = panel.viewport().rect()
    whole = viewport.adjusted(-1, -1, 1, 1).contains(image)
    return whole and (image.width() >= 0.8 * viewport.width() or image.height() >= 0.8 * viewport.height())


@pytest.mark.parametrize("plane", ["axial", "coronal", "sagittal"])
def test_a_single_row_shows_whole_images_and_the_round_trip_comes_back(qtbot, docked_compare, plane):
    """The coronal (and sagittal) single row showed the head as a dot: while the rows changed
    height the linked panels were resized one after the other and each widened the shared range
    (+-1000 mm across a 180 px panel); back to all planes, the range stayed wide."""
    window = docked_compare
    panel = next(p for p in window.panels if p.plane.value == plane)

    def zoom():
        (u_low, u_high), (v_low, v_high) = panel.view_box.viewRange()
        return panel.view_box.viewPixelSize()[0], (u_low + u_high) / 2, (v_low + v_high) / 2

    before = zoom()
    window.view.show_planes(plane)
    qtbot.wait(20)
    shown = [p for p in window.panels if p.isVisible()]
    assert len(shown) == 3 and all(_whole_and_large(p) for p in shown)
    window.view.show_planes("all planes")
    qtbot.wait(20)
    assert zoom() == pytest.approx(before, rel=0.02, abs=0.5)
    assert all(_whole_and_large(p) for p in window.panels)


def test_a_row_zoomed_into_keeps_its_zoom_and_pan_as_a_single_row(qtbot, docked_compare):
    window = docked_compare
    panel = next(p for p in window.panels if p.plane.value == "coronal")
    box = panel.view_box
    box.scaleBy((0.4, 0.4))  # the reader zoomed in
    box.translateBy(x=5.0, y=-3.0)  # and panned
    (u_low, u_high), (v_low, v_high) = box.viewRange()
    kept = (box.viewPixelSize()[0], (u_low + u_high) / 2, (v_low + v_high) / 2)
    window.view.show_planes("coronal")
    qtbot.wait(20)
    (u_low, u_high), (v_low, v_high) = box.viewRange()
    now = (box.viewPixelSize()[0], (u_low + u_high) / 2, (v_low + v_high) / 2)
    assert now == pytest.approx(kept, rel=0.02, abs=0.5)

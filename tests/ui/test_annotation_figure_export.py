"""Figure export of the compare layout: PNG/SVG with letters, scale bar and SYNTHETIC marks."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtGui, QtWidgets

from app.core.planes import Plane
from app.ui.figure_export import (
    SYNTHETIC_BACKGROUND,
    export_figure,
    figure_extras,
    figure_size,
    install_figure_export,
    pixels_per_mm,
    scale_bar,
)
from tests.ui.conftest import widget_pos_of_lps


@pytest.fixture
def compare_window(qtbot, main_window, phantom, synthetic_phantom):
    main_window.show_compare(phantom, [synthetic_phantom], planes=[Plane.AXIAL])
    qtbot.waitUntil(lambda: len(main_window.panels) == 3)
    QtWidgets.QApplication.processEvents()
    return main_window


def red_pixels(image: QtGui.QImage, x0: int, y0: int, x1: int, y1: int) -> int:
    target = SYNTHETIC_BACKGROUND.rgb()
    return sum(1 for x in range(x0, x1) for y in range(y0, y1) if image.pixel(x, y) == target)


def test_png_has_synthetic_labels_only_on_synthetic_panels_and_a_footer(compare_window, tmp_path):
    panels = compare_window.panels
    path = export_figure(panels, tmp_path / "figure.png", figure_extras(compare_window))
    image = QtGui.QImage(str(path))
    size = figure_size(panels, figure_extras(compare_window))
    assert (image.width(), image.height()) == (size.width(), size.height())
    width = panels[0].viewport().width()
    assert red_pixels(image, 0, 0, width - 4, 60) == 0  # original: no SYNTHETIC label
    assert red_pixels(image, width + 4, 0, 2 * width, 60) > 50  # synthesized panel
    assert red_pixels(image, 0, image.height() - 20, 50, image.height() - 4) > 100  # footer


def test_scale_bar_matches_the_world(compare_window):
    panel = compare_window.panels[0]
    center = compare_window.state.cursor_lps_mm
    a = widget_pos_of_lps(panel, center)
    b = widget_pos_of_lps(panel, center + np.array([10.0, 0.0, 0.0]))
    assert pixels_per_mm(panel) == pytest.approx(abs(b.x() - a.x()) / 10.0, abs=0.15)
    bar = scale_bar(panel)
    assert bar.length_pixels == pytest.approx(bar.length_mm * pixels_per_mm(panel))
    assert bar.length_mm in {m * 10.0**e for m in (1, 2, 5) for e in range(-2, 4)}
    assert 0.1 * panel.viewport().width() < bar.length_pixels <= 0.26 * panel.viewport().width()


def test_svg_keeps_marks_as_text(compare_window, tmp_path):
    path = export_figure(compare_window.panels, tmp_path / "figure.svg")
    text = path.read_text()
    assert text.count("SYNTHETIC — toy-gan 0.1") == 2
    assert "Contains SYNTHETIC" in text
    assert " mm<" in text or " cm<" in text
    for letter in ("R", "L", "A", "P"):
        assert f">{letter}<" in text


def test_acquired_only_figure_has_no_synthetic_marks(qtbot, main_window, phantom, tmp_path):
    main_window.open_volume(phantom)
    qtbot.waitUntil(lambda: len(main_window.panels) > 0)
    path = export_figure(main_window.panels, tmp_path / "plain.svg")
    assert "SYNTHETIC" not in path.read_text()


def test_bad_requests_and_menu_action(main_window, compare_window, tmp_path):
    with pytest.raises(ValueError, match="png or .svg"):
        export_figure(compare_window.panels, tmp_path / "figure.tiff")
    with pytest.raises(ValueError, match="nothing"):
        export_figure([], tmp_path / "figure.png")
    install_figure_export(main_window)
    file_menu = [
        a.menu() for a in main_window.menuBar().actions() if a.menu() and "File" in a.menu().title()
    ][0]
    assert main_window.export_figure_action in file_menu.actions()
    texts = [a.text() for a in file_menu.actions()]
    assert texts[-1] == "Quit"  # Export figure was appended after Quit
    assert texts.index("Export figure (PNG/SVG)...") == texts.index("Save screenshot...") + 1


def test_scale_bar_leaves_the_corner_read_out_legible(compare_window, tmp_path):
    """The bar was drawn across the panel's slice / position / window line ('W 900|L 450')."""
    from app.ui.figure_export import TITLE_HEIGHT  # the images sit under their title strip

    panels = compare_window.panels
    path = export_figure(panels, tmp_path / "figure.png")
    figure = QtGui.QImage(str(path))
    for index, panel in enumerate(panels):
        box = panel.drawn_position_box
        assert panel.drawn_position_text and not box.isEmpty()
        own = panel.viewport().grab().toImage()
        # Panels side by side, top-aligned: the figure keeps the on-screen arrangement.
        left = panel.viewport().mapTo(compare_window, panel.viewport().rect().topLeft()).x() - (
            panels[0].viewport().mapTo(compare_window, panels[0].viewport().rect().topLeft()).x()
        )
        middle = panel.viewport().width() // 2  # the bottom orientation letter is burned in on top
        changed = sum(
            1
            for x in range(box.left(), box.right() + 1)
            for y in range(box.top(), box.bottom() + 1)
            if abs(x - middle) > 12 and figure.pixel(left + x, TITLE_HEIGHT + y) != own.pixel(x, y)
        )
        assert changed == 0, f"panel {index}: {changed} read-out pixels painted over"


def test_scale_bar_length_is_exact_on_every_panel(compare_window):
    """The bar's pixels per mm came from 10 mm mapped to whole pixels: up to 0.1 px/mm off
    (5 % at 1.58 px/mm: a '5 cm' bar drawn 75 px long where 5 cm was 79 px)."""
    for panel in compare_window.panels:
        center = compare_window.state.cursor_lps_mm
        a = widget_pos_of_lps(panel, center - np.array([100.0, 0.0, 0.0]))
        b = widget_pos_of_lps(panel, center + np.array([100.0, 0.0, 0.0]))
        measured = abs(b.x() - a.x()) / 200.0  # whole pixels over 200 mm: within 1 px / 200 mm
        assert pixels_per_mm(panel) == pytest.approx(measured, abs=1.0 / 200.0 + 1e-9)
        bar = scale_bar(panel)
        assert bar.length_pixels == pytest.approx(bar.length_mm * measured, abs=1.0)


def test_a_single_row_figure_is_the_row_with_whole_titles_windows_and_marked_scale_bars(
    qtbot, main_window, phantom, synthetic_phantom, tmp_path
):
    """A single-row export was ~70 % empty, titles were cut to 'ori...1mm', the W/L text was
    lost and the scale bar and letters vanished on the difference's white."""
    from app.ui.figure_export import TITLE_HEIGHT, title_text

    phantom.name = "T1 MNI152 2009a 1mm"
    main_window.resize(1600, 950)
    main_window.show_compare(phantom, [synthetic_phantom])
    main_window.view.show_planes("axial")
    QtWidgets.QApplication.processEvents()
    panels = main_window.panels
    shown = [panel for panel in panels if panel.isVisible()]
    extras = figure_extras(main_window)
    size = figure_size(panels, extras)
    row_height = shown[0].height()  # the colour bar beside it spans the panel with its strip
    assert size.height() <= row_height + TITLE_HEIGHT + 26 + 4  # the row, its titles and the footer
    assert title_text(shown[0]) == ("original: T1 MNI152 2009a 1mm", title_text(shown[0])[1])
    assert title_text(shown[0])[1].startswith("W ") and " L " in title_text(shown[0])[1]
    path = export_figure(panels, tmp_path / "row.svg", extras)
    svg = path.read_text()
    assert "original: T1 MNI152 2009a 1mm" in svg and svg.count(">W ") >= 2
    png = QtGui.QImage(str(export_figure(panels, tmp_path / "row.png", extras)))
    # The scale bar of the difference panel (the third) sits on a dark backing.
    difference = shown[2]
    rect_right = sum(panel.viewport().width() for panel in shown) + 2 * 2
    bar = scale_bar(difference)
    y = TITLE_HEIGHT + difference.viewport().height() - 24 - 7
    x = int(rect_right - 3 * 4 - bar.length_pixels / 2)
    backing = QtGui.QColor(png.pixel(x, y))
    assert backing.lightness() < 140, backing.getRgb()


def test_a_single_row_figure_keeps_the_band_of_the_images_not_the_tall_empty_panels(
    qtbot, main_window, phantom, synthetic_phantom, tmp_path
):
    """At 1600x950 with the docks open a single-row compare is a row of tall, narrow panels: the
    figure copied them whole and was ~70 % black above and below the anatomy (issue 17)."""
    from app.ui.application import install_tool_docks
    from app.ui.figure_export import TITLE_HEIGHT, image_band

    assert install_tool_docks(main_window) == []
    main_window.resize(1600, 950)
    main_window.show_compare(phantom, [synthetic_phantom])
    main_window.view.show_planes("axial")
    QtWidgets.QApplication.processEvents()
    shown = [panel for panel in main_window.panels if panel.isVisible()]
    viewport_height = shown[0].viewport().height()
    assert viewport_height > 1.8 * shown[0].viewport().width()  # the tall panels of the scenario
    extras = figure_extras(main_window)
    size = figure_size(main_window.panels, extras)
    band = image_band(shown)
    image_height = shown[0].mapFromScene(shown[0].image_item.sceneBoundingRect()).boundingRect().height()
    # The images' height, room for the marks and the corner read-out, the titles (the colour bar
    # starts level with the panels' own title strip, one more strip up) and the footer; the whole
    # viewports were 838 px for 457 px of image here.
    assert size.height() <= image_height + 64 + 40 + band.strip + 2 * TITLE_HEIGHT + 26 + 2
    assert size.height() < 0.8 * viewport_height
    for panel in shown:  # every image whole inside the band, with room for the marks
        image = panel.mapFromScene(panel.image_item.sceneBoundingRect()).boundingRect()
        assert band.top + 40 <= image.top() and image.bottom() <= band.bottom - 20
    png = QtGui.QImage(str(export_figure(main_window.panels, tmp_path / "row.png", extras)))
    assert png.height() == size.height()
    # The corner read-out comes along below the image: its text's light pixels in the strip.
    strip_y = TITLE_HEIGHT + band.bottom - band.top + band.strip // 2 - 4
    width = shown[0].viewport().width()
    light = sum(
        1
        for x in range(width // 2, width)
        for y in range(strip_y - 6, strip_y + 6)
        if QtGui.QColor(png.pixel(x, y)).lightness() > 180
    )
    assert light > 20
    # The colour bar is painted at the figure's height, its lowest label included.
    row_y = size.height() - 26 - 30  # near the bottom of the images
    right_of_panels = range(sum(panel.viewport().width() for panel in shown), png.width())
    assert any(QtGui.QColor(png.pixel(x, row_y)).saturation() > 60 for x in right_of_panels)


def test_a_cropped_figure_keeps_room_for_three_line_synthetic_labels(
    qtbot, main_window, phantom, synthetic_phantom
):
    """Four columns in one row: the figure's labels wrap onto three lines (74 px) and the fixed
    64 px kept above the images let them run over the top of the images."""
    from app.core.provenance import Provenance
    from app.ui.application import install_tool_docks
    from app.ui.figure_export import _synthetic_labels_bottom, image_band

    assert install_tool_docks(main_window) == []
    main_window.resize(1600, 950)
    others = [
        synthetic_phantom.with_voxels(
            synthetic_phantom.voxels + np.float32(i),
            provenance=Provenance(f"mr-t1-thick-slice-sr-{i}", "1.0.0"),
        )
        for i in range(3)
    ]
    main_window.show_compare(phantom, others)
    main_window.view.show_planes("coronal")
    QtWidgets.QApplication.processEvents()
    qtbot.wait(20)
    shown = [panel for panel in main_window.panels if panel.isVisible()]
    band = image_band(shown)
    assert band.cropped
    assert max(_synthetic_labels_bottom(panel) for panel in shown) > 64  # the crowded case
    for panel in shown:
        image_top = panel.mapFromScene(panel.image_item.sceneBoundingRect()).boundingRect().top()
        assert band.top + _synthetic_labels_bottom(panel) <= image_top


def test_narrow_panels_keep_their_window_in_the_figure(
    qtbot, main_window, phantom, synthetic_phantom, tmp_path
):
    """Four columns at 1600x950 with the docks: the title took the strip and the window went,
    and the panels' corner read-out had dropped it too: no W/L anywhere in the figure."""
    from app.core.provenance import Provenance
    from app.ui.application import install_tool_docks
    from app.ui.figure_export import title_lines, title_text

    assert install_tool_docks(main_window) == []
    main_window.resize(1600, 950)
    phantom.name = "T1 MNI152 2009a 1mm"
    others = [
        synthetic_phantom.with_voxels(
            synthetic_phantom.voxels + np.float32(i), provenance=Provenance(f"gan-{i}", "1")
        )
        for i in range(3)
    ]
    main_window.show_compare(phantom, others)
    main_window.view.show_planes("axial")
    QtWidgets.QApplication.processEvents()
    shown = [panel for panel in main_window.panels if panel.isVisible()]
    assert len(shown) == 5 and title_lines(shown) == 2
    windows = [title_text(panel)[1] for panel in shown]
    assert all(window.startswith("W ") for window in windows)
    svg = export_figure(main_window.panels, tmp_path / "row.svg", figure_extras(main_window)).read_text()
    for window in windows:
        assert f">{window}<" in svg

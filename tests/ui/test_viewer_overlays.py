"""Panel overlay text in crowded layouts: the SYNTHETIC label always whole and on top."""

import numpy as np
from PySide6 import QtCore, QtWidgets

from app.core.provenance import Provenance
from app.ui.services import FileServices
from app.ui.slice_view import wrap_to_width


def test_wrap_keeps_every_character_and_breaks_long_words():
    advance = len  # one pixel per character
    lines = wrap_to_width("SYNTHETIC — a_very_long_plugin_name 1.0.0", 12, advance)
    assert all(len(line) <= 12 for line in lines)
    assert "".join(lines).replace(" ", "") == "SYNTHETIC—a_very_long_plugin_name1.0.0"
    assert wrap_to_width("SYNTHETIC — short 1", 100, advance) == ["SYNTHETIC — short 1"]
    assert wrap_to_width("one\ntwo", 100, advance) == ["one", "two"]
    # Long plugin names break after their separators before anywhere else.
    # and the dash goes with the name it introduces.
    assert wrap_to_width("SYNTHETIC — mr_t1_denoise 1.0.0", 11, advance) == [
        "SYNTHETIC",
        "— mr_t1_",
        "denoise",
        "1.0.0",
    ]


def _visible_text_fits(label: QtWidgets.QLabel) -> bool:
    metrics = label.fontMetrics()
    room = label.contentsRect().width()
    return all(metrics.horizontalAdvance(line) <= room for line in label.text().split("\n"))


def test_synthetic_label_is_whole_and_on_top_in_a_crowded_compare_grid(
    qtbot, main_window, phantom, synthetic_phantom
):
    """Four volumes per row and three rows at 1200 px: narrow panels, long plugin name."""
    long_named = phantom.with_voxels(
        phantom.voxels + np.float32(5),
        provenance=Provenance("mr-t1-to-ct-cyclegan-resnet9-brain", "12.3.4"),
        name="a synthesized volume with a long descriptive name",
    )
    main_window.show_compare(phantom, [synthetic_phantom, long_named, synthetic_phantom])
    qtbot.waitUntil(lambda: len(main_window.panels) == 15)
    QtWidgets.QApplication.processEvents()
    labelled = [panel for panel in main_window.panels if panel.synthetic_labels()]
    assert len(labelled) == 12  # three synthesized columns and the difference (of a synthesized one)
    for panel in labelled:
        panel.viewport().repaint()  # the corner text is drawn in the paint pass
        label = panel._synthetic_label
        assert label.isVisible()
        expected = "".join("\n".join(panel.synthetic_labels()).split())
        assert "".join(label.text().split()) == expected  # nothing elided or dropped
        assert QtCore.QRect(QtCore.QPoint(0, 0), panel.size()).contains(label.geometry())
        assert _visible_text_fits(label)
        # Nothing drawn over it: it is the topmost child and the corner text keeps clear of it.
        assert panel.children()[-1] is label or not any(
            child.isVisible() and child.geometry().intersects(label.geometry())
            for child in panel.children()[panel.children().index(label) + 1 :]
            if isinstance(child, QtWidgets.QWidget)
        )
        corner = panel.drawn_position_box.translated(panel.viewport().pos())
        assert not corner.intersects(label.geometry())
        # The corner text stays inside the panel (shortened, not cut off).
        assert panel.drawn_position_box.isNull() or panel.viewport().rect().contains(panel.drawn_position_box)
    for panel in main_window.panels:
        title = panel._title_label
        # In its strip above the image: clear of the top letter and of the anatomy.
        assert title.geometry().bottom() < panel.viewport().geometry().top()
        assert title.geometry().right() <= panel.width()
        assert title.text().split(":")[0] in {"original", "synthesized", "difference", "acquired"} or (
            title.text().endswith("…")
        )


def test_the_synthetic_label_never_lies_over_the_image_in_a_four_column_compare(
    qtbot, main_window, phantom, synthetic_phantom
):
    """Four volumes per row at 1600x950 with the docks open: the label wraps onto two or three
    lines, and the image (a phantom filling its field of view) started under it: the label hid
    the top of the anatomy, the superior marker of the coronal row. Zoom reset (R) keeps it so."""
    from app.ui.application import install_tool_docks

    assert install_tool_docks(main_window) == []
    main_window.resize(1600, 950)
    others = [
        synthetic_phantom.with_voxels(
            synthetic_phantom.voxels + np.float32(i),
            provenance=Provenance(f"mr-t1-pseudo-healthy-{i}", "3.0.0"),
        )
        for i in range(3)
    ]
    main_window.show_compare(phantom, others)
    qtbot.waitUntil(lambda: main_window.view.width() > 600, timeout=3000)
    QtWidgets.QApplication.processEvents()
    qtbot.wait(20)  # the zoom reset after the build
    labelled = [panel for panel in main_window.panels if panel.synthetic_labels()]
    assert len(labelled) == 12
    for reset in (False, True):
        if reset:
            qtbot.keyClick(main_window.panels[0], QtCore.Qt.Key.Key_R)
        for panel in labelled:
            label = panel._synthetic_label.geometry()
            assert label.height() > 30  # wrapped: the crowded case
            image = panel.mapFromScene(panel.image_item.sceneBoundingRect()).boundingRect()
            assert not label.intersects(image.translated(panel.viewport().pos())), (panel.plane, label, image)
    # Panels of one plane keep one field of view (linked): the original's image lines up.
    for plane_panels in (
        [p for p in main_window.panels if p.plane == plane] for plane in {p.plane for p in labelled}
    ):
        tops = {p.mapFromScene(p.image_item.sceneBoundingRect()).boundingRect().top() for p in plane_panels}
        assert max(tops) - min(tops) <= 1


def test_dicom_series_load_shows_a_real_percentage(qtbot, main_window, tmp_path):
    from tests.io.series_factory import write_series

    write_series(tmp_path / "series", [float(z) for z in range(16)], shape=(8, 8))
    percentages = []
    main_window.progress_bar.valueChanged.connect(
        lambda value: percentages.append((main_window.progress_bar.maximum(), value))
    )
    main_window.open_path(tmp_path / "series")
    qtbot.waitUntil(
        lambda: main_window.session.current is not None and not main_window.is_loading(), timeout=30000
    )
    assert not main_window.last_error, main_window.last_error
    reported = [value for maximum, value in percentages if maximum == 100]
    assert reported and reported[-1] == 100 and reported == sorted(reported)
    assert not main_window.progress_bar.isVisible()


def test_a_loader_without_progress_still_loads(qtbot, viewer_settings, phantom, tmp_path):
    from app.ui.main_window import MainWindow

    window = MainWindow(viewer_settings, FileServices(lambda path, series_uid=None: phantom))
    qtbot.addWidget(window)
    path = tmp_path / "x.nii.gz"
    path.write_bytes(b"")
    window.open_path(path)
    qtbot.waitUntil(lambda: not window.is_loading(), timeout=10000)
    assert window.session.current is phantom and not window.last_error


def test_a_value_read_off_a_synthesized_panel_says_synthetic(qtbot, main_window, phantom, synthetic_phantom):
    main_window.show_compare(phantom, [synthetic_phantom])
    original, synthesized = main_window.panels[0], main_window.panels[1]
    lps = phantom.geometry.lps_from_index([29, 20, 12])
    assert not original.readout_at_scene(original.lps_to_scene(lps)).startswith("SYNTHETIC")
    assert synthesized.readout_at_scene(synthesized.lps_to_scene(lps)).startswith(
        "SYNTHETIC (toy-gan) toy synth"
    )
    # Hovering: the status bar's readout turns red over the synthesized panel only.
    for panel, red in ((synthesized, True), (original, False)):
        scene_point = panel.view_box.mapViewToScene(panel.lps_to_scene(lps))
        panel.scene().sigMouseMoved.emit(scene_point)
        assert main_window.readout_label.text() == panel.last_readout
        assert ("#ff4d5e" in main_window.readout_label.styleSheet()) is red


def test_exported_figure_wraps_the_synthetic_label_inside_narrow_panels(
    qtbot, main_window, phantom, synthetic_phantom, tmp_path
):
    from PySide6 import QtGui

    from app.core.planes import Plane
    from app.ui.figure_export import SYNTHETIC_BACKGROUND, _rects, export_figure

    main_window.resize(900, 700)
    main_window.show_compare(phantom, [synthetic_phantom] * 3, planes=[Plane.AXIAL])
    qtbot.waitUntil(lambda: len(main_window.panels) == 5)
    QtWidgets.QApplication.processEvents()
    panels = main_window.panels
    image = QtGui.QImage(str(export_figure(panels, tmp_path / "narrow.png")))
    red = SYNTHETIC_BACKGROUND.rgb()
    for panel, rect in zip(panels, _rects([p.viewport() for p in panels]), strict=True):
        if not panel.synthetic_labels():
            continue
        assert rect.width() < 200  # narrow enough that one line would not fit
        rows = range(rect.top() + 20, min(rect.top() + 120, rect.bottom()))
        red_columns = [
            x for x in range(rect.left(), rect.right() + 1) if any(image.pixel(x, y) == red for y in rows)
        ]
        assert red_columns, "no SYNTHETIC label burned in"
        assert max(red_columns) < rect.right() - 2  # whole, with a margin: not cut by the next panel

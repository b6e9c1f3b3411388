"""Hallucination panel used as a radiologist does: run the check, click a region, change threshold and map."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.ui.hallucination_panel import MAP_NONE, install_hallucination_panel


@pytest.fixture
def lesion_pair():
    geometry = Geometry(np.array([-40.0, -50.0, -20.0]), np.array([1.0, 1.0, 2.0]), np.eye(3))
    shape = (24, 96, 96)
    k, j, i = np.indices(shape)
    head = ((i - 48) / 40.0) ** 2 + ((j - 48) / 44.0) ** 2 + ((k - 12) / 11.0) ** 2 <= 1
    healthy = np.where(head, 400.0, 0.0).astype(np.float32)
    original = healthy.copy()
    big = (i - 30) ** 2 + (j - 40) ** 2 + ((k - 12) * 2) ** 2 <= 6**2
    small = (i - 65) ** 2 + (j - 60) ** 2 + ((k - 14) * 2) ** 2 <= 3**2
    original[big] += 250  # strong lesion
    original[small] += 90  # faint lesion
    original_volume = Volume(original, geometry, "MR", name="T1")
    synthesized = Volume(
        healthy, geometry, "MR", name="pseudo-healthy", provenance=Provenance("eraser", "0.1")
    )
    return (
        original_volume,
        synthesized,
        geometry.lps_from_index([30, 40, 12]),
        geometry.lps_from_index([65, 60, 14]),
    )


def test_check_click_region_threshold_and_map(qtbot, main_window, lesion_pair):
    original, synthesized, big_lps, small_lps = lesion_pair
    panel = install_hallucination_panel(main_window)
    panel.run_check()
    assert "first" in panel.note_label.text()  # nothing compared yet: a message, no crash
    main_window.show_compare(original, [synthesized])
    qtbot.mouseClick(panel.run_button, QtCore.Qt.MouseButton.LeftButton)
    assert not panel.run_button.isEnabled()  # computing in the background
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=20000)
    assert panel.run_button.isEnabled()
    assert panel.table.rowCount() == 2, panel.note_label.text()
    # The centroid is in the row's tooltip (the columns fit the dock without it).
    centroid_line = next(line for line in panel.table.item(0, 0).toolTip().splitlines() if "centroid" in line)
    first_centroid = [float(v) for v in centroid_line.split("LPS ")[1].removesuffix(" mm").split()]
    assert np.allclose(first_centroid, big_lps, atol=0.2)  # largest residual first

    # Clicking the second row moves the shared cursor (all linked panels) to that region.
    rect = panel.table.visualRect(panel.table.model().index(1, 0))
    qtbot.mouseClick(panel.table.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=rect.center())
    assert np.allclose(main_window.state.cursor_lps_mm, small_lps, atol=1.0)

    # The threshold is the calibrated statistic's (|z|); raising it above the faint lesion's
    # peak z leaves only the strong one.
    assert panel.result.settings.statistic == "z" and "|z|" in panel.count_label.text()
    faint_z = abs(panel.result.regions[1].peak_z)
    panel.threshold_spin.setValue(faint_z + 1.0)
    assert panel.table.rowCount() == 1 and panel.result.settings.threshold == pytest.approx(faint_z + 1.0, abs=0.01)

    # Choosing a map shows it as one more linked column of the compare.
    names = [panel.map_combo.itemText(i) for i in range(panel.map_combo.count())]
    assert names[0] == MAP_NONE and any(n.startswith("Residual") for n in names)
    panel.map_combo.setCurrentIndex(1)
    assert len(main_window.session.compare) == 2
    assert main_window.session.compare[1].provenance is not None  # a map of a synthetic volume stays marked
    panel.map_combo.setCurrentIndex(0)
    assert len(main_window.session.compare) == 1
    main_window.save_screenshot("/tmp/hallucination_panel.png")


def test_cross_modality_pair_offers_no_raw_difference(qtbot, main_window, lesion_pair):
    original, synthesized, _, _ = lesion_pair
    ct = synthesized.with_voxels(synthesized.voxels, modality="CT")
    panel = install_hallucination_panel(main_window)
    main_window.show_compare(original, [ct])
    panel.run_check()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=20000)
    assert panel.table.rowCount() == 0
    assert "cross-modality" in panel.note_label.text()
    assert panel.map_combo.count() == 1  # only "(difference only)"


def test_a_failing_check_gives_a_message(qtbot, main_window, lesion_pair):
    original, _, _, _ = lesion_pair
    tiny = Volume(np.zeros((2, 2, 2), np.float32), Geometry.identity(), "MR", name="tiny")
    panel = install_hallucination_panel(main_window)
    panel.pair_provider = lambda: (original, "not a volume")
    panel.run_check()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=20000)
    assert panel.note_label.text().startswith("Check failed:") and panel.run_button.isEnabled()
    panel.pair_provider = lambda: (tiny, tiny)
    panel.run_check()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=20000)
    assert panel.table.rowCount() == 0 and "0 region(s)" in panel.count_label.text()


def test_opening_another_pair_drops_the_previous_pairs_regions_and_metrics(qtbot, main_window, lesion_pair):
    """Regions, metrics and threshold belong to the pair that was checked: after another compare
    opens they are gone (they were left listed, and a click jumped to the old pair's regions)."""
    original, synthesized, _, _ = lesion_pair
    panel = install_hallucination_panel(main_window)
    main_window.show_compare(original, [synthesized])
    panel.run_check()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=20000)
    assert panel.table.rowCount() == 2 and "MAE" in panel.metrics_label.text()

    # A map of the checked pair joins the compare: still the same pair, the result stays.
    panel.map_combo.setCurrentIndex(1)
    assert panel.result is not None and panel.table.rowCount() == 2

    faithful = original.with_voxels(original.voxels.copy(), provenance=Provenance("keeper", "1.0"))
    main_window.show_compare(original, [faithful])
    assert panel.result is None
    assert panel.table.rowCount() == 0 and panel.metrics_label.text() == ""
    assert not panel.threshold_spin.isEnabled()
    assert "run the check" in panel.count_label.text().lower()
    panel.activate_region(0)  # nothing to jump to any more
    np.testing.assert_allclose(
        main_window.state.cursor_lps_mm, original.geometry.lps_from_index([48, 48, 12]), atol=2
    )

    panel.run_check()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=20000)
    assert panel.result.synthesized is faithful and panel.table.rowCount() == 0


def test_a_check_finishing_after_the_pair_changed_is_not_shown_as_the_new_pairs(
    qtbot, main_window, lesion_pair
):
    original, synthesized, _, _ = lesion_pair
    panel = install_hallucination_panel(main_window)
    main_window.show_compare(original, [synthesized])
    panel.run_check()
    faithful = original.with_voxels(original.voxels.copy(), provenance=Provenance("keeper", "1.0"))
    main_window.show_compare(original, [faithful])  # before the check's result arrives
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=20000)
    assert panel.result is None and panel.table.rowCount() == 0
    assert "changed" in panel.count_label.text() and panel.run_button.isEnabled()


def test_choosing_a_map_keeps_the_region_the_reader_went_to(qtbot, main_window, lesion_pair):
    """Showing a map rebuilds the compare; the cursor stays on the region clicked before (it
    jumped back to the volume's centre, away from the region being checked)."""
    original, synthesized, _, small_lps = lesion_pair
    panel = install_hallucination_panel(main_window)
    main_window.show_compare(original, [synthesized])
    panel.run_check()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=20000)
    panel.activate_region(1)
    assert np.allclose(main_window.state.cursor_lps_mm, small_lps, atol=1.0)
    panel.map_combo.setCurrentIndex(1)
    assert len(main_window.session.compare) == 2
    assert np.allclose(main_window.state.cursor_lps_mm, small_lps, atol=1.0)
    panel.map_combo.setCurrentIndex(0)
    assert np.allclose(main_window.state.cursor_lps_mm, small_lps, atol=1.0)


def test_regions_sort_by_peak_or_volume_and_the_clicked_one_is_outlined(qtbot, main_window, lesion_pair):
    original, synthesized, big_lps, small_lps = lesion_pair
    panel = install_hallucination_panel(main_window)
    main_window.show_compare(original, [synthesized])
    panel.run_check()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=20000)
    headers = [panel.table.horizontalHeaderItem(c).text() for c in range(panel.table.columnCount())]
    assert headers[:3] == ["±", "|z|", "mL"] and headers[-1] == "Kind"
    assert panel.table.item(0, 0).text() == "+"  # the lesions were removed: original brighter
    # Sort by volume, ascending: the small lesion first; the row still leads to its region.
    panel.table.sortItems(2, QtCore.Qt.SortOrder.AscendingOrder)
    volumes = [float(panel.table.item(r, 2).text()) for r in range(panel.table.rowCount())]
    assert volumes == sorted(volumes)
    assert panel.region_at_row(0).volume_ml == min(volumes) or np.isclose(panel.region_at_row(0).volume_ml, min(volumes), rtol=1e-3)
    rect = panel.table.visualRect(panel.table.model().index(0, 0))
    qtbot.mouseClick(panel.table.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=rect.center())
    assert np.allclose(main_window.state.cursor_lps_mm, small_lps, atol=1.0)
    outlined = [p for p in main_window.panels if p.outline is not None]
    assert outlined and all(p._outline_item.isVisible() for p in outlined if p.plane.value == "axial")
    # Sort by peak |z|, descending: the strong lesion first.
    panel.table.sortItems(1, QtCore.Qt.SortOrder.DescendingOrder)
    peaks = [float(panel.table.item(r, 1).text()) for r in range(panel.table.rowCount())]
    assert peaks == sorted(peaks, reverse=True)
    assert np.allclose(panel.region_at_row(0).centroid_lps_mm, big_lps, atol=0.5)
    main_window.save_screenshot("/tmp/h/hallucination_outline.png")


def test_a_map_shown_in_the_compare_is_filed_under_the_patient_and_study(qtbot, main_window, lesion_pair):
    """Choosing a map adds it to the Studies tree; it went under '(no patient)/(study)' beside
    the pair it was computed from, as if it were another patient's series."""
    original, synthesized, _, _ = lesion_pair
    for volume in (original, synthesized):
        volume.metadata.update(PatientName="Doe^Jane", StudyDescription="MR brain")
    panel = install_hallucination_panel(main_window)
    main_window.show_compare(original, [synthesized])
    panel.run_check()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=20000)
    panel.map_combo.setCurrentIndex(1)
    shown_map = main_window.session.compare[-1]
    assert shown_map.quantity_map is not None
    tree = main_window.browser.tree
    patients = [tree.topLevelItem(row).text(0) for row in range(tree.topLevelItemCount())]
    assert patients == ["Doe^Jane"]
    studies = tree.topLevelItem(0)
    assert [studies.child(row).text(0) for row in range(studies.childCount())] == ["MR brain"]
    assert studies.child(0).childCount() == 3  # original, synthesized and the map


def test_a_value_not_measured_reads_as_a_dash_and_sorts_last(qtbot):
    """A region outside the plugin's input range has no z: its 'Peak |z|' cell read 'nan'."""
    from app.ui.region_table import fill_rows, region_table

    table = region_table(["Peak |z|", "Kind"])
    qtbot.addWidget(table)
    fill_rows(table, [(float("nan"), "outside input range"), (6.5, "changed"), (5.3, "changed")])
    assert sorted(table.item(row, 0).text() for row in range(3)) == ["5.3", "6.5", "—"]
    table.sortItems(0, QtCore.Qt.SortOrder.DescendingOrder)
    assert [table.item(row, 0).text() for row in range(3)] == ["6.5", "5.3", "—"]


def test_every_region_column_fits_the_dock_at_1600x950(qtbot, main_window, lesion_pair, tmp_path):
    # In the dock at 1600x950 the table needed sideways scrolling: Mean, Centroid and Kind lay
    # beyond the dock's edge (646 px of columns in a 287 px table).
    from PySide6 import QtWidgets

    from app.ui.application import create_application, install_tool_docks

    create_application([])  # the theme the application runs with (its sizes count here)
    original, synthesized, _, _ = lesion_pair
    window = main_window
    assert install_tool_docks(window) == []
    window.resize(1600, 950)
    window.show_compare(original, [synthesized])
    qtbot.waitUntil(lambda: window.view.width() > 600, timeout=3000)
    panel = window.dock_widget("Hallucination check")
    dock = next(
        d for d in window.findChildren(QtWidgets.QDockWidget) if d.windowTitle() == "Hallucination check"
    )
    dock.raise_()
    qtbot.mouseClick(panel.run_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=20000)
    table = panel.table

    def assert_fits() -> None:
        QtWidgets.QApplication.processEvents()
        last = table.columnCount() - 1
        assert table.columnViewportPosition(last) + table.columnWidth(last) <= table.viewport().width()
        assert table.horizontalScrollBar().maximum() == 0 or not table.horizontalScrollBar().isVisible()
        metrics = table.fontMetrics()
        for row in range(table.rowCount()):
            for column in range(last):  # every number is read whole, not elided
                text = table.item(row, column).text()
                assert metrics.horizontalAdvance(text) + 6 <= table.columnWidth(column), (text, column)

    assert table.rowCount() == 2
    panel.grab().save(str(tmp_path / "regions_dock.png"))
    assert_fits()
    # The centroid (and every value, whole) is in the row's tooltip; the kind elided in the
    # last column is whole there too.
    tip = table.item(0, table.columnCount() - 1).toolTip()
    assert "centroid LPS" in tip and panel.region_at_row(0).description in tip
    centroid = [float(v) for v in tip.split("centroid LPS ")[1].split(" mm")[0].split()]
    assert np.allclose(centroid, panel.region_at_row(0).centroid_lps_mm, atol=0.05)
    # A map's mean joins as one more column: still no sideways scrolling.
    panel.add_map(
        synthesized.with_voxels(np.abs(original.voxels - synthesized.voxels), name="TTA SD (4 runs)")
    )
    assert table.columnCount() == 7
    panel.grab().save(str(tmp_path / "regions_dock_with_map.png"))
    assert_fits()
    # The dock made narrower keeps every column inside it.
    window.resizeDocks([dock], [300], QtCore.Qt.Orientation.Horizontal)
    QtWidgets.QApplication.processEvents()
    last = table.columnCount() - 1
    assert table.columnViewportPosition(last) + table.columnWidth(last) <= table.viewport().width()


def test_a_map_in_a_four_volume_compare_and_the_map_list_agree(qtbot, main_window, lesion_pair, tmp_path):
    # Original + three others with 'Residual' chosen: the compare was rebuilt as the pair and the
    # map only (the two other volumes dropped without a word), and once the four volumes were
    # compared again the map column was gone while the list still said 'Residual'.
    original, synthesized, _, _ = lesion_pair
    window = main_window
    window.resize(1600, 950)
    panel = install_hallucination_panel(window)
    others = [synthesized.with_voxels(synthesized.voxels + n, name=f"pseudo-healthy {n}") for n in (1, 2)]
    window.show_compare(original, [synthesized, *others])
    panel.run_check()
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=20000)
    residual = next(i for i in range(panel.map_combo.count()) if panel.map_combo.itemText(i).startswith("Residual"))
    panel.map_combo.setCurrentIndex(residual)
    QtWidgets.QApplication.processEvents()
    window.grab().save(str(tmp_path / "four_with_map.png"))
    titles = [p.shown_title() for p in window.view.panels if p.plane.value == "axial"]
    compared = window.session.compare
    # The map is shown, beside the volumes a row still has room for; the one it replaced is said.
    assert compared[0] is synthesized and compared[-1] is panel.maps()[panel.map_combo.currentText()] and compared[1] is others[0]
    assert len(compared) == 3 and any(t.startswith("map: residual") for t in titles)
    assert "'pseudo-healthy 2'" in panel.note_label.text()
    # Without the map, the volume it took the place of comes back.
    panel.map_combo.setCurrentIndex(0)
    assert list(window.session.compare) == [synthesized, *others]
    assert "takes the place" not in panel.note_label.text()
    # The four volumes compared again (the browser's 'Compare selected') with the map chosen:
    # the list says what is shown.
    panel.map_combo.setCurrentIndex(residual)
    window.show_compare(original, [synthesized, *others])
    QtWidgets.QApplication.processEvents()
    window.grab().save(str(tmp_path / "four_again.png"))
    assert not any(p.shown_title().startswith("map:") for p in window.view.panels)
    assert panel.map_combo.currentText() == MAP_NONE
    assert "no longer shown" in panel.note_label.text()

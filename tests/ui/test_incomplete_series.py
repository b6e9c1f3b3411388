"""The viewer's status bar says when a series it opens is incomplete (app.io.series_completeness)."""

from __future__ import annotations

from tests.io.test_series_completeness import truncated_synthview_series


def test_the_status_bar_warns_about_a_truncated_series(qtbot, main_window, tmp_path):
    folder = truncated_synthview_series(tmp_path / "series")
    with qtbot.waitSignal(main_window.volume_loaded, timeout=30000):
        main_window.open_path(folder)
    label = main_window.load_warnings_label
    assert (
        label.isVisible()
        and label.text() == "⚠ incomplete series: 8 of the 12 slices written (4 files missing)"
    )
    qtbot.waitUntil(lambda: label.width() > 200)  # laid out, not squeezed out of the status bar

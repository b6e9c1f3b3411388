"""What the viewer says about what it opens: an incomplete series (app.io.series_completeness)
in the status bar, a colour NIfTI refused with the loader's message (it raised TypeError)."""

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


def test_a_colour_nifti_is_refused_with_a_message(qtbot, main_window, tmp_path):
    import nibabel as nib
    import numpy as np

    path = tmp_path / "rgb.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), dtype=[(c, "u1") for c in "RGBA"]), np.eye(4)), path)
    with qtbot.waitSignal(
        main_window.statusBar().messageChanged,
        timeout=20000,
        check_params_cb=lambda text: text.startswith("Could not open"),
    ):
        main_window.open_path(path)
    assert "an RGBA colour NIfTI image (rgba32)" in main_window.last_error  # RGB24 is read
    assert main_window.view is None

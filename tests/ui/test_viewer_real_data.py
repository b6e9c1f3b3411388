"""Viewer behaviour found in a QA pass on real data: what the status bar and panels tell the
reader about the volume on screen."""

import numpy as np
import pytest

from app.core.display import WindowLevel
from app.core.volume import Geometry, Volume


def _volume(name: str, warnings: list[str] | None = None) -> Volume:
    voxels = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    return Volume(voxels, Geometry.identity(), modality="CT", name=name, load_warnings=tuple(warnings or ()))


def test_load_warnings_follow_the_volume_opened_from_the_browser(qtbot, main_window):
    """Opening a volume already in the browser (double-click) or from ``view --synthesized`` goes
    through ``open_volume``/``show_compare``: the status bar must speak of that volume, not of the
    one loaded last."""
    label = main_window.load_warnings_label
    assumed = _volume("no geometry", ["no ImageOrientationPatient: axial orientation assumed"])
    clean = _volume("clean")
    main_window.open_volume(assumed)
    assert label.isVisible() and "axial orientation assumed" in label.text()
    main_window.open_volume(clean)
    assert not label.isVisible() and label.toolTip() == ""
    main_window.show_compare(assumed, [clean])
    assert label.isVisible() and "axial orientation assumed" in label.toolTip()
    main_window.show_compare(clean, [assumed])
    assert not label.isVisible()


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (WindowLevel(15000, 30000), "W 30000 L 15000"),  # 15-bit radiograph: no "3e+04"
        (WindowLevel(-600, 1500), "W 1500 L -600"),
        (WindowLevel(263.232421875, 1273.53515625), "W 1274 L 263.2"),
        (WindowLevel(0.25, 0.5), "W 0.5 L 0.25"),
    ],
)
def test_corner_window_numbers_are_written_out(qtbot, window, expected):
    from app.core.planes import Plane
    from app.core.viewer_state import ViewerState
    from app.ui.slice_view import PanelContent, SliceView

    volume = _volume("radiograph")
    state = ViewerState(volume)
    state.set_window(window)
    panel = SliceView(state, PanelContent(volume), Plane.AXIAL)
    qtbot.addWidget(panel)
    assert panel.position_text().endswith(expected)


def test_a_4d_nifti_is_refused_with_what_it_holds(qtbot, main_window, tmp_path):
    """nibabel's example4d (fMRI, 2 volumes) said "not a readable NIfTI image": it is readable,
    it is 4D. The message names the volume count and what to do."""
    import nibabel as nib

    path = tmp_path / "bold.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((6, 5, 4, 3), np.int16), np.eye(4)), str(path))
    main_window.open_path(path)
    qtbot.waitUntil(lambda: not main_window.is_loading(), timeout=30000)
    message = main_window.last_error
    assert "not a readable" not in message
    assert "4D image: 3 volumes of 6 x 5 x 4 voxels" in message
    assert "one 3D volume" in message

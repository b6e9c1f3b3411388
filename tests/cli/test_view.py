"""``python main.py view ... --screenshot``: renders the asked layout, saves a PNG and exits."""

import os

import pytest
from PySide6 import QtGui

import main
from app.io.nifti import save_nifti
from tests.ui.conftest import phantom, synthetic_phantom  # noqa: F401 - shared fixtures

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def phantom_files(tmp_path, phantom, synthetic_phantom):  # noqa: F811
    return save_nifti(phantom, tmp_path / "original.nii.gz"), save_nifti(
        synthetic_phantom, tmp_path / "synth.nii.gz"
    )


def test_compare_screenshot_is_written_and_synthetic_is_labelled(qtbot, tmp_path, phantom_files, capsys):
    original, synthesized = phantom_files
    out = tmp_path / "compare.png"
    code = main.main(
        [
            "view",
            str(original),
            "--synthesized",
            str(synthesized),
            "--screenshot",
            str(out),
            "--size",
            "900x600",
        ]
    )
    assert code == 0 and out.exists()
    image = QtGui.QImage(str(out))
    assert (image.width(), image.height()) == (900, 600)
    # The SYNTHETIC label colour (#c0001a) is present in the picture.
    reds = sum(
        1 for x in range(0, 900, 3) for y in range(0, 600, 3) if image.pixelColor(x, y).name() == "#c0001a"
    )
    assert reds > 20


@pytest.mark.parametrize("layout", ["axial", "sagittal", "mpr", "2x2"])  # 2x2 offscreen: 3D placeholder
def test_single_volume_layouts(qtbot, tmp_path, phantom_files, layout):
    out = tmp_path / f"{layout}.png"
    assert main.main(["view", str(phantom_files[0]), "--layout", layout, "--screenshot", str(out)]) == 0
    assert QtGui.QImage(str(out)).width() == 1400


def test_bad_input_exits_with_a_message(qtbot, tmp_path, phantom_files, capsys):
    assert main.main(["view", str(tmp_path / "nothing.nii"), "--screenshot", str(tmp_path / "x.png")]) == 2
    assert "cannot open" in capsys.readouterr().err
    assert main.main(["view", str(phantom_files[0]), "--layout", "compare"]) == 2
    assert not (tmp_path / "x.png").exists()


def test_interactive_view_opens_the_window_first_and_loads_in_the_background(
    qtbot, tmp_path, phantom_files, monkeypatch
):
    from PySide6 import QtWidgets

    from app.ui.main_window import MainWindow

    seen = {}

    def fake_exec():
        """Stands in for the event loop: what the user sees while and after PATH loads."""
        shown = [
            w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()
        ]
        (window,) = shown  # on screen before the event loop starts
        seen["visible_while_loading"] = window.is_loading()
        qtbot.waitUntil(lambda: not window.is_loading(), timeout=30000)
        seen["layout"] = window.session.layout.value
        seen["panels"] = len(window.panels)
        seen["error"] = window.last_error
        window.close()
        window.deleteLater()
        return 0

    monkeypatch.setattr(QtWidgets.QApplication, "exec", staticmethod(fake_exec))
    assert main.main(["view", str(phantom_files[0]), "--layout", "axial", "--size", "800x600"]) == 0
    assert seen == {"visible_while_loading": True, "layout": "axial", "panels": 1, "error": ""}
    assert main.main(["view", str(tmp_path / "missing.nii.gz")]) == 2

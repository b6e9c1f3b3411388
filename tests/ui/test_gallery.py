"""The sample gallery as a person uses it: generate, click tiles to select, export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from app.io.nifti import load_nifti, save_nifti
from app.plugins.generation import GeneratedSample
from app.ui.gallery import SampleGallery

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "mr_t1_axial_dcgan"


@pytest.fixture
def gallery(qtbot):
    widget = SampleGallery.for_plugin(PLUGIN, write_nifti=save_nifti)
    qtbot.addWidget(widget)
    widget.resize(700, 560)
    widget.show()
    return widget


def test_generate_shows_one_tile_per_seed_with_its_seed(gallery, qtbot):
    gallery.first_seed.setValue(10)
    gallery.count.setValue(8)
    qtbot.mouseClick(gallery.generate_button, QtCore.Qt.MouseButton.LeftButton)
    gallery.wait_generated()
    assert [tile.text() for tile in gallery.tiles] == [f"seed {s}" for s in range(10, 18)]
    assert "SYNTHETIC" in gallery.banner.text() and gallery.banner.isVisible()
    assert not gallery.export_button.isEnabled()
    assert all(tile.isVisible() for tile in gallery.tiles)
    qtbot.wait(20)
    gallery.grab().save("/tmp/gallery_generated.png")


def test_click_to_select_then_export_writes_cases(gallery, qtbot, tmp_path, monkeypatch):
    gallery.count.setValue(6)
    qtbot.mouseClick(gallery.generate_button, QtCore.Qt.MouseButton.LeftButton)
    gallery.wait_generated()
    qtbot.mouseClick(gallery.tiles[1], QtCore.Qt.MouseButton.LeftButton)
    qtbot.mouseClick(gallery.tiles[4], QtCore.Qt.MouseButton.LeftButton)
    assert [s.seed for s in gallery.selected_samples()] == [1, 4]
    assert gallery.export_button.isEnabled()
    qtbot.wait(20)
    gallery.grab().save("/tmp/gallery_selected.png")
    monkeypatch.setattr(QtWidgets.QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))
    with qtbot.waitSignal(gallery.exported) as signal:
        qtbot.mouseClick(gallery.export_button, QtCore.Qt.MouseButton.LeftButton)
    records = [json.loads(Path(p).read_text()) for p in signal.args[0]]
    assert [(r["seed"], r["truth"]) for r in records] == [(1, "synthetic"), (4, "synthetic")]
    assert (tmp_path / records[0]["files"]["png"]).is_file()
    assert load_nifti(tmp_path / records[0]["files"]["nifti"]).is_synthetic
    assert "Exported 2 case(s)" in gallery.status.text()
    qtbot.mouseClick(gallery.tiles[1], QtCore.Qt.MouseButton.LeftButton)
    assert [s.seed for s in gallery.selected_samples()] == [4]


def test_a_failing_generator_shows_a_message_instead_of_crashing(qtbot):
    def broken(seeds):
        raise RuntimeError("weights missing")

    gallery = SampleGallery(broken, title="broken")
    qtbot.addWidget(gallery)
    qtbot.mouseClick(gallery.generate_button, QtCore.Qt.MouseButton.LeftButton)
    gallery.wait_generated()
    assert "Could not generate: weights missing" in gallery.status.text()
    assert gallery.tiles == []


def test_export_with_nothing_selected_asks_for_a_selection(qtbot, tmp_path):
    sample = GeneratedSample(5, np.zeros((64, 64), np.float32), "g", "1", "0" * 64)
    gallery = SampleGallery(lambda seeds: [sample], title="g")
    qtbot.addWidget(gallery)
    gallery.generate(5, 1)
    gallery.wait_generated()
    assert gallery.export_selected(tmp_path) == []
    assert "Select at least one" in gallery.status.text()
    assert not list(tmp_path.iterdir())


def test_a_long_error_wraps_instead_of_widening_the_gallery(qtbot):
    def broken(seeds):
        raise RuntimeError("the generator failed on noise of latent_dim 7: " + "mat1 and mat2 " * 20)

    gallery = SampleGallery(broken, title="broken")
    qtbot.addWidget(gallery)
    gallery.resize(700, 400)
    gallery.show()
    gallery.generate(0, 4)
    gallery.wait_generated()
    assert "mat1 and mat2" in gallery.status.text()
    assert gallery.minimumSizeHint().width() <= 700


def test_generating_never_blocks_the_ui_thread(qtbot):
    """16 samples were computed on the UI thread (and the plugin loaded there, torch included)."""
    import threading
    import time

    release = threading.Event()

    def slow(seeds):
        release.wait(10)
        return [GeneratedSample(s, np.zeros((8, 8), np.float32), "g", "1", "0" * 64) for s in seeds]

    gallery = SampleGallery(slow, title="slow")
    qtbot.addWidget(gallery)
    started = time.perf_counter()
    gallery.generate(0, 16)
    assert time.perf_counter() - started < 0.1 and gallery.is_generating()
    assert not gallery.generate_button.isEnabled() and "Generating 16" in gallery.status.text()
    release.set()
    qtbot.waitUntil(lambda: len(gallery.tiles) == 16, timeout=5000)
    assert gallery.generate_button.isEnabled()


def test_opening_a_plugin_s_gallery_does_not_load_the_plugin(qtbot):
    import subprocess
    import sys

    code = (
        "import sys; from PySide6 import QtWidgets; app = QtWidgets.QApplication([]);"
        "from app.ui.gallery import SampleGallery; g = SampleGallery.for_plugin(sys.argv[1]);"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(PLUGIN)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=120,
    )
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr

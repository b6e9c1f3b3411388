"""Plugin panel: an input outside the training domain shows a warning the user must answer first."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

import app.plugins.discovery as discovery
from app.core.volume import Geometry, Volume
from app.ui.plugin_panel import PluginPanel
from tests.plugins.plugin_factory import make_builtin_plugin

LEFT = QtCore.Qt.MouseButton.LeftButton


@pytest.fixture
def narrow_domain_plugin(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    make_builtin_plugin(folder / "tiny", training_domain={"modalities": ["MR"], "intensity_range": [0, 100]})
    monkeypatch.setenv("SYNTHVIEW_PLUGIN_PATH", str(folder))
    monkeypatch.setattr(discovery, "REPO_PLUGIN_DIR", tmp_path / "no-repo-plugins")
    monkeypatch.setattr(discovery, "entry_points", lambda group: [])
    return folder


def _mr(high: float) -> Volume:
    voxels = np.random.default_rng(0).uniform(0, high, (4, 16, 16)).astype(np.float32)
    return Volume(voxels, Geometry.identity(), "MR", name="t1")


def test_warning_box_must_be_answered_before_the_run(qtbot, narrow_domain_plugin):
    volume = _mr(500.0)  # 80 % of the voxels above the trained range
    panel = PluginPanel(volume_provider=lambda: volume)
    qtbot.addWidget(panel)
    panel.device_combo.setCurrentText("cpu")
    panel.resize(420, 560)
    panel.show()
    produced = []
    panel.result_ready.connect(lambda *args: produced.append(args))

    qtbot.mouseClick(panel.run_button, LEFT)
    assert panel.domain_warnings_shown() and not panel.is_running()
    assert "outside the training domain of tiny-mr2ct" in panel.domain_label.text()
    assert "outside the trained intensity range [0, 100]" in panel.domain_label.text()
    assert not panel.run_button.isEnabled()  # the warning is answered with its own buttons
    panel.grab().save("/tmp/plugin_panel_domain_warning.png")

    qtbot.mouseClick(panel.dont_run_button, LEFT)
    assert not panel.domain_warnings_shown() and not panel.is_running() and produced == []
    assert panel.run_button.isEnabled()

    qtbot.mouseClick(panel.run_button, LEFT)
    assert panel.domain_warnings_shown()
    with qtbot.waitSignal(panel.result_ready, timeout=60000):
        qtbot.mouseClick(panel.run_anyway_button, LEFT)
    assert not panel.domain_warnings_shown() and produced[0][1].is_synthetic

    # Once acknowledged for this plugin and input, Run goes straight ahead.
    with qtbot.waitSignal(panel.result_ready, timeout=60000):
        qtbot.mouseClick(panel.run_button, LEFT)
    assert not panel.domain_warnings_shown() and len(produced) == 2


def test_in_domain_input_runs_without_a_warning(qtbot, narrow_domain_plugin):
    volume = _mr(90.0)
    panel = PluginPanel(volume_provider=lambda: volume)
    qtbot.addWidget(panel)
    panel.device_combo.setCurrentText("cpu")
    with qtbot.waitSignal(panel.result_ready, timeout=60000):
        qtbot.mouseClick(panel.run_button, LEFT)
    assert not panel.domain_warnings_shown()

"""Plugin panel as a person uses it: pick a plugin, read its card, Run, Cancel, see the result."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

import app.plugins.discovery as discovery
from app.core.volume import Geometry, Volume
from app.ui.plugin_panel import PluginPanel, install_plugin_panel
from tests.plugins.plugin_factory import make_builtin_plugin, write_manifest


@pytest.fixture
def user_plugins(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    make_builtin_plugin(folder / "tiny")
    write_manifest(folder / "broken", {"name": "broken"})
    monkeypatch.setenv("SYNTHVIEW_PLUGIN_PATH", str(folder))
    monkeypatch.setattr(discovery, "REPO_PLUGIN_DIR", tmp_path / "no-repo-plugins")
    monkeypatch.setattr(discovery, "entry_points", lambda group: [])
    return folder


def test_panel_lists_plugins_shows_model_card_and_broken_ones(qtbot, user_plugins):
    panel = PluginPanel()
    qtbot.addWidget(panel)
    assert panel.plugin_combo.count() == 1 and panel.plugin_combo.currentText().startswith("tiny-mr2ct 0.1.0")
    assert "Intended use: tests only" in panel.model_card.toPlainText()
    assert "broken" in panel.status_label.text()


def test_run_produces_a_synthetic_volume_on_the_input_grid(qtbot, user_plugins, phantom):
    panel = PluginPanel(volume_provider=lambda: phantom)
    qtbot.addWidget(panel)
    panel.device_combo.setCurrentText("cpu")
    with qtbot.waitSignal(panel.result_ready, timeout=60000) as blocker:
        qtbot.mouseClick(panel.run_button, QtCore.Qt.MouseButton.LeftButton)
        assert not panel.run_button.isEnabled() and panel.cancel_button.isEnabled()
    original, synthesized = blocker.args
    assert original is phantom and synthesized.geometry is phantom.geometry
    assert synthesized.is_synthetic and synthesized.provenance.device == "cpu"
    assert "SYNTHETIC" in panel.status_label.text() and panel.progress_bar.value() == 100
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_cancel_stops_the_run_and_produces_nothing(qtbot, user_plugins):
    volume = Volume(
        np.random.default_rng(0).uniform(0, 1, (300, 16, 16)).astype(np.float32), Geometry.identity(), "MR"
    )
    panel = PluginPanel(volume_provider=lambda: volume)
    qtbot.addWidget(panel)
    produced = []
    panel.result_ready.connect(lambda *args: produced.append(args))
    panel.run_selected()
    qtbot.mouseClick(panel.cancel_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=60000)
    assert produced == [] and "Cancelled" in panel.status_label.text()


def test_wrong_modality_and_bad_folder_are_reported_not_raised(qtbot, user_plugins, tmp_path):
    ct = Volume(np.zeros((2, 8, 8), np.float32), Geometry.identity(), "CT")
    panel = PluginPanel(volume_provider=lambda: ct)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.run_failed, timeout=60000) as blocker:
        panel.run_selected()
    assert "expects MR input" in blocker.args[0] and "Failed" in panel.status_label.text()
    assert not panel.add_plugin_folder(tmp_path / "nothing-here")
    assert "no such plugin folder" in panel.status_label.text()


def test_panel_in_the_main_window_opens_the_compare_layout(qtbot, main_window, user_plugins, phantom):
    panel = install_plugin_panel(main_window)
    qtbot.waitUntil(lambda: not panel.discovering, timeout=30000)  # the dock discovers in a thread
    main_window.open_volume(phantom)
    panel.device_combo.setCurrentText("cpu")
    with qtbot.waitSignal(main_window.view_changed, timeout=60000):
        qtbot.mouseClick(panel.run_button, QtCore.Qt.MouseButton.LeftButton)
    assert main_window.session.layout.value == "compare"
    assert len(main_window.session.compare) == 1 and main_window.session.compare[0].is_synthetic
    main_window.save_screenshot("/tmp/plugin_panel_compare.png")


def test_training_spacing_checkbox_decides_whether_images_are_resampled(qtbot, tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    make_builtin_plugin(folder / "coarse", spacing_mm=[2.0, 2.0])
    monkeypatch.setenv("SYNTHVIEW_PLUGIN_PATH", str(folder))
    monkeypatch.setattr(discovery, "REPO_PLUGIN_DIR", tmp_path / "no-repo-plugins")
    monkeypatch.setattr(discovery, "entry_points", lambda group: [])
    volume = Volume(
        np.random.default_rng(0).uniform(0, 1, (3, 32, 40)).astype(np.float32), Geometry.identity(), "MR"
    )
    panel = PluginPanel(volume_provider=lambda: volume)
    qtbot.addWidget(panel)
    panel.device_combo.setCurrentText("cpu")
    assert panel.match_spacing_check.isChecked()  # on by default
    grids = []
    panel.result_ready.connect(lambda _, out: grids.append(out.provenance.parameters["training_grid"]))
    with qtbot.waitSignal(panel.result_ready, timeout=60000):
        qtbot.mouseClick(panel.run_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=10000)
    panel.match_spacing_check.click()
    with qtbot.waitSignal(panel.result_ready, timeout=60000):
        qtbot.mouseClick(panel.run_button, QtCore.Qt.MouseButton.LeftButton)
    assert grids[0]["training_shape"] == [16, 20] and grids[1] is None


def test_no_plugin_says_where_it_looked_and_how_to_add_one(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHVIEW_PLUGIN_PATH", str(tmp_path / "none-here"))
    monkeypatch.setattr(discovery, "REPO_PLUGIN_DIR", tmp_path / "no-repo-plugins")
    monkeypatch.setattr(discovery, "entry_points", lambda group: [])
    panel = PluginPanel()
    qtbot.addWidget(panel)
    text = panel.model_card.toPlainText()
    assert text.startswith("No plugin found.")
    assert str(tmp_path / "none-here") in text and str(tmp_path / "no-repo-plugins") in text
    assert "Add folder..." in text and not panel.run_button.isEnabled()


def test_the_dock_defaults_to_an_image_to_image_plugin_that_fits_the_volume(qtbot, main_window, phantom):
    """It chose the generation plugin with Run enabled, which then failed ('takes no input volume')."""
    from app.ui.application import install_tool_docks

    assert install_tool_docks(main_window) == []
    main_window.resize(1600, 950)
    panel = main_window.dock_widget("GAN plugins")
    qtbot.waitUntil(lambda: not panel.discovering, timeout=30000)
    tasks = {manifest.task for manifest in panel.manifests}
    assert "generation" in tasks and len(tasks) > 1  # the shipped plugins: a real choice
    assert not panel.run_button.isEnabled()  # no volume open yet
    phantom.modality = "MR"
    main_window.open_volume(phantom)
    chosen = panel.selected_manifest()
    assert chosen.task != "generation" and "MR" in {m.upper() for m in chosen.input_modalities}
    # The shipped tissue segmentation makes a label map, not an image: not the default either.
    assert any(m.is_segmentation for m in panel.manifests) and not chosen.is_segmentation
    assert panel.run_button.isEnabled()
    # The reader picks the generator: Run says why it cannot, and a new volume keeps the choice.
    generator = next(i for i, m in enumerate(panel.manifests) if m.task == "generation")
    panel.plugin_combo.setCurrentIndex(generator)
    panel.plugin_combo.activated.emit(generator)
    assert not panel.run_button.isEnabled() and "Sample gallery" in panel.run_button.toolTip()
    main_window.open_volume(phantom)
    assert panel.selected_manifest().task == "generation"
    # The plugin's name is not clipped: the combo has the dock's width to itself.
    main_window.show()
    QtWidgets.QApplication.processEvents()
    combo = panel.plugin_combo
    text_width = combo.fontMetrics().horizontalAdvance(combo.currentText())
    assert combo.width() >= text_width + 20, (combo.width(), text_width)


def test_the_dock_discovers_plugins_off_the_ui_thread(qtbot, main_window, user_plugins, monkeypatch):
    """Discovery imports jsonschema and YAML (0.19 s on the UI thread right after the first image):
    the dock asks in a thread, says it is looking meanwhile, and lists the plugins when told."""
    import threading

    release, asked_from = threading.Event(), []
    discover = discovery.discover_plugins

    def slow_discovery():
        asked_from.append(threading.current_thread() is threading.main_thread())
        release.wait(10)
        return discover()

    monkeypatch.setattr(discovery, "discover_plugins", slow_discovery)
    panel = install_plugin_panel(main_window)
    assert panel.discovering and panel.manifests == []
    assert panel.model_card.toPlainText() == "Looking for plugins…"
    assert not panel.run_button.isEnabled() and panel.run_button.toolTip() == "Looking for plugins…"
    with qtbot.waitSignal(panel.plugins_changed, timeout=10000):
        release.set()
    assert asked_from == [False]
    assert not panel.discovering and [m.name for m in panel.manifests] == ["tiny-mr2ct"]
    assert "Not loaded (broken manifest): broken" in panel.status_label.text()
    assert panel.refresh_button.isEnabled()


def test_a_failed_background_discovery_is_said_in_the_panel(qtbot, main_window, monkeypatch):
    def broken():
        raise RuntimeError("entry point crashed")

    monkeypatch.setattr(discovery, "discover_plugins", broken)
    panel = install_plugin_panel(main_window)
    qtbot.waitUntil(lambda: not panel.discovering, timeout=10000)
    assert panel.status_label.text() == "Plugin discovery failed: RuntimeError: entry point crashed"
    assert panel.model_card.toPlainText().startswith("No plugin found.")


def test_at_start_discovery_waits_for_the_other_start_up_tools(qtbot, viewer_settings, phantom, monkeypatch):
    """A Python thread shares the GIL: discovering beside the other tools' builds slowed them."""
    from app.cli.file_services import file_services
    from app.ui.main_window import MainWindow

    window = MainWindow(viewer_settings, file_services())
    qtbot.addWidget(window)
    still_building = []
    discover = discovery.discover_plugins

    def recording():
        still_building.append(window.building_startup_tools())
        return discover()

    monkeypatch.setattr(discovery, "discover_plugins", recording)
    assert window.install_tools(defer=True) == {}
    window.show()
    window.open_volume(phantom)
    panel = window.dock_widget("GAN plugins")
    qtbot.waitUntil(lambda: bool(still_building) and not panel.discovering, timeout=10000)
    assert still_building == [False]

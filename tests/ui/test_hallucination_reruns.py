"""Hallucination panel: rerun the generator for TTA / MC-dropout / perturbation maps, shown in the compare."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

import app.plugins.discovery as discovery
from app.core.quantity_map import MapKind
from app.core.volume import Geometry, Volume
from app.plugins.loading import load_plugin
from app.plugins.manifest import ArchitectureSpec, load_manifest
from app.plugins.runtime import RunOptions, synthesize
from app.ui.hallucination_panel import install_hallucination_panel
from tests.plugins.plugin_factory import make_builtin_plugin

LEFT = QtCore.Qt.MouseButton.LeftButton


@pytest.fixture
def no_discovered_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNTHVIEW_PLUGIN_PATH", str(tmp_path / "no-user-plugins"))
    monkeypatch.setattr(discovery, "REPO_PLUGIN_DIR", tmp_path / "no-repo-plugins")
    monkeypatch.setattr(discovery, "entry_points", lambda group: [])


@pytest.fixture
def dropout_run(tmp_path, no_discovered_plugins):
    spec = ArchitectureSpec("resnet_6blocks", 1, 1, ngf=4, norm="instance", use_dropout=True)
    manifest = load_manifest(make_builtin_plugin(tmp_path / "drop", spec=spec))
    voxels = np.random.default_rng(0).uniform(100, 900, (4, 24, 24)).astype(np.float32)
    original = Volume(voxels, Geometry(np.zeros(3), np.array([1.0, 1.0, 3.0]), np.eye(3)), "MR", name="t1")
    synthesized = synthesize(load_plugin(manifest), original, RunOptions(device="cpu")).volume
    return manifest, original, synthesized


def test_rerun_maps_join_the_compare_as_linked_map_columns(qtbot, main_window, dropout_run):
    manifest, original, synthesized = dropout_run
    _dock_plugins_stub(main_window, [manifest])
    panel = install_hallucination_panel(main_window)
    reruns = panel.reruns
    assert not reruns.buttons["tta"].isEnabled()  # nothing compared yet
    assert "compare" in reruns.buttons["tta"].toolTip()
    assert "Open a compare" in reruns.status_label.text()

    main_window.show_compare(original, [synthesized])
    assert all(reruns.buttons[k].isEnabled() for k in ("tta", "mc_dropout", "perturbation"))
    assert "Open a compare" not in reruns.status_label.text()  # it said so beside enabled buttons
    assert (
        not reruns.buttons["cycle"].isEnabled()
        and "no reverse generator" in reruns.buttons["cycle"].toolTip()
    )

    reruns.mc_samples_spin.setValue(3)
    qtbot.mouseClick(reruns.buttons["mc_dropout"], LEFT)
    assert reruns.is_running() and reruns.cancel_button.isEnabled()
    assert not reruns.buttons["tta"].isEnabled()  # one rerun at a time
    qtbot.waitUntil(lambda: not reruns.is_running(), timeout=60000)
    assert reruns.progress_bar.value() == 100, reruns.status_label.text()
    shown = main_window.session.compare
    assert len(shown) == 2 and shown[0] is synthesized
    assert shown[1].quantity_map.kind is MapKind.MC_DROPOUT_SD and shown[1].quantity_map.settings["samples"] == 3
    assert shown[1].name.startswith("MC-dropout SD (3 samples)") and shown[1].is_synthetic
    assert panel.map_combo.currentText() == shown[1].name
    assert shown[1].voxels.max() > 0
    assert reruns.status_label.text().startswith("Shown: MC-dropout SD") and "tiny-mr2ct" in reruns.title()

    # A second map replaces the column; the first stays offered in the map list.
    reruns.noise_spin.setValue(5.0)
    qtbot.mouseClick(reruns.buttons["perturbation"], LEFT)
    qtbot.waitUntil(lambda: not reruns.is_running(), timeout=60000)
    assert "noise 0.05 of range" in main_window.session.compare[1].name
    names = [panel.map_combo.itemText(i) for i in range(panel.map_combo.count())]
    assert any(n.startswith("MC-dropout SD") for n in names) and len(names) == 3
    main_window.save_screenshot("/tmp/hallucination_reruns.png")

    panel.map_combo.setCurrentIndex(0)  # back to original | synthesized | difference
    assert main_window.session.compare == (synthesized,)

    # Another synthesized volume: the maps of the first one are no longer offered.
    other = synthesized.with_voxels(synthesized.voxels + 1)
    main_window.show_compare(original, [other])
    assert panel.map_combo.count() == 1


def test_rerun_failure_and_cancel_are_messages(qtbot, main_window, dropout_run):
    manifest, original, synthesized = dropout_run
    panel = install_hallucination_panel(main_window)  # no plugin panel, nothing discoverable
    main_window.show_compare(original, [synthesized])
    assert not panel.reruns.buttons["tta"].isEnabled()
    assert "Plugin not available" in panel.reruns.buttons["tta"].toolTip()

    panel.reruns.manifests_provider = lambda: [manifest]
    panel.reruns.refresh()
    panel.reruns.compute("tta")
    panel.reruns.cancel()
    qtbot.waitUntil(lambda: not panel.reruns.is_running(), timeout=60000)
    assert "Cancelled" in panel.reruns.status_label.text()
    assert main_window.session.compare == (synthesized,)


PLANTED = (slice(1, 3), slice(8, 14), slice(8, 14))


@pytest.fixture
def dropout_denoiser_run(tmp_path, no_discovered_plugins):
    """A same-modality generator, so the check computes a residual and flags regions."""
    spec = ArchitectureSpec("resnet_6blocks", 1, 1, ngf=4, norm="instance", use_dropout=True)
    folder = make_builtin_plugin(
        tmp_path / "denoise",
        spec=spec,
        task="denoising",
        output={"modality": "MR"},
        normalization={
            "input": {"method": "percentile", "low_percentile": 0.5, "high_percentile": 99.5},
            "output": {"method": "same_as_input"},
        },
    )
    manifest = load_manifest(folder)
    voxels = np.random.default_rng(0).uniform(100, 900, (4, 24, 24)).astype(np.float32)
    original = Volume(voxels, Geometry(np.zeros(3), np.array([1.0, 1.0, 3.0]), np.eye(3)), "MR", name="t1")
    synthesized = synthesize(load_plugin(manifest), original, RunOptions(device="cpu")).volume
    # A focal change over the random generator's noise: what the calibrated check flags. The
    # plugin has no calibration, so its residual is read with the plain model: all imaged tissue
    # tested (the uniform-noise "image" would be all noise floor to a magnitude-denoiser model,
    # which only a calibration declares), nothing removed per tissue kind.
    planted = np.array(synthesized.voxels, np.float32)
    planted[PLANTED] += 3000.0
    return manifest, original, synthesized.with_voxels(planted)


def test_a_rerun_map_adds_its_mean_inside_each_flagged_region_to_the_table(
    qtbot, main_window, dropout_denoiser_run
):
    manifest, original, synthesized = dropout_denoiser_run
    _dock_plugins_stub(main_window, [manifest])
    panel = install_hallucination_panel(main_window)
    main_window.show_compare(original, [synthesized])
    qtbot.mouseClick(panel.run_button, LEFT)
    qtbot.waitUntil(lambda: not panel.is_running(), timeout=20000)
    assert panel.table.rowCount() >= 1 and panel.table.columnCount() == 6
    # The first row is the planted change (not something the check found elsewhere).
    assert np.mean(panel.result.label_map[PLANTED] == panel.region_at_row(0).label) > 0.5

    panel.reruns.mc_samples_spin.setValue(3)
    qtbot.mouseClick(panel.reruns.buttons["mc_dropout"], LEFT)
    qtbot.waitUntil(lambda: not panel.reruns.is_running(), timeout=60000)
    headers = [panel.table.horizontalHeaderItem(c).text() for c in range(panel.table.columnCount())]
    column = headers.index("MC-dropout SD")
    assert panel.table.horizontalHeaderItem(column).toolTip().startswith("Mean of MC-dropout SD (3 samples)")
    assert headers[-2:] == ["MC-dropout SD", "Kind"]
    sd_map = main_window.session.compare[1]
    region = panel.region_at_row(0)
    expected = float(np.nanmean(sd_map.voxels[panel.result.label_map == region.label]))
    assert float(panel.table.item(0, column).text()) == pytest.approx(expected, rel=1e-3)
    assert "SSIM n/a (fewer than 7 voxels" in panel.metrics_label.text()  # 4 slices: no 7-voxel window
    main_window.save_screenshot("/tmp/region_table_with_rerun.png")


def _dock_plugins_stub(window, manifests) -> None:
    """Stands in for the GAN plugins dock: the reruns find the plugins through the dock's name."""
    from PySide6 import QtWidgets

    stub = QtWidgets.QWidget()
    stub.manifests = manifests
    window.add_dock(stub, "GAN plugins")

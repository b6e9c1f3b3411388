"""Rerun the generator for hallucination maps: TTA SD, MC-dropout SD, perturbation change, cycle residual.

A thin Qt adapter over ``app.plugins.uncertainty_runs``: the buttons say which maps the plugin
that made the compared volume offers (from its manifest, without importing torch), a run goes
to the thread pool with progress and cancel, and a finished map is emitted with ``map_ready``
so the hallucination panel shows it as a linked map column of the compare layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtWidgets

from app.core.volume import Volume
from app.ui.plugin_task import RunsPluginTask, TaskControls, Work

if TYPE_CHECKING:
    from app.plugins.rerun_maps import RerunKind

PairProvider = Callable[[], tuple[Volume, Volume] | None]


def rerun_work(request, original: Volume, synthesized: Volume, manifests: list) -> Work:
    """Load the plugin that made ``synthesized`` and compute one map (run by a PluginTask)."""

    def work(progress, cancel):
        from app.plugins.uncertainty_runs import compute_map, resolve_plugin

        plugin = resolve_plugin(synthesized, manifests)
        return compute_map(request, plugin, original, synthesized, progress=progress, cancel=cancel)

    return work


class RerunMapsBox(RunsPluginTask, QtWidgets.QGroupBox):
    """Buttons per map kind, their settings, progress and cancel."""

    map_ready = QtCore.Signal(object)  # map Volume (with a quantity_map)

    def __init__(
        self,
        pair_provider: PairProvider | None = None,
        manifests_provider: Callable[[], list] | None = None,
        parent=None,
    ) -> None:
        super().__init__("Rerun the generator", parent)
        from app.plugins.rerun_maps import MAP_KINDS, MAP_TITLES

        self.pair_provider = pair_provider or (lambda: None)
        self.manifests_provider = manifests_provider or (lambda: [])
        self.last_error = ""
        self._discovered: dict[str, object] = {}  # plugin name -> manifest (discovery reads files)

        self.buttons: dict[RerunKind, QtWidgets.QPushButton] = {}  # also found by name ("tta")
        grid = QtWidgets.QGridLayout()
        for number, kind in enumerate(MAP_KINDS):
            button = QtWidgets.QPushButton(MAP_TITLES[kind])
            button.clicked.connect(lambda checked=False, k=kind: self.compute(k))
            self.buttons[kind] = button
            grid.addWidget(button, number // 2, number % 2)

        self.mc_samples_spin = QtWidgets.QSpinBox()
        self.mc_samples_spin.setRange(2, 64)
        self.mc_samples_spin.setValue(8)
        self.mc_samples_spin.setToolTip("Forward passes with the dropout layers active")
        self.noise_spin = QtWidgets.QDoubleSpinBox()
        self.noise_spin.setRange(0.1, 20.0)
        self.noise_spin.setDecimals(1)
        self.noise_spin.setSingleStep(0.5)
        self.noise_spin.setValue(1.0)
        self.noise_spin.setSuffix(" % of range")
        self.noise_spin.setToolTip(
            "Input noise SD for the perturbation check, as a share of the intensity range"
        )
        settings = QtWidgets.QFormLayout()
        settings.addRow("MC samples", self.mc_samples_spin)
        settings.addRow("Noise", self.noise_spin)

        self.controls = TaskControls(self.cancel, parent=self)
        self.progress_bar = self.controls.progress_bar
        self.cancel_button = self.controls.cancel_button
        self.status_label = self.controls.status_label
        self._reason_texts: set[str] = set()  # why-not texts shown, cleared once they no longer hold

        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addLayout(settings)
        layout.addLayout(self.controls.progress_row())
        layout.addWidget(self.status_label)
        self.refresh()

    # ----- which maps the compared volume's plugin offers ---------------------------------
    def _plugin_manifest(self, synthesized: Volume):
        """The manifest of the plugin named in the provenance, or (None, reason)."""
        from app.plugins.errors import PluginError

        name = synthesized.provenance.plugin_name
        for manifest in self.manifests_provider() or []:
            if manifest.name == name:
                return manifest, ""
        if name in self._discovered:
            return self._discovered[name], ""
        try:
            from app.plugins.discovery import find_plugin

            self._discovered[name] = find_plugin(name)
        except PluginError as error:
            return None, str(error)
        return self._discovered[name], ""

    def refresh(self) -> None:
        """Enable the buttons for the maps the compared volume's plugin offers (tooltips say why not)."""
        from app.plugins.rerun_maps import map_availability

        pair = self.pair_provider()
        reasons: dict[str, str]
        if pair is None:
            reasons = dict.fromkeys(self.buttons, "Open a compare (original and synthesized) first")
        elif pair[1].provenance is None:
            reasons = dict.fromkeys(self.buttons, "The compared volume is not a plugin output")
        else:
            manifest, problem = self._plugin_manifest(pair[1])
            if manifest is None:
                reasons = dict.fromkeys(self.buttons, f"Plugin not available: {problem}")
            else:
                reasons = map_availability(manifest)
        running = self.is_running()
        for kind, button in self.buttons.items():
            button.setEnabled(not reasons[kind] and not running)
            button.setToolTip(reasons[kind] or f"Rerun the generator to compute the {button.text()} map")
        plugin = pair[1].provenance.plugin_name if pair is not None and pair[1].provenance else ""
        self.setTitle(f"Rerun the generator ({plugin})" if plugin else "Rerun the generator")
        if running or self.last_error:
            return
        if not any(not r for r in reasons.values()):
            self.status_label.setText(next(iter(reasons.values()), ""))
        elif self.status_label.text() in self._reason_texts:
            self.status_label.setText("")  # a reason that no longer holds ("Open a compare first")
        self._reason_texts = set(reasons.values()) - {""} | self._reason_texts

    # ----- running ------------------------------------------------------------------------
    def compute(self, kind: RerunKind | str) -> bool:
        """Start one map for the compared pair in the thread pool; False if it cannot start."""
        from app.plugins.rerun_maps import MAP_TITLES, MapRequest

        pair = self.pair_provider()
        if self.is_running() or pair is None or pair[1].provenance is None:
            return False
        request = MapRequest(
            kind, mc_samples=self.mc_samples_spin.value(), noise_fraction=self.noise_spin.value() / 100
        )
        work = rerun_work(request, pair[0], pair[1], list(self.manifests_provider() or []))
        self.last_error = ""
        self._start_task(work, f"Computing {MAP_TITLES[kind]} …")
        return True

    def _set_running(self, running: bool) -> None:
        for button in self.buttons.values():
            button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if not running:
            self.refresh()

    def _on_finished(self, map_volume: Volume) -> None:
        self._task_ended(f"Shown: {map_volume.name}", done=True)
        self.map_ready.emit(map_volume)

    def _on_failed(self, message: str) -> None:
        self.last_error = message  # before the refresh that ending runs: it keeps the message
        self._task_ended(f"Failed: {message}")

    def _on_cancelled(self) -> None:
        self._task_ended("Cancelled; no map was made.")

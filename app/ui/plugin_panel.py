"""Plugin panel: choose a GAN plugin, read its model card, run it in a worker thread.

The panel only wires controls to ``app.plugins.runtime.synthesize`` (which is Qt-free): the run
happens in a QThread, progress and cancel go through the runtime's callbacks, and the finished
Volume is emitted with ``result_ready(original, synthesized)``; ``install_plugin_panel`` connects
that to the main window's compare layout. torch is imported only when a run starts, so showing
the panel at start-up stays cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from app.core.volume import Volume
from app.ui.plugin_task import TaskControls

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


class SynthesisWorker(QtCore.QObject):
    """Runs one synthesis off the UI thread; signals arrive queued on the UI thread."""

    progress = QtCore.Signal(float, str)
    finished = QtCore.Signal(object)  # SynthesisResult
    failed = QtCore.Signal(str)
    cancelled = QtCore.Signal()

    def __init__(self, manifest, volume: Volume, device: str, match_training_spacing: bool = True) -> None:
        super().__init__()
        self.manifest = manifest
        self.volume = volume
        self.device = device
        self.match_training_spacing = match_training_spacing
        self.cancel_event = threading.Event()

    @QtCore.Slot()
    def run(self) -> None:
        try:
            from app.plugins.errors import PluginError, SynthesisCancelled
            from app.plugins.runtime import RunOptions, synthesize

            result = synthesize(
                self.manifest,
                self.volume,
                RunOptions(device=self.device, match_training_spacing=self.match_training_spacing),
                progress=lambda fraction, message: self.progress.emit(fraction, message),
                cancel=self.cancel_event.is_set,
            )
        except SynthesisCancelled:
            self.cancelled.emit()
        except PluginError as error:
            self.failed.emit(str(error))
        except Exception as error:  # noqa: BLE001 - the panel must report, never crash the viewer
            self.failed.emit(f"{type(error).__name__}: {error}")
        else:
            self.finished.emit(result)


class PluginPanel(QtWidgets.QWidget):
    """Choose a plugin (discovered, or a folder added), read its card, run it on the open volume.

    ``discover_in_background``: the first discovery runs in a thread, begun by
    ``start_discovery()`` (its imports, jsonschema and YAML, held the UI thread 0.19 s right
    after the window's first image); until it answers the panel says it is looking, and
    ``plugins_changed`` tells when the list changed."""

    result_ready = QtCore.Signal(object, object)  # original Volume, synthesized Volume
    run_failed = QtCore.Signal(str)
    plugins_changed = QtCore.Signal()  # ``manifests`` changed (discovery answered, a folder added)
    _discovered = QtCore.Signal(object)  # from the discovery thread: its plugins, or its error

    def __init__(
        self,
        volume_provider: Callable[[], Volume | None] | None = None,
        parent: QtWidgets.QWidget | None = None,
        discover_in_background: bool = False,
    ) -> None:
        super().__init__(parent)
        self.volume_provider = volume_provider or (lambda: None)
        self.manifests: list = []
        self.discovering = False
        self._thread: QtCore.QThread | None = None
        self._worker: SynthesisWorker | None = None

        self.plugin_combo = QtWidgets.QComboBox()
        self.plugin_combo.currentIndexChanged.connect(self._show_model_card)
        self.plugin_combo.activated.connect(self._on_user_choice)
        self._user_chose = False  # once the reader picks a plugin, a new volume does not change it
        self.add_folder_button = QtWidgets.QPushButton("Add folder…")
        self.add_folder_button.setToolTip("Use a plugin folder (manifest + weights) without installing it")
        self.add_folder_button.clicked.connect(self._choose_folder)
        self.refresh_button = QtWidgets.QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.model_card = QtWidgets.QPlainTextEdit()
        self.model_card.setReadOnly(True)
        self.model_card.setMinimumHeight(140)
        self.device_combo = QtWidgets.QComboBox()
        self.device_combo.addItems(DEVICE_CHOICES)
        self.match_spacing_check = QtWidgets.QCheckBox("Resample to the training spacing")
        self.match_spacing_check.setChecked(True)
        self.match_spacing_check.setToolTip(
            "Resample each image to the voxel spacing the generator was trained at, and the result back"
            " to this volume's grid (off: run at this volume's spacing)"
        )
        self.run_button = QtWidgets.QPushButton("Run")
        self.run_button.clicked.connect(self.run_selected)
        self.controls = TaskControls(self.cancel, selectable_status=True, parent=self)
        self.progress_bar = self.controls.progress_bar
        self.cancel_button = self.controls.cancel_button
        self.status_label = self.controls.status_label
        self.domain_box = self._build_domain_box()
        self._acknowledged: tuple = (None, None)  # (manifest, volume) the user chose to run anyway

        # The plugin's name on a row of its own, the dock's whole width (it was clipped beside
        # the buttons), the buttons under it.
        chooser = QtWidgets.QVBoxLayout()
        chooser.addWidget(self.plugin_combo)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.add_folder_button)
        buttons.addWidget(self.refresh_button)
        chooser.addLayout(buttons)
        run_row = QtWidgets.QHBoxLayout()
        run_row.addWidget(QtWidgets.QLabel("Device"))
        run_row.addWidget(self.device_combo)
        run_row.addStretch(1)
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.cancel_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(chooser)
        layout.addWidget(QtWidgets.QLabel("Model card"))
        layout.addWidget(self.model_card, 1)
        layout.addWidget(self.match_spacing_check)
        layout.addLayout(run_row)
        layout.addWidget(self.domain_box)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        self._discovered.connect(self._on_discovered)
        if discover_in_background:
            self._looking()
        else:
            self.refresh()

    # -- plugins -------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-run discovery; plugins with a broken manifest are reported in the status line."""
        from app.plugins.discovery import discover_plugins

        self._apply_discovery(discover_plugins())

    def _looking(self) -> None:
        self.discovering = True
        self.refresh_button.setEnabled(False)
        self.model_card.setPlainText("Looking for plugins…")
        self._update_run_button()

    def start_discovery(self) -> None:
        """Discover the plugins in a thread; the panel is filled when it answers."""
        self._looking()

        def discover() -> None:
            try:
                from app.plugins.discovery import discover_plugins

                found = discover_plugins()
            except Exception as error:  # noqa: BLE001 - shown in the panel, as a refresh would
                found = error
            try:
                self._discovered.emit(found)
            except RuntimeError:  # the panel went away meanwhile: nobody to tell
                pass

        threading.Thread(target=discover, name="plugin discovery", daemon=True).start()

    def _on_discovered(self, found) -> None:
        self.discovering = False
        self.refresh_button.setEnabled(True)
        if isinstance(found, Exception):
            self.status_label.setText(f"Plugin discovery failed: {type(found).__name__}: {found}")
            self._fill_combo()
            return
        self._apply_discovery(found)

    def _apply_discovery(self, found: list) -> None:
        extra = [m for m in self.manifests if m.name not in {p.name for p in found if p.manifest}]
        self.manifests = [p.manifest for p in found if p.manifest] + extra
        broken = [p for p in found if p.manifest is None]
        self._fill_combo()
        if broken:
            self.status_label.setText(
                "Not loaded (broken manifest): " + ", ".join(f"{p.folder.name}" for p in broken)
            )

    def add_plugin_folder(self, folder: str | Path) -> bool:
        """Bring your own generator: a folder with a manifest and weights; True when valid."""
        from app.plugins.errors import PluginError
        from app.plugins.manifest import load_manifest

        try:
            manifest = load_manifest(folder)
        except PluginError as error:
            self.status_label.setText(str(error))
            return False
        self.manifests = [m for m in self.manifests if m.name != manifest.name] + [manifest]
        self._fill_combo()
        self.plugin_combo.setCurrentIndex(self.plugin_combo.findText(self._label(manifest)))
        self.status_label.setText(f"Added {manifest.name} from {manifest.folder}")
        return True

    def selected_manifest(self):
        index = self.plugin_combo.currentIndex()
        return self.manifests[index] if 0 <= index < len(self.manifests) else None

    @staticmethod
    def _label(manifest) -> str:
        return f"{manifest.name} {manifest.version} ({manifest.task})"

    def _fill_combo(self) -> None:
        self.plugin_combo.blockSignals(True)
        self.plugin_combo.clear()
        self.plugin_combo.addItems([self._label(m) for m in self.manifests])
        for index, manifest in enumerate(self.manifests):
            self.plugin_combo.setItemData(index, self._label(manifest), QtCore.Qt.ItemDataRole.ToolTipRole)
        self.plugin_combo.blockSignals(False)
        self.choose_for_volume()
        self._show_model_card()
        self.plugins_changed.emit()

    def choose_for_volume(self) -> None:
        """Select the plugin that fits the open volume: an image-to-image plugin taking its
        modality, before one that takes another, before a segmentation plugin (it makes a label
        map, not an image: the Hallucination check's Segmentation tab is where it serves), before
        a generator (which takes no volume and belongs to the sample gallery). The reader's own
        choice is kept."""
        if self._user_chose or not self.manifests:
            self._update_run_button()
            return
        volume = self.volume_provider()
        modality = (volume.modality if volume is not None else "").upper()

        def rank(manifest) -> tuple[int, int, int]:
            takes = {m.upper() for m in (manifest.input_modalities or (manifest.input_modality,)) if m}
            generator = manifest.task == "generation"
            fits = 0 if not modality or not takes or modality in takes else 1
            return (int(generator), int(manifest.is_segmentation), fits)

        best = min(range(len(self.manifests)), key=lambda index: rank(self.manifests[index]))
        self.plugin_combo.setCurrentIndex(best)
        self._update_run_button()

    def _on_user_choice(self, _index: int) -> None:
        self._user_chose = True
        self._update_run_button()

    def _update_run_button(self) -> None:
        """Run only what can run: a plugin chosen, a volume open, and not a generator."""
        manifest = self.selected_manifest()
        volume = self.volume_provider()
        if manifest is None and self.discovering:
            why = "Looking for plugins…"
        elif manifest is None:
            why = "No plugin found"
        elif manifest.task == "generation":
            why = "A generation plugin takes no input volume: Tools > Sample gallery shows its samples"
        elif volume is None:
            why = "Open a volume first"
        else:
            why = ""
        self.run_button.setEnabled(not why and not self.is_running())
        self.run_button.setToolTip(why or f"Run {manifest.name} on {volume.name or 'the open volume'}")

    def _show_model_card(self, *_args) -> None:
        manifest = self.selected_manifest()
        if manifest is None and self.discovering:
            self.model_card.setPlainText("Looking for plugins…")
        else:
            self.model_card.setPlainText(manifest.model_card_text() if manifest else self._no_plugin_text())
        self._update_run_button()

    @staticmethod
    def _no_plugin_text() -> str:
        """Where plugins are looked for, and how to bring one, for a panel with none."""
        from app.plugins.discovery import REPO_PLUGIN_DIR, user_plugin_dirs

        places = "\n".join(f"  {folder}" for folder in [REPO_PLUGIN_DIR, *user_plugin_dirs()])
        return (
            f"No plugin found. SynthView looks in\n{places}\nand in installed Python packages "
            "(entry-point group synthview.plugins).\n\n"
            "'Add folder...' loads a plugin folder: a manifest (plugin.yaml or plugin.toml) beside "
            "its weights."
        )

    def _choose_folder(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Plugin folder (manifest + weights)")
        if folder:
            self.add_plugin_folder(folder)

    # -- running -------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self._thread is not None

    def run_selected(self) -> bool:
        """Start the selected plugin on the viewer's current volume; False if it cannot start."""
        manifest = self.selected_manifest()
        volume = self.volume_provider()
        if self.is_running():
            return False
        if manifest is None or volume is None:
            self.status_label.setText("Open a volume and choose a plugin first.")
            return False
        if not self._domain_acknowledged(manifest, volume):
            return False
        self._original = volume
        self._worker = SynthesisWorker(
            manifest, volume, self.device_combo.currentText(), self.match_spacing_check.isChecked()
        )
        self._thread = QtCore.QThread(self)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.progress.connect(self.controls.show_progress)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        self._set_running(True)
        self.controls.started(f"Running {manifest.name} on {volume.name or 'the current volume'}…")
        self._thread.start()
        return True

    # -- out-of-distribution warning, acknowledged before a run -------------------------------
    def _build_domain_box(self) -> QtWidgets.QFrame:
        box = QtWidgets.QFrame()
        box.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        box.setStyleSheet("QFrame { border: 2px solid #e0a040; } QLabel { border: none; }")
        self.domain_label = QtWidgets.QLabel("")
        self.domain_label.setWordWrap(True)
        self.domain_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.run_anyway_button = QtWidgets.QPushButton("Run anyway")
        self.run_anyway_button.setToolTip("I have read the warnings; run the generator on this input")
        self.run_anyway_button.clicked.connect(self.run_anyway)
        self.dont_run_button = QtWidgets.QPushButton("Don't run")
        self.dont_run_button.clicked.connect(self._dismiss_domain_warning)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.dont_run_button)
        buttons.addWidget(self.run_anyway_button)
        layout = QtWidgets.QVBoxLayout(box)
        layout.addWidget(self.domain_label)
        layout.addLayout(buttons)
        box.hide()
        return box

    def _domain_acknowledged(self, manifest, volume: Volume) -> bool:
        """True when the input is in the training domain or the user chose to run anyway;
        otherwise show the warnings and wait for the user's answer."""
        from app.analysis.ood import check_domain

        if self._acknowledged[0] is manifest and self._acknowledged[1] is volume:
            return True
        if volume.modality and manifest.input_modalities and not manifest.accepts_modality(volume.modality):
            return True  # the runtime refuses the wrong modality with its own clear message
        warnings = check_domain(volume, manifest).warnings
        if not warnings:
            return True
        items = "".join(f"<li>{warning}</li>" for warning in warnings)
        self.domain_label.setText(
            f"<b>This input is outside the training domain of {manifest.name}.</b>"
            f"<ul>{items}</ul>The output may be unreliable (invented or missing structures)."
        )
        self.domain_box.show()
        self.run_button.setEnabled(False)
        self.status_label.setText("Read the training-domain warning, then run anyway or don't run.")
        self._pending_domain = (manifest, volume)
        return False

    def domain_warnings_shown(self) -> bool:
        return not self.domain_box.isHidden()

    def run_anyway(self) -> bool:
        """The user acknowledged the warnings: run the plugin on that input."""
        manifest, volume = getattr(self, "_pending_domain", (None, None))
        self._dismiss_domain_warning()
        if (
            manifest is None
            or manifest is not self.selected_manifest()
            or volume is not self.volume_provider()
        ):
            return False
        self._acknowledged = (manifest, volume)
        return self.run_selected()

    def _dismiss_domain_warning(self) -> None:
        self.domain_box.hide()
        self._pending_domain = (None, None)
        self._update_run_button()
        if self.status_label.text().startswith("Read the training-domain warning"):
            self.status_label.setText("")

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel_event.set()
            self.status_label.setText("Cancelling…")

    def _set_running(self, running: bool) -> None:
        if running:
            self.run_button.setEnabled(False)
        else:
            self._update_run_button()
        self.cancel_button.setEnabled(running)
        self.plugin_combo.setEnabled(not running)

    def _finish_thread(self) -> None:
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
            self._thread.deleteLater()
        if self._worker is not None:
            self._worker.deleteLater()
        self._thread = None
        self._worker = None
        self._set_running(False)

    def _on_finished(self, result) -> None:
        self._finish_thread()
        notes = "".join(f"\n{m}" for m in result.messages)
        self.controls.ended(
            f"{result.volume.provenance.label()} — {result.duration_s:.1f} s on {result.device}{notes}", done=True
        )
        self.result_ready.emit(self._original, result.volume)

    def _on_failed(self, message: str) -> None:
        self._finish_thread()
        self.controls.ended(f"Failed: {message}")
        self.run_failed.emit(message)

    def _on_cancelled(self) -> None:
        self._finish_thread()
        self.controls.ended("Cancelled; nothing was produced.")


def install_plugin_panel(window) -> PluginPanel:
    """Dock the panel in the main window; a finished run opens the compare layout."""
    panel = PluginPanel(volume_provider=lambda: window.session.current, discover_in_background=True)
    if window.building_startup_tools():
        # Not alongside the other start-up tools' builds: a Python thread shares the GIL, and
        # the annotation tools' build took 0.15 s instead of 0.055 s beside it.
        window.startup_tools_built.connect(panel.start_discovery)
    else:
        panel.start_discovery()
    window.view_changed.connect(panel.choose_for_volume)
    panel.result_ready.connect(lambda original, synthesized: window.show_compare(original, [synthesized]))
    window.add_dock(panel, "GAN plugins")
    return panel

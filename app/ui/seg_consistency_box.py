"""Segmentation consistency in the Hallucination check dock: does the synthesized image still
segment like the original?

A thin Qt adapter over ``app.plugins.seg_check``: the reader picks a segmentation plugin for the
original (and, for a cross-modality pair, another for the synthesized volume); both runs go to
the thread pool with progress and cancel. The finished check is handed on as
``SegmentationOverlays`` (label maps over their panels, a disagreement column) and its
disagreement regions are listed like the residual regions: click one to go there.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6 import QtCore, QtWidgets

from app.core.label_overlays import DEFAULT_LABEL_OPACITY, DISAGREEMENT_COLOUR, SegmentationOverlays
from app.core.volume import Volume
from app.ui.plugin_task import RunsPluginTask, TaskControls
from app.ui.region_table import (
    centroid_text,
    fill_rows,
    fit_last_column,
    legend_swatch,
    region_index_at,
    region_table,
)

SAME_PLUGIN = "(same as the original's)"


class SegConsistencyBox(RunsPluginTask, QtWidgets.QWidget):
    """Plugin choice, run / cancel, overlay display, per-label agreement and the region table."""

    overlays_ready = QtCore.Signal(object)  # SegmentationOverlays of a finished check; None: cleared
    display_changed = QtCore.Signal(bool, float)  # label overlays shown, opacity
    region_activated = QtCore.Signal(object)  # np.ndarray (3,) LPS mm of the region's centroid
    region_selected = QtCore.Signal(object)  # Volume: the region's mask (for its outline)

    def __init__(
        self,
        pair_provider: Callable[[], tuple[Volume, Volume] | None],
        manifests_provider: Callable[[], list] | None = None,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.pair_provider = pair_provider
        self.manifests_provider = manifests_provider or (lambda: [])
        self.run = None  # the ConsistencyRun shown (app.plugins.seg_check)
        self.pair: tuple[Volume, Volume] | None = None  # what it was run on
        self._task_pair: tuple[Volume, Volume] | None = None
        self._manifests: list = []

        self.original_combo = QtWidgets.QComboBox()
        self.original_combo.setToolTip("The segmentation plugin run on the original")
        self.synthesized_combo = QtWidgets.QComboBox()
        self.synthesized_combo.setToolTip(
            "The segmentation plugin run on the synthesized volume: another one for a cross-modality"
            " pair (a model for the output's modality)"
        )
        from app.analysis.seg_consistency import LISTED_BY_DEFAULT

        self.min_region_spin = QtWidgets.QDoubleSpinBox()
        self.min_region_spin.setRange(0.0, 1e6)
        self.min_region_spin.setDecimals(0)
        self.min_region_spin.setSingleStep(10.0)
        self.min_region_spin.setSuffix(" mm³")
        self.min_region_spin.setValue(LISTED_BY_DEFAULT.min_region_mm3)
        self.min_region_spin.setToolTip(
            "List disagreement regions of at least this volume (smaller ones still count in Dice and volumes)"
        )
        self.jitter_check = QtWidgets.QCheckBox("Ignore one-voxel boundary jitter")
        self.jitter_check.setChecked(LISTED_BY_DEFAULT.ignore_boundary_jitter)
        self.jitter_check.setToolTip(
            "A boundary between two labels that moved by one voxel is not a region (a region keeps the"
            " jitter voxels touching it); Dice and volumes count every voxel"
        )
        self.run_button = QtWidgets.QPushButton("Check segmentation consistency")
        self.run_button.setToolTip("Segment both volumes and compare the label maps (Dice, volumes, regions)")
        self.run_button.clicked.connect(self.start)
        self.controls = TaskControls(self.cancel, parent=self)
        self.progress_bar = self.controls.progress_bar
        self.cancel_button = self.controls.cancel_button
        self.status_label = self.controls.status_label
        self.notes_label = QtWidgets.QLabel("")
        self.notes_label.setWordWrap(True)
        self.notes_label.setStyleSheet("color: #e0a040")

        self.overlay_check = QtWidgets.QCheckBox("Label overlays")
        self.overlay_check.setChecked(True)
        self.overlay_check.setToolTip("Each label map over its panel (original, synthesized)")
        self.opacity_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(DEFAULT_LABEL_OPACITY * 100))
        self.opacity_slider.setToolTip("Opacity of the label overlays")
        self.overlay_check.toggled.connect(self._on_display)
        self.opacity_slider.valueChanged.connect(self._on_display)
        for widget in (self.overlay_check, self.opacity_slider):
            widget.setEnabled(False)

        self.summary_label = QtWidgets.QLabel("")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = region_table(["mL", "Voxels", "Centroid\nLPS (mm)", "Labels involved"])
        self.table.setToolTip(
            "Regions where the two label maps disagree (26-connected, on the original's grid): volume,"
            " voxels, centroid in LPS mm, label changes (original -> synthesized, most voxels first);"
            " click a header to sort, a row to go there"
        )
        self.table.setMinimumHeight(120)
        self.table.cellClicked.connect(lambda row, _column: self.activate_region(row))
        self.table.cellActivated.connect(lambda row, _column: self.activate_region(row))

        form = QtWidgets.QFormLayout()
        form.addRow("Original", self.original_combo)
        form.addRow("Synthesized", self.synthesized_combo)
        form.addRow("Smallest region", self.min_region_spin)
        form.addRow("", self.jitter_check)
        display_row = QtWidgets.QHBoxLayout()
        display_row.addWidget(self.overlay_check)
        display_row.addWidget(QtWidgets.QLabel("Opacity"))
        display_row.addWidget(self.opacity_slider, 1)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(QtWidgets.QLabel("Segment both volumes and compare the label maps:"))
        layout.addLayout(form)
        layout.addWidget(self.run_button)
        layout.addLayout(self.controls.progress_row())
        layout.addWidget(self.status_label)
        layout.addLayout(display_row)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.notes_label)
        self.refresh()

    # ----- which plugins ------------------------------------------------------------------
    def refresh(self) -> None:
        """List the segmentation plugins known now; forget a check of another pair."""
        manifests = [m for m in self.manifests_provider() or [] if getattr(m, "is_segmentation", False)]
        names = [m.name for m in manifests]
        if names != [m.name for m in self._manifests]:
            keep = self.original_combo.currentText(), self.synthesized_combo.currentText()
            self._manifests = manifests
            for combo, extra in ((self.original_combo, []), (self.synthesized_combo, [SAME_PLUGIN])):
                combo.blockSignals(True)
                combo.clear()
                combo.addItems(extra + names)
                combo.blockSignals(False)
            self.original_combo.setCurrentIndex(max(self.original_combo.findText(keep[0]), 0))
            self.synthesized_combo.setCurrentIndex(max(self.synthesized_combo.findText(keep[1]), 0))
        pair = self.pair_provider()
        if self.run is not None and (
            pair is None or pair[0] is not self.pair[0] or pair[1] is not self.pair[1]
        ):
            self.clear("The compared pair changed: run the segmentation check again.")
        running = self._task is not None
        self.run_button.setEnabled(bool(manifests) and pair is not None and not running)
        if not running and self.run is None:
            if not manifests:
                self.status_label.setText("No segmentation plugin: add one in the GAN plugins dock.")
            elif pair is None:
                self.status_label.setText("Open a compare (original and synthesized) first.")
            elif self.status_label.text().startswith(("No segmentation plugin", "Open a compare")):
                self.status_label.setText("")

    def chosen_manifests(self) -> tuple | None:
        index = self.original_combo.currentIndex()
        if not 0 <= index < len(self._manifests):
            return None
        first = self._manifests[index]
        second_index = self.synthesized_combo.currentIndex() - 1  # after SAME_PLUGIN
        second = self._manifests[second_index] if 0 <= second_index < len(self._manifests) else first
        return first, second

    def region_filter(self):
        """Which disagreement regions the next check lists (``app.analysis.seg_consistency``)."""
        from app.analysis.seg_consistency import RegionFilter

        return RegionFilter(self.min_region_spin.value(), self.jitter_check.isChecked())

    # ----- running ------------------------------------------------------------------------
    def start(self) -> bool:
        """Segment the compared pair in the thread pool; False if it cannot start."""
        pair, manifests = self.pair_provider(), self.chosen_manifests()
        if self._task is not None or pair is None or manifests is None:
            return False
        region_filter = self.region_filter()

        def work(progress, cancel):
            from app.plugins.seg_check import run_consistency

            return run_consistency(
                pair[0], pair[1], manifests, region_filter, progress=progress, cancel=cancel
            )

        self._task_pair = pair
        self._start_task(work, f"Segmenting with {manifests[0].name} …")
        return True

    def _set_running(self, running: bool) -> None:
        self.cancel_button.setEnabled(running)
        self.run_button.setEnabled(not running)
        for widget in (self.original_combo, self.synthesized_combo, self.min_region_spin, self.jitter_check):
            widget.setEnabled(not running)
        if not running:
            self.refresh()

    def _on_finished(self, run) -> None:
        pair = self.pair_provider()
        if pair is None or pair[0] is not self._task_pair[0] or pair[1] is not self._task_pair[1]:
            self._task_ended()
            self.status_label.setText("The compared pair changed during the check: run it again.")
            return
        self.run, self.pair = run, self._task_pair
        self._task_ended()
        result = run.result
        regions = len(result.regions)
        self.controls.ended(
            f"{regions} disagreement region(s) listed, {result.disagreement_ml:.3g} mL of differing labels in all"
            + (" — click one to go there" if regions else "")
            + f"\n{result.region_filter.describe()}: {result.unlisted_regions} smaller region(s) and"
            f" {result.boundary_jitter_voxels} jitter voxel(s) not listed",
            done=True,
        )
        self.notes_label.setText("\n".join(run.notes + run.result.notes))
        self._fill_summary()
        self._fill_regions()
        for widget in (self.overlay_check, self.opacity_slider):
            widget.setEnabled(True)
        self.overlays_ready.emit(
            SegmentationOverlays(
                original=pair[0],
                synthesized=pair[1],
                original_labels=run.original_labels,
                synthesized_labels=run.synthesized_labels,
                disagreement=run.disagreement,
                shown=self.overlay_check.isChecked(),
                opacity=self.opacity_slider.value() / 100,
            )
        )

    def _on_failed(self, message: str) -> None:
        self._task_ended(f"Segmentation check failed: {message}")

    def _on_cancelled(self) -> None:
        self._task_ended("Cancelled; no label maps were made.")

    def clear(self, message: str = "") -> None:
        """Forget the shown check (it belongs to another pair)."""
        had_run = self.run is not None
        self.run, self.pair = None, None
        self.table.setRowCount(0)
        self.summary_label.setText("")
        self.notes_label.setText("")
        self.status_label.setText(message)
        for widget in (self.overlay_check, self.opacity_slider):
            widget.setEnabled(False)
        if had_run:
            self.overlays_ready.emit(None)

    # ----- display ------------------------------------------------------------------------
    def _on_display(self, *_args) -> None:
        self.display_changed.emit(self.overlay_check.isChecked(), self.opacity_slider.value() / 100)

    def _fill_summary(self) -> None:
        lines = []
        colours = {entry.value: entry.colour_rgb for entry in self.run.original_labels.label_map.labels}
        for label in self.run.result.labels:
            r, g, b = colours.get(label.label, (128, 128, 128))
            swatch = legend_swatch((r, g, b))  # its overlay colour
            dice = "n/a" if label.dice is None else f"{label.dice:.3f}"
            change = "" if label.volume_change_percent is None else f" ({label.volume_change_percent:+.1f} %)"
            hd95 = "" if label.hd95_mm is None else f", HD95 {label.hd95_mm:.1f} mm"
            lines.append(
                f"{swatch}<b>{label.name}</b>: Dice {dice}, volume {label.volume_change_ml:+.3g} mL{change}{hd95}"
            )
        r, g, b = DISAGREEMENT_COLOUR
        lines.append(f"{legend_swatch((r, g, b))}labels differ (its own column)")
        self.summary_label.setText("<br>".join(lines))

    # ----- regions ------------------------------------------------------------------------
    def _fill_regions(self) -> None:
        regions = self.run.result.regions if self.run is not None else []
        fill_rows(
            self.table,
            [
                (
                    region.volume_ml,
                    region.voxel_count,
                    centroid_text(region.centroid_lps_mm),
                    "; ".join(change.description for change in region.changes),
                )
                for region in regions
            ],
        )
        fit_last_column(self.table)

    def region_at_row(self, row: int):
        """The DisagreementRegion shown in table ``row`` (after any sorting), or None."""
        if self.run is None:
            return None
        index = region_index_at(self.table, row, len(self.run.result.regions))
        return None if index is None else self.run.result.regions[index]

    def activate_region(self, row: int) -> None:
        region = self.region_at_row(row)
        if region is None:
            return
        self.table.selectRow(row)
        disagreement = self.run.disagreement
        mask = (disagreement.voxels == region.index).astype(np.float32)
        self.region_selected.emit(
            Volume(mask, disagreement.geometry, name=f"disagreement region {region.index}")
        )
        self.region_activated.emit(np.asarray(region.centroid_lps_mm, dtype=float))

"""Hallucination panel: flagged regions of an original/synthesized pair, threshold and map choice.

A thin Qt adapter over ``app.analysis.compare_run``: it computes nothing itself. Clicking a
region moves the shared cursor (LPS mm) so every linked panel jumps to the region's centroid;
changing the threshold recomputes the region list only; choosing a map shows it as one more
linked panel beside the original and the synthesized volume.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PySide6 import QtCore, QtWidgets

from app.analysis.compare_run import NO_RESIDUAL, CompareResult, run_compare
from app.core.volume import Volume
from app.ui.hallucination_reruns import RerunMapsBox
from app.ui.layouts import MAX_VOLUMES_PER_ROW
from app.ui.region_table import ColumnFit, centroid_text, fill_rows, region_index_at, region_table
from app.ui.seg_consistency_box import SegConsistencyBox

MAP_NONE = "(difference only)"


class _CheckSignals(QtCore.QObject):
    finished = QtCore.Signal(object)  # CompareResult
    failed = QtCore.Signal(str)


class _CheckTask(QtCore.QRunnable):
    """``run_compare`` off the UI thread (seconds on a full head volume)."""

    def __init__(self, pair: tuple[Volume, Volume]) -> None:
        super().__init__()
        self.pair = pair
        self.signals = _CheckSignals()

    def run(self) -> None:
        try:
            from app.plugins.null_calibration import calibration_for_volume

            calibration, note = calibration_for_volume(self.pair[1])
            result = run_compare(*self.pair, calibration=calibration)
            if note:
                result.notes.append(note)
        except Exception as error:  # noqa: BLE001 - any failure becomes a message in the panel, never a crash
            self.signals.failed.emit(f"{type(error).__name__}: {error}")
            return
        self.signals.finished.emit(result)


class HallucinationPanel(QtWidgets.QWidget):
    """Region table, threshold control and map selection for one CompareResult."""

    region_activated = QtCore.Signal(object)  # np.ndarray (3,) LPS mm of the region's centroid
    region_selected = QtCore.Signal(object)  # the Region clicked (for its outline)
    map_selected = QtCore.Signal(object)  # Volume of the chosen map, or None for none
    result_changed = QtCore.Signal(
        object
    )  # CompareResult after a check or a new threshold; None when cleared

    def __init__(
        self,
        pair_provider: Callable[[], tuple[Volume, Volume] | None] | None = None,
        parent=None,
        manifests_provider: Callable[[], list] | None = None,
    ):
        super().__init__(parent)
        self.pair_provider = pair_provider
        self.result: CompareResult | None = None
        self._task: _CheckTask | None = None
        self.computed_maps: dict[str, Volume] = {}  # from generator reruns, for ``_maps_for``
        self._maps_for: Volume | None = None

        self.run_button = QtWidgets.QPushButton("Check the compared pair")
        self.run_button.setToolTip(
            "Compute residual regions and metrics for the original and synthesized volume"
        )
        self.run_button.clicked.connect(self.run_check)

        self.threshold_spin = QtWidgets.QDoubleSpinBox()
        self.threshold_spin.setDecimals(3)
        self.threshold_spin.setRange(0.001, 1e7)
        self.threshold_spin.setKeyboardTracking(False)
        self.threshold_spin.setToolTip(
            "Regions where |z| of the calibrated residual statistic exceeds this are flagged"
            " (the default is the operating point for 1 false region per healthy volume)"
        )
        self.threshold_spin.valueChanged.connect(self.set_threshold)
        self.threshold_spin.setEnabled(False)

        self.map_combo = QtWidgets.QComboBox()
        self.map_combo.addItem(MAP_NONE)
        self.map_combo.setEnabled(False)
        self.map_combo.currentIndexChanged.connect(self._on_map_chosen)

        self.note_label = QtWidgets.QLabel("")
        self.note_label.setWordWrap(True)
        self.note_label.setStyleSheet("color: #e0a040")

        self.table = region_table(["mL", "Peak", "Mean", "Kind"])  # click a header: sort
        self.table.setToolTip(
            "Sign (+: original - synthesized > 0, the synthesized image is darker), peak |z| of the"
            " calibrated statistic, volume, peak and mean smoothed residual (original - synthesized),"
            " the mean of each uncertainty / rerun map inside the region, kind; a row's tooltip"
            " gives its centroid in LPS mm and every value whole; click a header to sort, a row to go there"
        )
        ColumnFit(self.table)  # every column in the dock's width: no sideways scrolling
        self.setMinimumWidth(340)
        self.table.verticalHeader().setVisible(True)
        self.table.cellClicked.connect(lambda row, _column: self.activate_region(row))
        self.table.cellActivated.connect(lambda row, _column: self.activate_region(row))

        self.metrics_label = QtWidgets.QLabel("")
        self.metrics_label.setWordWrap(True)
        self.metrics_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)

        form = QtWidgets.QFormLayout()
        form.addRow("Threshold", self.threshold_spin)
        form.addRow("Map", self.map_combo)
        residual_page = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(residual_page)
        layout.addWidget(self.run_button)
        layout.addLayout(form)
        layout.addWidget(self.note_label)
        self.count_label = QtWidgets.QLabel("No check run yet.")
        layout.addWidget(self.count_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.metrics_label)
        self.reruns = RerunMapsBox(
            lambda: self.pair_provider() if self.pair_provider else None, manifests_provider
        )
        self.reruns.map_ready.connect(self.add_map)
        layout.addWidget(self.reruns)
        self.segmentation = SegConsistencyBox(
            lambda: self.pair_provider() if self.pair_provider else None, manifests_provider
        )
        # Two checks, a page each: the residual (image) check and the segmentation consistency.
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(residual_page, "Residual regions")
        self.tabs.addTab(self.segmentation, "Segmentation")
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.tabs)

    # ----- computing (delegated to app.analysis) ------------------------------------------
    def run_check(self) -> None:
        """Compute the check for the compared pair in the thread pool; the result arrives on the UI thread."""
        pair = self.pair_provider() if self.pair_provider else None
        if pair is None:
            self.note_label.setText("Open a compare (original and synthesized) first.")
            return
        if self._task is not None:
            return  # one check at a time
        self.run_button.setEnabled(False)
        self.count_label.setText("Computing residual regions and metrics ...")
        task = _CheckTask(pair)
        task.setAutoDelete(False)
        task.signals.finished.connect(self._on_finished)
        task.signals.failed.connect(self._on_failed)
        self._task = task
        QtCore.QThreadPool.globalInstance().start(task)

    def is_running(self) -> bool:
        return self._task is not None

    def _on_finished(self, result: CompareResult) -> None:
        self._task = None
        self.run_button.setEnabled(True)
        if not self._is_current_pair(result):
            self.count_label.setText("The compared pair changed during the check: run the check again.")
            return
        self.set_result(result)

    def _is_current_pair(self, result: CompareResult) -> bool:
        pair = self.pair_provider() if self.pair_provider else None
        return pair is not None and pair[0] is result.original and pair[1] is result.synthesized

    def clear_result(self, message: str = "No check run yet.") -> None:
        """Forget the shown check (regions, metrics, threshold, its maps): they belong to another pair."""
        self.result = None
        self.threshold_spin.setEnabled(False)
        self.note_label.setText("")
        self.metrics_label.setText("")
        self.table.setRowCount(0)
        self._fill_map_combo()
        self.count_label.setText(message)
        self.result_changed.emit(None)

    def _on_failed(self, message: str) -> None:
        self._task = None
        self.run_button.setEnabled(True)
        self.count_label.setText("No check run yet.")
        self.note_label.setText(f"Check failed: {message}")

    def set_result(self, result: CompareResult) -> None:
        """Show a computed check (maps offered, threshold, regions, notes, metrics)."""
        self.result = result
        self.threshold_spin.blockSignals(True)
        self.threshold_spin.setValue(result.settings.threshold)
        self.threshold_spin.blockSignals(False)
        self.threshold_spin.setEnabled(True)
        self._fill_map_combo()
        self.note_label.setText("\n".join(result.notes))
        self._fill_metrics()
        self._fill_regions()
        self.result_changed.emit(result)

    def _fill_map_combo(self, select: str | None = None) -> None:
        """List the offered maps; ``select`` one of them (which shows it) or keep the current one."""
        current = select or self.map_combo.currentText()
        self.map_combo.blockSignals(True)
        self.map_combo.clear()
        self.map_combo.addItem(MAP_NONE)
        for name in self.maps():
            self.map_combo.addItem(name)
        index = self.map_combo.findText(current)
        self.map_combo.setCurrentIndex(max(index, 0))
        self.map_combo.blockSignals(False)
        self.map_combo.setEnabled(self.map_combo.count() > 1)
        if select is not None and index >= 0:
            self._on_map_chosen(index)

    def add_map(self, map_volume: Volume) -> None:
        """A map computed by a generator rerun: offered from now on and shown at once."""
        pair = self.pair_provider() if self.pair_provider else None
        if pair is None:
            return
        if self._maps_for is not pair[1]:
            self.computed_maps = {}
            self._maps_for = pair[1]
        self.computed_maps[map_volume.name] = map_volume
        self._fill_map_combo(select=map_volume.name)
        if self.result is not None:
            self._fill_regions()  # the new map's mean inside each region joins the table

    def chosen_map(self) -> Volume | None:
        """The map the list says is shown (None: the difference only)."""
        return self.maps().get(self.map_combo.currentText())

    def agree_with_view(self, compared: Sequence[Volume]) -> None:
        """The list says what the compare shows: a chosen map that the compare no longer holds
        (other volumes were compared since) is unchosen, and the note says why."""
        chosen = self.chosen_map()
        if chosen is None or any(volume is chosen for volume in compared):
            return
        name = self.map_combo.currentText()
        self.map_combo.blockSignals(True)
        self.map_combo.setCurrentIndex(0)
        self.map_combo.blockSignals(False)
        self.say(f"The map '{name}' is no longer shown: other volumes were compared. Choose it again to show it.")

    def say(self, message: str) -> None:
        """A line under the check's own notes (what happened to the map shown); "": none."""
        notes = list(self.result.notes) if self.result is not None else []
        self.note_label.setText("\n".join([*notes, *([message] if message else [])]))

    def refresh_for_view(self) -> None:
        """The compare changed: forget maps of another synthesized volume, update the rerun buttons."""
        pair = self.pair_provider() if self.pair_provider else None
        if self.computed_maps and (pair is None or pair[1] is not self._maps_for):
            self.computed_maps = {}
            self._maps_for = None
            self._fill_map_combo()
            if self.result is not None:
                self._fill_regions()
        if self.result is not None and pair is not None and not self._is_current_pair(self.result):
            self.clear_result("The compared pair changed: run the check again.")
        self.reruns.refresh()
        self.segmentation.refresh()

    def maps(self) -> dict[str, Volume]:
        """The maps offered, by display name (no raw difference across modalities), reruns' included."""
        if self.result is None:
            return dict(self.computed_maps)
        result = self.result
        offered: dict[str, Volume] = {}
        if result.residual_source != NO_RESIDUAL:
            offered[f"Residual ({result.residual_source})"] = result.residual_map
        if result.input_difference.meaningful:
            offered["Absolute difference |synthesized - original|"] = result.input_difference.absolute
        if result.reference_difference is not None:
            offered["Absolute difference |synthesized - reference|"] = result.reference_difference.absolute
        for name, volume in result.extra_maps.items():
            offered[name[0].upper() + name[1:]] = volume
        offered.update(self.computed_maps)
        return offered

    def set_threshold(self, threshold: float) -> None:
        if self.result is None or threshold <= 0 or threshold == self.result.settings.threshold:
            return
        self.result = self.result.with_threshold(float(threshold))
        self._fill_regions()
        self.result_changed.emit(self.result)

    # ----- regions ------------------------------------------------------------------------
    def _region_map_columns(self) -> dict[str, Volume]:
        """Maps on the regions' grid (uncertainty, cycle residual, reruns): a column each in the table."""
        if self.result is None or self.result.label_map is None:
            return {}
        shape = self.result.label_map.shape
        columns = {name[0].upper() + name[1:]: m for name, m in self.result.extra_maps.items()}
        columns.update(self.computed_maps)
        return {name: m for name, m in columns.items() if m.voxels.shape == shape}

    def _fill_regions(self) -> None:
        regions = self.result.regions if self.result else []
        map_columns = self._region_map_columns()
        # Short headers, so that every column fits the dock (1600x950 with the docks open); the
        # full names are in the headers' tooltips, the centroid (a click goes there) and every
        # value whole in each row's tooltip. Map columns are headed by the map's short name
        # ("MC-dropout SD").
        headers = [
            ("±", "Sign: + the original is brighter (signal removed), - darker (signal added)"),
            ("|z|", "Peak |z| of the calibrated residual statistic"),
            ("mL", "Volume (mL)"),
            ("Peak", "Peak smoothed residual (original - synthesized)"),
            ("Mean", "Mean smoothed residual (original - synthesized)"),
            *((name.split(" (")[0], f"Mean of {name} inside the region") for name in map_columns),
            ("Kind", "What the region is"),
        ]
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels([header for header, _ in headers])
        for column, (_, tooltip) in enumerate(headers):
            self.table.horizontalHeaderItem(column).setToolTip(tooltip)
        rows, tooltips = [], []
        for region in regions:
            inside = self.result.region_mask(region)
            map_means = [float(np.nanmean(m.voxels[inside])) for m in map_columns.values()]
            peak_z = abs(region.peak_z) if region.peak_z is not None else float("nan")
            rows.append(
                (
                    region.sign,
                    peak_z,
                    region.volume_ml,
                    region.peak_residual,
                    region.mean_residual,
                    *map_means,
                    region.description,
                )
            )
            tooltips.append(
                "\n".join(
                    [
                        f"{region.sign} {region.description}",
                        f"centroid LPS {centroid_text(region.centroid_lps_mm)} mm",
                        f"peak |z| {'—' if np.isnan(peak_z) else f'{peak_z:.4g}'}, {region.volume_ml:.4g} mL",
                        f"residual peak {region.peak_residual:.4g}, mean {region.mean_residual:.4g}",
                        *(f"{name}: {mean:.4g}" for name, mean in zip(map_columns, map_means, strict=True)),
                    ]
                )
            )
        fill_rows(self.table, rows, tooltips)
        threshold = self.result.settings.threshold if self.result else 0
        statistic = "|z|" if self.result and self.result.settings.statistic == "z" else "|residual|"
        self.count_label.setText(
            f"{len(regions)} region(s), {statistic} above {threshold:.4g} — click one to go there"
        )

    def region_at_row(self, row: int):
        """The region shown in table ``row`` (after any sorting), or None."""
        if self.result is None:
            return None
        index = region_index_at(self.table, row, len(self.result.regions))
        return None if index is None else self.result.regions[index]

    def activate_region(self, row: int) -> None:
        region = self.region_at_row(row)
        if region is None:
            return
        self.table.selectRow(row)
        self.region_selected.emit(region)
        self.region_activated.emit(np.asarray(region.centroid_lps_mm, dtype=float))

    def _fill_metrics(self) -> None:
        lines = []
        for name, metrics in self.result.metrics.items():
            # SSIM's 7-voxel window does not fit a volume thinner than that: say so, not "nan".
            ssim = (
                "n/a (fewer than 7 voxels along an axis)" if np.isnan(metrics.ssim) else f"{metrics.ssim:.4f}"
            )
            lines.append(
                f"<b>{name.replace('_', ' ')}</b>: MAE {metrics.mae:.4g}, PSNR {metrics.psnr_db:.2f} dB, "
                f"SSIM {ssim}, NCC {metrics.ncc:.4f} (data range {metrics.data_range:.4g})"
            )
        self.metrics_label.setText("<br>".join(lines))

    def _on_map_chosen(self, index: int) -> None:
        name = self.map_combo.itemText(index)
        self.map_selected.emit(self.maps().get(name))


def install_hallucination_panel(window) -> HallucinationPanel:
    """Dock the panel in the main window: regions move the shared cursor, maps join the compare."""

    def pair() -> tuple[Volume, Volume] | None:
        return window.session.pair

    def manifests() -> list:
        plugin_panel = window.dock_widget("GAN plugins")
        return list(getattr(plugin_panel, "manifests", []))

    panel = HallucinationPanel(pair_provider=pair, manifests_provider=manifests)

    def go_to(lps_mm: np.ndarray) -> None:
        if window.state is not None:
            window.state.set_cursor(lps_mm)

    put_aside: list[Volume] = []  # compared volumes a map took the place of, back without it
    put_aside_for: list[tuple[Volume, Volume]] = []  # the pair they were compared with

    def show_map(map_volume: Volume | None) -> None:
        """Show the chosen map as one more column, beside the volumes compared already (as
        many as a row holds: the map takes the last ones' places, and the note says so); no map:
        the volumes it took the place of come back. Before, the compare was rebuilt with the
        pair and the map only, silently dropping the other volumes of a four-volume compare."""
        shown = pair()
        if shown is None and panel.result is not None:
            shown = panel.result.original, panel.result.synthesized
        if shown is None:
            return
        original, synthesized = shown
        offered = list(panel.maps().values())
        same_pair = bool(put_aside_for) and put_aside_for[0][0] is original and put_aside_for[0][1] is synthesized
        others = [
            volume
            for volume in (*window.session.compare[1:], *(put_aside if same_pair else []))
            if volume is not synthesized and not any(volume is known for known in offered)
        ]
        put_aside.clear()
        put_aside_for[:] = [(original, synthesized)]
        if map_volume is not None:
            room = MAX_VOLUMES_PER_ROW - 3  # the original, the synthesized volume and the map
            others, aside = others[:room], others[room:]
            put_aside.extend(aside)
        # The compare is rebuilt with a new viewer state: keep the reader where they were (a region).
        cursor = window.state.cursor_lps_mm.copy() if window.state is not None else None
        window.show_compare(original, [synthesized, *others, *([map_volume] if map_volume is not None else [])])
        if cursor is not None:
            window.state.set_cursor(cursor)
        names = ", ".join(f"'{volume.name}'" for volume in put_aside)
        panel.say(
            f"A compare row holds {MAX_VOLUMES_PER_ROW} volumes: the map takes the place of {names}"
            " (back with '(difference only)')."
            if put_aside
            else ""
        )

    def apply_flag_level(*_args) -> None:
        view, result = window.view, panel.result
        if result is not None and hasattr(view, "set_flag_level") and view.original is result.original:
            view.set_flag_level(result.flag_level)

    def outline_mask(mask: Volume) -> None:
        for view_panel in window.panels:
            if hasattr(view_panel, "set_outline"):
                view_panel.set_outline(mask)

    def outline(region) -> None:
        result = panel.result
        if result is None or window.view is None:
            return
        mask = result.region_mask(region).astype(np.float32)
        outline_mask(Volume(mask, result.residual_map.geometry, name=f"region {region.label}"))

    panel.region_selected.connect(outline)
    panel.region_activated.connect(go_to)
    segmentation = panel.segmentation
    segmentation.overlays_ready.connect(window.session.set_segmentation)
    segmentation.display_changed.connect(
        lambda shown, opacity: window.session.set_label_display(shown=shown, opacity=opacity)
    )
    segmentation.region_selected.connect(outline_mask)
    segmentation.region_activated.connect(go_to)
    panel.result_changed.connect(apply_flag_level)
    window.view_changed.connect(apply_flag_level)
    panel.map_selected.connect(show_map)
    window.view_changed.connect(panel.refresh_for_view)
    window.view_changed.connect(lambda: panel.agree_with_view(window.session.compare))
    plugins_changed = getattr(window.dock_widget("GAN plugins"), "plugins_changed", None)
    if plugins_changed is not None:  # its discovery answers in the background: list them then
        plugins_changed.connect(panel.segmentation.refresh)
    panel.refresh_for_view()  # built when first shown: the compare may be open already
    window.add_dock(panel, "Hallucination check")
    return panel

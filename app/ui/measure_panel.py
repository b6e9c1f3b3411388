"""The Measurements dock: the selected annotation measured on every compare panel.

A selected ruler: its line profile on each volume (original / synthesized / difference ...),
one curve per volume over one distance axis in mm. A selected ROI: a table of mean, noise SD,
voxel count, CNR and contrast-to-background against a chosen background ROI, per volume, and
the radially averaged noise power spectrum of each volume. The computations are
app.annotations' (Qt-free); this widget only shows them and follows the Annotations dock's
controller (its document, selection and volumes).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from app.annotations.line_profile import compare_line_profile
from app.annotations.measurements import is_background
from app.annotations.nps import nps_2d
from app.annotations.roi_contrast import cnr, noise_sd
from app.annotations.shapes import PlanarRegion, Ruler
from app.ui.dock_table import set_column_names, share_dock_width

# (row name, what it is): short names, so that a four-volume compare's columns keep room for
# their figures in the dock ('Contrast to background' took half its width at 1600x950).
ROWS = (
    ("Mean", "Mean inside the ROI"),
    ("Noise SD", "Noise SD inside the ROI"),
    ("Voxels", "Voxels inside the ROI"),
    ("CNR", "Contrast-to-noise ratio against the background ROI"),
    ("Contrast", "Contrast to background (against the background ROI)"),
    ("NPS peak", "Frequency of the noise power spectrum's peak (cycles/mm)"),
)
NO_BACKGROUND = "(no background ROI)"


def _number(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if np.isfinite(value) else "—"


class MeasurePanel(QtWidgets.QWidget):
    """Profile / NPS plot and ROI figures for the annotation selected in ``controller``."""

    def __init__(self, controller, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.title = QtWidgets.QLabel("Select a ruler (line profile) or an ROI (noise, CNR, NPS)")
        self.title.setWordWrap(True)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setObjectName("measure_plot")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.legend = self.plot.addLegend(offset=(-10, 10))
        for side in ("bottom", "left"):  # cycles/mm and mm as written, not rescaled "(x0.001)"
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        self.background_combo = QtWidgets.QComboBox()
        self.background_combo.setToolTip("The ROI CNR and contrast-to-background are measured against")
        self.background_combo.currentIndexChanged.connect(lambda _index: self._show_region_figures())
        self.table = QtWidgets.QTableWidget(len(ROWS), 0)
        self.table.setVerticalHeaderLabels([name for name, _ in ROWS])
        for row, (_, meaning) in enumerate(ROWS):
            self.table.verticalHeaderItem(row).setToolTip(meaning)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        share_dock_width(self.table)  # every volume's column in view, no sideways scrolling
        self.curves: dict[str, pg.PlotDataItem] = {}  # volume name -> the curve shown
        self.nps_peaks: dict[str, float] = {}  # volume name -> NPS peak of the selected ROI
        background_row = QtWidgets.QFormLayout()
        background_row.addRow("Background", self.background_combo)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.plot, 3)
        layout.addLayout(background_row)
        layout.addWidget(self.table, 2)
        controller.changed.connect(self.refresh)
        controller.selection_changed.connect(self.refresh)
        self.refresh()

    def selected(self):
        selected_id = self.controller.selected_id
        if selected_id is None or selected_id not in self.controller.document.ids():
            return None
        return self.controller.document.get(selected_id)

    def _scalar_volumes(self) -> dict:
        return {name: volume for name, volume in self.controller.volumes.items() if not volume.is_colour}

    def refresh(self) -> None:
        annotation = self.selected()
        self._fill_background_choices(annotation)
        self._clear_plot()
        if isinstance(annotation, Ruler):
            self._show_profile(annotation)
        elif isinstance(annotation, PlanarRegion):
            self._show_nps(annotation)
        else:
            self.title.setText("Select a ruler (line profile) or an ROI (noise, CNR, NPS)")
        self._show_region_figures()

    # ----- plot --------------------------------------------------------------------------------
    def _clear_plot(self) -> None:
        self.plot.clear()
        self.legend.clear()
        self.curves = {}
        self.nps_peaks = {}

    def _add_curve(self, index: int, name: str, x: np.ndarray, y: np.ndarray) -> None:
        pen = pg.mkPen(pg.intColor(index, hues=max(len(self.controller.volumes), 3)), width=2)
        self.curves[name] = self.plot.plot(x, y, pen=pen, name=name, connect="finite")

    def _show_profile(self, ruler: Ruler) -> None:
        label = repr(ruler.label) if ruler.label else "(ruler)"
        try:
            profiles = compare_line_profile(self._scalar_volumes(), ruler.start_lps, ruler.end_lps)
        except ValueError as error:
            self.title.setText(f"Line profile of {label}: {error}")
            return
        units = next((p.units for p in profiles.values() if p.units), "")
        self.title.setText(f"Line profile of {label}, {ruler.length_mm:.1f} mm, on every panel")
        self.plot.setLabel("bottom", "distance from the start (mm)")
        self.plot.setLabel("left", f"value ({units})" if units else "value")
        for index, (name, profile) in enumerate(profiles.items()):
            self._add_curve(index, name, profile.distance_mm, profile.values)

    def _show_nps(self, region: PlanarRegion) -> None:
        label = repr(region.label) if region.label else f"({region.kind})"
        reasons: dict[str, list[str]] = {}  # why not measured -> on which panels
        units = ""
        volumes = self._scalar_volumes()
        for index, (name, volume) in enumerate(volumes.items()):
            try:
                spectrum = nps_2d(volume, region)
            except ValueError as error:
                reasons.setdefault(str(error), []).append(name)
                continue
            units = units or spectrum.units
            self.nps_peaks[name] = spectrum.peak_frequency_per_mm
            self._add_curve(index, name, spectrum.radial_frequency_per_mm, spectrum.radial_nps)
        self.plot.setLabel("bottom", "spatial frequency (cycles/mm)")
        self.plot.setLabel("left", f"NPS ({units}² mm²)" if units else "NPS (value² mm²)")
        text = f"Noise power spectrum of ROI {label} on every panel"
        # One reason is said once, not once per panel (a four-volume compare repeated 'the noise
        # power spectrum needs an ROI of at least 8 x 8 voxels' five times, ten lines of the dock).
        if list(reasons.values()) == [list(volumes)]:
            text += f" — not measured on any panel: {next(iter(reasons))}"
        elif reasons:
            text += " — not measured on " + "; ".join(f"{', '.join(names)}: {why}" for why, names in reasons.items())
        self.title.setText(text)

    # ----- ROI figures ---------------------------------------------------------------------------
    def _fill_background_choices(self, annotation) -> None:
        regions = [
            item
            for item in self.controller.document
            if isinstance(item, PlanarRegion) and (annotation is None or item.annotation_id != annotation.annotation_id)
        ]
        current = self.background_combo.currentData()
        self.background_combo.blockSignals(True)
        self.background_combo.clear()
        self.background_combo.addItem(NO_BACKGROUND, None)
        for region in regions:
            self.background_combo.addItem(region.label or f"({region.kind})", region.annotation_id)
        ids = [region.annotation_id for region in regions]
        if current in ids:
            chosen = current
        else:
            chosen = next((region.annotation_id for region in regions if is_background(region)), None)
        self.background_combo.setCurrentIndex(self.background_combo.findData(chosen) if chosen else 0)
        self.background_combo.setEnabled(isinstance(annotation, PlanarRegion))
        self.background_combo.blockSignals(False)

    def _show_region_figures(self) -> None:
        annotation = self.selected()
        volumes = self._scalar_volumes() if isinstance(annotation, PlanarRegion) else {}
        names = list(volumes)
        set_column_names(self.table, names)
        background_id = self.background_combo.currentData()
        background = (
            self.controller.document.get(background_id)
            if background_id and background_id in self.controller.document.ids()
            else None
        )
        for column, (name, volume) in enumerate(volumes.items()):
            noise = noise_sd(volume, annotation)
            units = f" {noise.units}" if noise.units else ""
            cells = [_number(noise.mean) + units, _number(noise.sd) + units, str(noise.voxel_count), "—", "—"]
            if background is not None:
                contrast = cnr(volume, annotation, background)
                cells[3] = _number(contrast.cnr)
                cells[4] = _number(contrast.contrast_to_background)
            cells.append(_number(self.nps_peaks.get(name, float("nan")), 3))
            for row, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(f"{ROWS[row][1]}, {name}: {text}")  # whole where the column is narrow
                item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)


def install_measure_panel(window) -> MeasurePanel:
    """Dock the Measurements panel beside the Annotations dock, on the same controller."""
    annotations = window.dock_widget("Annotations")
    if annotations is None or not hasattr(annotations, "controller"):
        raise RuntimeError("the Measurements dock needs the Annotations dock, which did not start")
    panel = MeasurePanel(annotations.controller)
    window.add_dock(panel, "Measurements")
    return panel

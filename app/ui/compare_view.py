"""Compare layout: original | other volume(s) | difference, for one plane or all three.

Every panel follows the one ViewerState (cursor in LPS mm), panels of one plane share zoom and
pan, original and same-modality volumes share window/level, and the difference panel has its
own diverging map with a symmetric range and a colour bar. The alternative modes (overlay,
checkerboard, flicker) pair the original panels with the first other volume, resampled onto
the original grid through world coordinates.

After a segmentation consistency check (``SegmentationOverlays``), the original and the first
other volume carry their label maps as overlays and a disagreement column follows the
difference: the original image with the voxels whose labels differ drawn over it.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from app.core.compare_pair import SIGN_CONVENTION, difference
from app.core.display import WindowLevel, default_window, percentile_window
from app.core.label_map import label_names
from app.core.label_overlays import DISAGREEMENT_OPACITY, SegmentationOverlays, label_colour_table
from app.core.planes import Plane
from app.core.resample import lazy_resample_like
from app.core.viewer_state import ViewerState
from app.core.volume import Volume
from app.ui.color_bar import ColorBar
from app.ui.colormaps import DEFAULT_DIVERGING, DIVERGING_NAMES
from app.ui.layouts import MAX_VOLUMES_PER_ROW, compare_cells
from app.ui.panel_grid import PanelGrid
from app.ui.slice_view import COMPARE_MODES, CompareMode, LabelLayer, PanelContent


def _signed(volume: Volume) -> bool:
    """A map with values of both signs (a residual or z map), from a sample of its slices."""
    sample = np.asarray(volume.voxels[:: max(1, volume.shape_kji[0] // 16)], np.float32)
    finite = sample[np.isfinite(sample)]
    return bool(finite.size) and float(finite.min()) < 0 < float(finite.max())


class CompareView(QtWidgets.QWidget):
    def __init__(
        self,
        state: ViewerState,
        original: Volume,
        others: list[Volume],
        planes: list[Plane],
        parent=None,
        segmentation: SegmentationOverlays | None = None,
    ) -> None:
        super().__init__(parent)
        if not others:
            raise ValueError("compare needs at least one volume besides the original")
        if 1 + len(others) > MAX_VOLUMES_PER_ROW:
            raise ValueError(f"a row holds at most {MAX_VOLUMES_PER_ROW} volumes, got {1 + len(others)}")
        self.state = state
        self.original = original
        self.others = others
        self.difference = difference(original, others[0])
        self._partner_on_grid: Volume | None = None

        self.original_content = PanelContent(original, title=f"original: {original.name}")
        columns = [self.original_content]
        columns += [self._column_of(other) for other in others]
        span = self.difference.symmetric_range
        self.difference_content = PanelContent(
            self.difference.volume,
            fixed_window=WindowLevel(0.0, 2 * span),
            colormap=DEFAULT_DIVERGING,
            # The columns beside it name both volumes: with one other volume the sign convention
            # says it all (the names made it 'difference original - synthesized: T1 MN...' at
            # 1600x950); with several, which one it is taken from.
            title=f"difference {SIGN_CONVENTION}"
            if len(others) == 1
            else f"difference original - {others[0].name or 'first'}",
        )
        columns.append(self.difference_content)
        if segmentation is not None and not segmentation.belongs_to(original, others[0]):
            segmentation = None
        self.segmentation = segmentation
        self._label_colours: dict[int, np.ndarray] = {}  # id(label map) -> RGBA per value
        self.disagreement_content: PanelContent | None = None
        if segmentation is not None:
            regions = len(segmentation.disagreement.label_map.labels) - 1  # "labels agree" is not one
            self.disagreement_content = PanelContent(
                original,
                title=f"labels differ ({regions} region(s)): original",
            )
            columns.append(self.disagreement_content)
        self.flag_level: float | None = None

        self.mode_combo = QtWidgets.QComboBox()
        self.mode_combo.addItems(COMPARE_MODES)
        self.mode_combo.currentTextChanged.connect(self.set_mode)
        self.opacity_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(50)
        self.opacity_slider.setEnabled(False)
        self.opacity_slider.valueChanged.connect(self._on_opacity)
        toolbar = QtWidgets.QHBoxLayout()
        toolbar.addWidget(QtWidgets.QLabel("Compare mode"))
        toolbar.addWidget(self.mode_combo)
        toolbar.addWidget(QtWidgets.QLabel("Overlay opacity"))
        toolbar.addWidget(self.opacity_slider)
        self.planes = list(planes)
        self.plane_combo = QtWidgets.QComboBox()
        self.plane_combo.addItems(["all planes"] + [plane.value for plane in self.planes])
        self.plane_combo.currentTextChanged.connect(self.show_planes)
        toolbar.addWidget(QtWidgets.QLabel("Rows"))
        toolbar.addWidget(self.plane_combo)
        self.difference_map_combo = QtWidgets.QComboBox()
        self.difference_map_combo.addItems(
            ["dark centre" if name == DEFAULT_DIVERGING else "white centre" for name in DIVERGING_NAMES]
        )
        self.difference_map_combo.setToolTip("Colours of the difference panel (zero in the middle)")
        self.difference_map_combo.currentIndexChanged.connect(
            lambda index: self.set_difference_colormap(DIVERGING_NAMES[index])
        )
        toolbar.addWidget(QtWidgets.QLabel("Difference"))
        toolbar.addWidget(self.difference_map_combo)
        toolbar.addStretch(1)
        self.sign_label = QtWidgets.QLabel(
            f"Difference = {SIGN_CONVENTION}: + (red/yellow) the synthesized image is darker, signal"
            " removed; - (blue/cyan) brighter, signal added"
        )
        self.sign_label.setWordWrap(True)

        self.grid = PanelGrid(state, compare_cells(columns, planes))
        self.color_bar = ColorBar(
            DEFAULT_DIVERGING, -span, span, original.units or "image units", title=SIGN_CONVENTION
        )
        body = QtWidgets.QHBoxLayout()
        body.addWidget(self.grid, 1)
        body.addWidget(self.color_bar)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(toolbar)
        outer.addWidget(self.sign_label)
        outer.addLayout(body, 1)
        if segmentation is not None:
            self.set_label_display(segmentation)

    def set_difference_colormap(self, name: str) -> None:
        """Dark- or white-centred diverging colours for the difference panel and its bar."""
        self.difference_content.colormap = name
        self.color_bar.colormap = name
        self.color_bar.update()
        self.difference_content.window_changed.emit()

    def set_flag_level(self, level: float | None) -> None:
        """Tie the difference window to the hallucination check: +-2 x the change it flags (so the
        flag level sits half way to full colour), ticks on the bar at +-level; None: back to
        the data's own symmetric range."""
        span = 2.0 * level if level and level > 0 else self.difference.symmetric_range
        self.flag_level = level if level and level > 0 else None
        self.difference_content.fixed_window = WindowLevel(0.0, 2 * span)
        self.color_bar.set_range(-span, span, self.flag_level)
        self.difference_content.window_changed.emit()

    def set_label_display(self, overlays: SegmentationOverlays) -> None:
        """Draw the label maps over the original and first other panels (shown / opacity as
        ``overlays`` says) and the disagreement over its column."""
        if self.segmentation is None or not overlays.belongs_to(self.original, self.others[0]):
            return
        self.segmentation = overlays

        def layer(labels: Volume, opacity: float, shown: bool, note: bool = True) -> LabelLayer:
            if id(labels) not in self._label_colours:  # one table per label map, not per opacity step
                self._label_colours[id(labels)] = label_colour_table(labels)
            provenance = labels.label_map
            return LabelLayer(
                labels,
                self._label_colours[id(labels)],
                opacity,
                shown,
                f"labels: {provenance.plugin_name} (derived)" if note else "",
                label_names(provenance.labels),
            )

        original_layer = layer(overlays.original_labels, overlays.opacity, overlays.shown)
        synthesized_layer = layer(overlays.synthesized_labels, overlays.opacity, overlays.shown)
        # The column's title says what it shows.
        disagreement_layer = layer(overlays.disagreement, DISAGREEMENT_OPACITY, True, note=False)
        for panel in self.grid.panels:
            if panel.content is self.original_content:
                panel.set_label_layer(original_layer)
            elif panel.content is self.disagreement_content:
                panel.set_label_layer(disagreement_layer)
            elif panel.content.volume is self.others[0]:
                panel.set_label_layer(synthesized_layer)

    def _column_of(self, other: Volume) -> PanelContent:
        """How a further volume is drawn: with the original's window, or its own when it is
        another modality (MR vs CT) or a map (hallucination, uncertainty: ``Volume.quantity_map``)."""
        if other.is_map:
            if _signed(other):  # residual, z: both signs matter, zero in the middle
                sample = np.asarray(other.voxels[:: max(1, other.shape_kji[0] // 16)], np.float32)
                finite = np.abs(sample[np.isfinite(sample)])
                span = float(np.percentile(finite, 99.5)) if finite.size else 1.0
                return PanelContent(
                    other,
                    fixed_window=WindowLevel(0.0, 2 * (span or 1.0)),
                    colormap=DEFAULT_DIVERGING,
                    title=f"map ({SIGN_CONVENTION}): {other.name}",
                    window_adjustable=True,
                )
            return PanelContent(
                other,
                fixed_window=percentile_window(other.voxels, 1.0, 99.5),
                colormap="hot",
                title=f"map: {other.name}",
                window_adjustable=True,
            )
        # An unknown modality ("", e.g. NIfTI) is taken to be the original's.
        original = self.original
        other_modality = other.modality and original.modality and other.modality != original.modality
        own_window = default_window(other.voxels, other.modality) if other_modality else None
        kind = "synthesized" if other.is_synthetic else "acquired"
        return PanelContent(
            other,
            fixed_window=own_window,
            title=f"{kind}: {other.name}",
            window_adjustable=own_window is not None,
        )

    @property
    def panels(self):
        return self.grid.panels

    def original_panels(self):
        return [panel for panel in self.grid.panels if panel.content is self.original_content]

    def show_planes(self, choice: str) -> None:
        """'all planes' (3x3) or one plane's row (1x3); hidden rows stay linked and up to date."""
        self.grid.show_only(
            {plane for plane in self.planes if choice == "all planes" or plane.value == choice}
        )
        if self.plane_combo.currentText() != choice:
            self.plane_combo.setCurrentText(choice)

    def set_mode(self, mode: CompareMode | str) -> None:
        """Side by side, or the original panels showing the first other volume over/with it
        (``mode``: a CompareMode, or its menu text)."""
        mode = CompareMode(mode)
        if mode != self.mode_combo.currentText():
            self.mode_combo.setCurrentText(mode)  # re-enters through the signal
            return
        partner = None
        if mode != CompareMode.SIDE_BY_SIDE:
            if self._partner_on_grid is None:
                self._partner_on_grid = lazy_resample_like(self.others[0], self.original)
            partner = self._partner_on_grid
        for panel in self.original_panels():
            panel.set_partner(partner, mode)
            panel.set_overlay_opacity(self.opacity_slider.value() / 100)
        self.opacity_slider.setEnabled(mode == CompareMode.OVERLAY)

    def toggle_flicker(self) -> None:
        if self.mode_combo.currentText() != CompareMode.FLICKER:
            self.set_mode(CompareMode.FLICKER)
        for panel in self.original_panels():
            panel.toggle_flicker()

    def _on_opacity(self, value: int) -> None:
        for panel in self.original_panels():
            panel.set_overlay_opacity(value / 100)

    def reset_zoom(self) -> None:
        self.grid.reset_zoom()

    def detach(self) -> None:
        self.grid.detach()

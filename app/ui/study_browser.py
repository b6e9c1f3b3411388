"""Study browser: patients / studies / series opened in this session, with a thumbnail each.

Double-click a series to show it; select two to four and press "Compare" to compare them
(the first selected is the original / reference).
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.core.display import apply_window, default_window
from app.core.planes import Plane, extract_slice, slice_position_mm
from app.core.volume import Volume

THUMBNAIL_PIXELS = 64


def thumbnail(volume: Volume) -> QtGui.QPixmap:
    """The middle axial slice, windowed, scaled to fit ``THUMBNAIL_PIXELS`` with its aspect."""
    low, high = volume.bounds_lps_mm()
    cut = extract_slice(volume, Plane.AXIAL, slice_position_mm(Plane.AXIAL, (low + high) / 2))
    grey = np.ascontiguousarray(
        apply_window(np.nan_to_num(cut.pixels), default_window(volume.voxels, volume.modality))
    )
    rows, cols = grey.shape
    image = QtGui.QImage(grey.data, cols, rows, cols, QtGui.QImage.Format.Format_Grayscale8).copy()
    # Physical aspect: pixel spacing may differ along rows and columns.
    width_mm, height_mm = cols * cut.du_mm, rows * cut.dv_mm
    scale = THUMBNAIL_PIXELS / max(width_mm, height_mm)
    return QtGui.QPixmap.fromImage(image).scaled(
        max(1, int(width_mm * scale)),
        max(1, int(height_mm * scale)),
        QtCore.Qt.AspectRatioMode.IgnoreAspectRatio,
        QtCore.Qt.TransformationMode.SmoothTransformation,
    )


def _meta(volume: Volume, *keys: str, default: str = "") -> str:
    for key in keys:
        value = volume.metadata.get(key)
        if value:
            return str(value)
    return default


class StudyBrowser(QtWidgets.QWidget):
    open_requested = QtCore.Signal(object)  # Volume
    compare_requested = QtCore.Signal(list)  # [Volume, ...]

    COLUMNS = ("Series", "Modality", "Size", "Spacing (mm)")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setHeaderLabels(list(self.COLUMNS))
        self.tree.setIconSize(QtCore.QSize(THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
        self.tree.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setColumnWidth(0, 200)
        self.tree.itemDoubleClicked.connect(self._on_double_click)
        self.compare_button = QtWidgets.QPushButton("Compare selected")
        self.compare_button.clicked.connect(self._on_compare)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tree)
        layout.addWidget(self.compare_button)
        self._volumes: dict[int, Volume] = {}

    def add_volume(self, volume: Volume) -> QtWidgets.QTreeWidgetItem:
        patient = self._child(
            self.tree.invisibleRootItem(),
            _meta(volume, "PatientName", "patient_name", default="(no patient)"),
        )
        study = self._child(
            patient,
            _meta(volume, "StudyDescription", "study_description", "StudyInstanceUID", default="(study)"),
        )
        ni, nj, nk = volume.size_ijk
        spacing = " x ".join(f"{s:.3g}" for s in volume.geometry.spacing_mm)
        name = volume.name or _meta(volume, "SeriesDescription", "source_path", default="volume")
        if volume.is_synthetic:
            name = f"{name}  [{volume.provenance.label()}]"
        item = QtWidgets.QTreeWidgetItem([name, volume.modality or "—", f"{ni} x {nj} x {nk}", spacing])
        item.setIcon(0, QtGui.QIcon(thumbnail(volume)))
        item.setToolTip(
            0,
            f"{name}\n{volume.modality or 'unknown modality'}, {ni} x {nj} x {nk} voxels, "
            f"spacing {spacing} mm, {volume.geometry.orientation_code()}",
        )
        item.setData(0, QtCore.Qt.ItemDataRole.UserRole, id(volume))
        self._volumes[id(volume)] = volume
        study.addChild(item)
        self.tree.expandAll()
        return item

    def volumes(self) -> list[Volume]:
        return list(self._volumes.values())

    def _child(self, parent: QtWidgets.QTreeWidgetItem, text: str) -> QtWidgets.QTreeWidgetItem:
        for index in range(parent.childCount()):
            if parent.child(index).text(0) == text:
                return parent.child(index)
        item = QtWidgets.QTreeWidgetItem([text])
        parent.addChild(item)
        return item

    def _volume_of(self, item: QtWidgets.QTreeWidgetItem) -> Volume | None:
        return self._volumes.get(item.data(0, QtCore.Qt.ItemDataRole.UserRole))

    def _on_double_click(self, item: QtWidgets.QTreeWidgetItem, column: int) -> None:
        volume = self._volume_of(item)
        if volume is not None:
            self.open_requested.emit(volume)

    def _on_compare(self) -> None:
        chosen = [v for v in (self._volume_of(i) for i in self.tree.selectedItems()) if v is not None]
        if len(chosen) >= 2:
            self.compare_requested.emit(chosen[:4])

"""Study browser: patients / studies / series opened in this session, with a thumbnail each.

Double-click a series to show it; select two to four and press "Compare" to compare them
(the first selected is the original / reference).
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.core.display import apply_window, default_window
from app.core.planes import PLANE_AXES, Plane, extract_slice, slice_position_mm
from app.core.viewer_state import initial_invert
from app.core.volume import Volume

THUMBNAIL_PIXELS = 64


def acquisition_plane(volume: Volume) -> Plane:
    """The display plane closest to the slices as acquired (normal along the k axis)."""
    k_axis = volume.geometry.direction[:, 2]
    return max(Plane, key=lambda plane: abs(float(PLANE_AXES[plane].normal_lps @ k_axis)))


def thumbnail(volume: Volume) -> QtGui.QPixmap:
    """The middle slice in the acquisition plane, windowed, scaled to ``THUMBNAIL_PIXELS``."""
    low, high = volume.bounds_lps_mm()
    plane = acquisition_plane(volume)
    cut = extract_slice(volume, plane, slice_position_mm(plane, (low + high) / 2))
    if cut.pixels.ndim == 3:  # colour: as it is
        rgb = np.ascontiguousarray(cut.pixels)
        rows, cols = rgb.shape[:2]
        image = QtGui.QImage(rgb.data, cols, rows, 3 * cols, QtGui.QImage.Format.Format_RGB888).copy()
    else:
        grey = np.ascontiguousarray(
            apply_window(
                np.nan_to_num(cut.pixels),
                default_window(cut.pixels, volume.modality),  # the slice's: the volume's costs 30 ms
                initial_invert(volume),
            )
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


def _attr(item: object, *names: str, default=""):
    """The first attribute of ``item`` that is set, among ``names`` (scan results vary in naming)."""
    for name in names:
        value = getattr(item, name, None)
        if value not in (None, "", ()):
            return value
    return default


class StudyBrowser(QtWidgets.QWidget):
    open_requested = QtCore.Signal(object)  # Volume
    load_requested = QtCore.Signal(str, str)  # path, series UID (a scanned series not loaded yet)
    compare_requested = QtCore.Signal(list)  # [Volume, ...]

    COLUMNS = ("Series", "Modality", "Size", "Spacing (mm)")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setHeaderLabels(list(self.COLUMNS))
        self.tree.setIconSize(QtCore.QSize(THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
        self.tree.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.setColumnWidth(0, 220)
        self.tree.setIndentation(12)  # three levels deep: room for the series name, not for indents
        header = self.tree.header()
        for column in range(1, len(self.COLUMNS)):
            header.setSectionResizeMode(column, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
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
            _meta(volume, "PatientName", default="(no patient)"),
        )
        study = self._child(
            patient,
            _meta(volume, "StudyDescription", "StudyInstanceUID", default="(study)"),
        )
        item = QtWidgets.QTreeWidgetItem(
            [volume.name or _meta(volume, "SeriesDescription", default="volume")]
        )
        self._fill_item(item, volume)
        study.addChild(item)
        self.tree.expandAll()
        return item

    def _fill_item(self, item: QtWidgets.QTreeWidgetItem, volume: Volume) -> None:
        ni, nj, nk = volume.size_ijk
        spacing = " x ".join(f"{s:.3g}" for s in volume.geometry.spacing_mm)
        name = item.text(0)
        if volume.is_synthetic and "SYNTHETIC" not in name:
            # First, in red: a truncated row must still say it is synthetic.
            name = f"{volume.provenance.label()} · {name}"
            item.setText(0, name)
            item.setForeground(0, QtGui.QBrush(QtGui.QColor("#ff4d5e")))
        item.setText(1, volume.modality or "—")
        item.setText(2, f"{ni} x {nj} x {nk}")
        item.setText(3, spacing)
        item.setIcon(0, QtGui.QIcon(thumbnail(volume)))
        item.setToolTip(
            0,
            f"{name}\n{volume.modality or 'unknown modality'}, {ni} x {nj} x {nk} voxels, "
            f"spacing {spacing} mm, {volume.geometry.orientation_code()}",
        )
        item.setData(0, QtCore.Qt.ItemDataRole.UserRole, id(volume))
        self._volumes[id(volume)] = volume

    def add_scanned(self, path: str, studies: list) -> list[str]:
        """List the series a folder scan found (loaded on double-click); returns their UIDs,
        the series with the most frames first (the one to show)."""
        uids = []
        for study in studies:
            patient = self._child(
                self.tree.invisibleRootItem(),
                str(_attr(study, "patient_name", "patient", default="(no patient)")),
            )
            study_item = self._child(
                patient,
                str(_attr(study, "description", "study_description", "uid", "study_uid", default="(study)")),
            )
            for series in _attr(study, "series", default=[]):
                uid = str(_attr(series, "uid", "series_uid", "series_instance_uid"))
                shape = _attr(series, "size_ijk", "shape", "size", default=())
                spacing = _attr(series, "spacing_mm", "spacing", default=())
                item = QtWidgets.QTreeWidgetItem(
                    [
                        str(_attr(series, "description", "series_description", default=uid)),
                        str(_attr(series, "modality", default="—")),
                        " x ".join(str(n) for n in shape),
                        " x ".join(f"{float(v):.3g}" for v in spacing),
                    ]
                )
                item.setToolTip(0, f"{uid}\nnot loaded yet: double-click to open")
                item.setData(0, QtCore.Qt.ItemDataRole.UserRole + 1, (path, uid))
                study_item.addChild(item)
                uids.append((len(_attr(series, "frames", default=[])), uid))
        self.tree.expandAll()
        largest_first = sorted(uids, key=lambda pair: -pair[0])  # stable: scan order among equals
        return [uid for _, uid in largest_first]

    def attach_volume(self, path: str, series_uid: str, volume: Volume) -> bool:
        """Mark a scanned series as loaded: its row gets the volume and a thumbnail."""
        item = self._scanned_item(path, series_uid)
        if item is None:
            return False
        self._fill_item(item, volume)
        return True

    def set_preview(self, path: str, series_uid: str, preview: Volume) -> bool:
        """Thumbnail of a scanned series not loaded yet (from a one-frame preview)."""
        item = self._scanned_item(path, series_uid)
        if item is None or item.data(0, QtCore.Qt.ItemDataRole.UserRole) is not None:
            return False  # unknown, or already loaded (it has its real thumbnail)
        item.setIcon(0, QtGui.QIcon(thumbnail(preview)))
        return True

    def _scanned_item(self, path: str, series_uid: str) -> QtWidgets.QTreeWidgetItem | None:
        iterator = QtWidgets.QTreeWidgetItemIterator(self.tree)
        while iterator.value() is not None:
            if iterator.value().data(0, QtCore.Qt.ItemDataRole.UserRole + 1) == (path, series_uid):
                return iterator.value()
            iterator += 1
        return None

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
            return
        scanned = item.data(0, QtCore.Qt.ItemDataRole.UserRole + 1)
        if scanned:
            self.load_requested.emit(*scanned)

    def _on_compare(self) -> None:
        chosen = [v for v in (self._volume_of(i) for i in self.tree.selectedItems()) if v is not None]
        if len(chosen) >= 2:
            self.compare_requested.emit(chosen[:4])

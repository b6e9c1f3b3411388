"""The annotation dock: tools, label, brush size, undo/redo, the statistics table, save/load.

``AnnotationController`` wires the Qt-free model (AnnotationDocument, CommandStack, ROI
statistics) to the panels of the main window: it keeps one AnnotationOverlay per panel and is
re-attached whenever the window rebuilds its view. The statistics table measures every ROI on
each volume shown (original | synthesized... | difference) side by side: a quick check of
whether a lesion was preserved.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.annotations.builders import Tool, build_annotation, next_free_label
from app.annotations.commands import (
    AddAnnotation,
    CommandStack,
    PaintMask,
    RemoveAnnotation,
    ReplaceAnnotation,
)
from app.annotations.document import AnnotationDocument
from app.annotations.label_mask import LabelMask
from app.annotations.roi_stats import RoiStatistics, compare_roi, mask_statistics
from app.annotations.shapes import PlanarRegion
from app.annotations.sidecar import AnnotationFileError, load_annotations, save_annotations, sidecar_path_for
from app.core.planes import PLANE_AXES
from app.core.volume import Volume
from app.ui.annotation_overlay import AnnotationOverlay, measurement_text
from app.ui.dock_table import set_column_names, share_dock_width

TOOL_KEYS = {
    Tool.NAVIGATE: "Esc",
    Tool.POINT: "M",
    Tool.RULER: "D",
    Tool.ANGLE: "A",
    Tool.RECTANGLE: "B",
    Tool.ELLIPSE: "E",
    Tool.FREEHAND: "G",
    Tool.BRUSH: "P",
    Tool.ERASER: "X",
    Tool.MOVE: "V",
}


STAT_ROWS = (
    ("mean", "mean"),
    ("SD", "sd"),
    ("min", "minimum"),
    ("max", "maximum"),
    ("area mm²", "area_mm2"),
    ("voxels", "voxel_count"),
)
UNIT_ATTRIBUTES = ("mean", "sd", "minimum", "maximum")  # in the image's units (HU ...)


class AnnotationController(QtCore.QObject):
    """The document, its undo stack, the current tool, and the overlays on the panels."""

    changed = QtCore.Signal()  # document, selection or volumes changed: refresh views/tables
    selection_changed = QtCore.Signal()  # another annotation selected (on a panel or in the table)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.document = AnnotationDocument()
        self.stack = CommandStack()
        self.tool = Tool.NAVIGATE
        self.label_text = ""
        self.brush_radius_mm = 3.0
        self.selected_id: str | None = None
        self.volumes: dict[str, Volume] = {}  # column name -> volume, for the statistics table
        self.reference: Volume | None = None  # the grid a new label mask is painted on
        self.overlays: list[AnnotationOverlay] = []
        self.document.changed.connect(self._on_document_changed)

    # ----- wiring ---------------------------------------------------------------------------
    def attach(self, panels: list) -> None:
        """Put an overlay on each panel (old overlays, of discarded panels, are dropped)."""
        for overlay in self.overlays:
            overlay.detach()
        self.overlays = [AnnotationOverlay(panel, self) for panel in panels]

    def set_volumes(self, volumes: dict[str, Volume], reference: Volume | None) -> None:
        self.volumes = dict(volumes)
        self.reference = reference
        if reference is not None and not self.document.reference:
            self.document.reference = {"name": reference.name, **_frame_of_reference(reference)}
        self.changed.emit()

    def set_document(self, document: AnnotationDocument) -> None:
        self.document.changed.disconnect(self._on_document_changed)
        self.document = document
        self.document.changed.connect(self._on_document_changed)
        self.stack.clear()
        self.selected_id = None
        self._on_document_changed()

    def set_tool(self, tool: Tool) -> None:
        self.tool = tool
        for overlay in self.overlays:
            overlay.cancel_gesture()

    def _on_document_changed(self) -> None:
        if self.selected_id is not None and self.selected_id not in self.document.ids():
            self.selected_id = None
        self.redraw()
        self.changed.emit()

    def redraw(self) -> None:
        for overlay in self.overlays:
            overlay.redraw()

    def select(self, annotation_id: str | None) -> None:
        self.selected_id = annotation_id
        self.redraw()
        self.selection_changed.emit()

    # ----- edits (all through the undo stack) ----------------------------------------------
    def finish_gesture(self, panel, points_lps: list[np.ndarray]) -> None:
        axes = PLANE_AXES[panel.plane]
        # A label already in use gets the next number: "lesion 1" then "lesion 2", not two "lesion 1".
        label = next_free_label(self.label_text, {annotation.label for annotation in self.document})
        annotation = build_annotation(self.tool, points_lps, axes.right_lps, axes.down_lps, label)
        if annotation is not None:
            self.stack.push(AddAnnotation(self.document, annotation))
            self.select(annotation.annotation_id)

    def begin_stroke(self, panel, lps: np.ndarray) -> PaintMask | None:
        mask = self._mask_for_painting()
        if mask is None:
            return None
        axes = PLANE_AXES[panel.plane]
        indices = mask.disk_indices(lps, self.brush_radius_mm, axes.right_lps, axes.down_lps)
        stroke = PaintMask(self.document, mask, indices, 0 if self.tool is Tool.ERASER else 1)
        self.stack.push(stroke)
        return stroke

    def continue_stroke(self, stroke: PaintMask | None, panel, lps: np.ndarray) -> None:
        if stroke is None:
            return
        axes = PLANE_AXES[panel.plane]
        stroke.extend(stroke.mask.disk_indices(lps, self.brush_radius_mm, axes.right_lps, axes.down_lps))

    def _mask_for_painting(self) -> LabelMask | None:
        if self.document.mask is not None:
            return self.document.mask
        if self.reference is None:
            return None
        return LabelMask.empty_like(self.reference.geometry, self.reference.shape_kji)

    def move_annotation(self, annotation, offset_lps_mm: np.ndarray) -> None:
        """Translate an annotation by a world offset (undoable); a zero drag does nothing."""
        if float(np.linalg.norm(offset_lps_mm)) > 1e-6:
            self.stack.push(ReplaceAnnotation(self.document, annotation.moved(offset_lps_mm)))

    def relabel(self, annotation_id: str, label: str) -> None:
        """Rename an annotation (undoable)."""
        annotation = self.document.get(annotation_id)
        if annotation.label != label:
            self.stack.push(ReplaceAnnotation(self.document, dataclasses.replace(annotation, label=label)))

    def delete_selected(self) -> None:
        if self.selected_id is not None:
            self.stack.push(RemoveAnnotation(self.document, self.selected_id))

    def undo(self) -> None:
        self.stack.undo()

    def redo(self) -> None:
        self.stack.redo()

    # ----- statistics -----------------------------------------------------------------------
    def statistics(self) -> dict[str, dict[str, RoiStatistics]]:
        """ROI id -> {volume column name -> statistics} for every region annotation."""
        return {
            annotation.annotation_id: compare_roi(annotation, self.volumes)
            for annotation in self.document
            if isinstance(annotation, PlanarRegion)
        }


def _frame_of_reference(volume: Volume) -> dict:
    uid = volume.metadata.get("FrameOfReferenceUID")
    return {"frame_of_reference_uid": str(uid)} if uid else {}


def _space_key(volume: Volume) -> tuple:
    """What annotations in world coordinates belong to: the DICOM frame of reference, or, without
    one, the voxel grid itself (a synthesized volume keeps its input's grid)."""
    uid = volume.metadata.get("FrameOfReferenceUID")
    if uid:
        return ("frame of reference", str(uid))
    geometry = volume.geometry
    return (
        "grid",
        tuple(volume.shape_kji),
        tuple(np.round(geometry.origin_lps_mm, 3)),
        tuple(np.round(geometry.spacing_mm, 4)),
        tuple(np.round(geometry.direction, 4).ravel()),
    )


def same_space(first: Volume, second: Volume) -> bool:
    """Whether annotations drawn on ``first`` mean the same places on ``second``."""
    first_uid, second_uid = (v.metadata.get("FrameOfReferenceUID") for v in (first, second))
    if first_uid and second_uid:
        return str(first_uid) == str(second_uid)
    return first.shape_kji == second.shape_kji and first.geometry.allclose(second.geometry)


def mask_summary(controller: AnnotationController) -> str:
    """The painted label mask in words: voxels, volume in mL, mean ± SD on the volume painted on."""
    mask = controller.document.mask
    if mask is None or mask.voxel_count() == 0:
        return "Label mask: none (paint with the brush, P)"
    count = mask.voxel_count()
    text = f"Label mask: {count} voxels, {mask.volume_ml():.3f} mL"
    reference = controller.reference
    if (
        reference is not None
        and reference.shape_kji == mask.labels.shape
        and reference.geometry.allclose(mask.geometry)
    ):
        stats = mask_statistics(mask.labels > 0, reference)
        units = f" {stats.units}" if stats.units else ""
        text += f"; inside {stats.mean:.1f} ± {stats.sd:.1f}{units}"
    return text


def format_statistics(stats: RoiStatistics) -> str:
    if stats.voxel_count == 0:
        return "outside"
    units = f" {stats.units}" if stats.units else ""
    return (
        f"{stats.mean:.1f} ± {stats.sd:.1f}{units}  [{stats.minimum:.4g}, {stats.maximum:.4g}]"
        f"  n={stats.voxel_count}"
    )


class AnnotationPanel(QtWidgets.QWidget):
    """The dock's contents; ``controller`` holds the state, this widget only shows and asks."""

    FIXED_COLUMNS = ("Label", "Type", "Measure")
    LIST_COLUMN_PX = 80  # 'lesion 1', '38.3 mm²', '100.0 ± 0.0' read whole

    def __init__(self, controller: AnnotationController | None = None, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller or AnnotationController(self)
        self.tool_buttons: dict[Tool, QtWidgets.QToolButton] = {}
        self.status = ""
        self.exporter = None  # (document, volume, folder, deidentify=...) -> written paths
        # Where failures go (title, message): the window's notification area once docked.
        self.report_error = lambda title, message: QtWidgets.QMessageBox.warning(self, title, message)
        self._set_aside: dict[tuple, AnnotationDocument] = {}  # by patient space (_space_key)

        tools = QtWidgets.QGridLayout()
        group = QtWidgets.QButtonGroup(self)
        group.setExclusive(True)
        for index, tool in enumerate(Tool):
            button = QtWidgets.QToolButton()
            button.setText(tool.value.capitalize())
            button.setCheckable(True)
            button.setToolTip(f"{tool.value} ({TOOL_KEYS[tool]})")
            button.setObjectName(f"tool_{tool.value}")
            button.clicked.connect(lambda _checked=False, t=tool: self.choose_tool(t))
            group.addButton(button)
            tools.addWidget(button, index // 3, index % 3)
            self.tool_buttons[tool] = button
        self.tool_buttons[Tool.NAVIGATE].setChecked(True)

        self.label_edit = QtWidgets.QLineEdit()
        self.label_edit.setPlaceholderText("label for new annotations (e.g. lesion 1)")
        self.label_edit.textChanged.connect(self._on_label_changed)
        self.radius_spin = QtWidgets.QDoubleSpinBox()
        self.radius_spin.setRange(0.5, 50.0)
        self.radius_spin.setSuffix(" mm")
        self.radius_spin.setValue(self.controller.brush_radius_mm)
        self.radius_spin.valueChanged.connect(
            lambda value: setattr(self.controller, "brush_radius_mm", value)
        )
        form = QtWidgets.QFormLayout()
        form.addRow("Label", self.label_edit)
        form.addRow("Brush radius", self.radius_spin)

        self.undo_button = QtWidgets.QPushButton("Undo")
        self.redo_button = QtWidgets.QPushButton("Redo")
        self.delete_button = QtWidgets.QPushButton("Delete")
        self.save_button = QtWidgets.QPushButton("Save…")
        self.load_button = QtWidgets.QPushButton("Load…")
        self.export_button = QtWidgets.QPushButton("Export SR/SEG…")
        self.export_button.setToolTip(
            "Write the annotations as DICOM SR (TID 1500), the mask as DICOM SEG and NIfTI, and the JSON sidecar"
        )
        self.deidentify_check = QtWidgets.QCheckBox("De-identify DICOM exports")
        self.undo_button.clicked.connect(self.controller.undo)
        self.redo_button.clicked.connect(self.controller.redo)
        self.delete_button.clicked.connect(self.controller.delete_selected)
        self.save_button.clicked.connect(self._choose_save)
        self.load_button.clicked.connect(self._choose_load)
        self.export_button.clicked.connect(self._choose_export)
        buttons = QtWidgets.QHBoxLayout()
        for button in (
            self.undo_button,
            self.redo_button,
            self.delete_button,
            self.save_button,
            self.load_button,
        ):
            buttons.addWidget(button)

        self.table = QtWidgets.QTableWidget(0, len(self.FIXED_COLUMNS))
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        triggers = QtWidgets.QAbstractItemView.EditTrigger
        self.table.setEditTriggers(triggers.DoubleClicked | triggers.EditKeyPressed)  # the label only
        self.table.itemSelectionChanged.connect(self._on_table_selection)
        self.table.itemChanged.connect(self._on_item_changed)
        # Every column in the dock's width (a cut cell shows whole in its tooltip): no sideways
        # scrolling to find a measurement.
        share_dock_width(self.table)
        self.table.setTextElideMode(QtCore.Qt.TextElideMode.ElideRight)

        # The selected ROI measured on each volume, side by side (rows: statistics).
        self.stats_table = QtWidgets.QTableWidget(len(STAT_ROWS), 0)
        self.stats_table.setVerticalHeaderLabels([name for name, _ in STAT_ROWS])
        self.stats_table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        # The columns share the dock's width (no sideways scrolling); a cut name is in its tooltip.
        share_dock_width(self.stats_table)
        self.stats_table.setWordWrap(False)
        self.stats_table.setTextElideMode(QtCore.Qt.TextElideMode.ElideRight)  # a cut number keeps its lead
        self.stats_title = QtWidgets.QLabel("Select an ROI to compare its statistics")
        self.stats_title.setWordWrap(True)  # every volume's name, not cut at the dock's edge
        self.mask_label = QtWidgets.QLabel()
        self.mask_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QtWidgets.QVBoxLayout(self)
        layout.addLayout(tools)
        layout.addLayout(form)
        layout.addLayout(buttons)
        export_row = QtWidgets.QHBoxLayout()
        export_row.addWidget(self.export_button)
        export_row.addWidget(self.deidentify_check)
        layout.addLayout(export_row)
        layout.addWidget(self.table, 2)
        layout.addWidget(self.mask_label)
        layout.addWidget(self.stats_title)
        layout.addWidget(self.stats_table, 1)

        self.controller.changed.connect(self.refresh)
        self.controller.selection_changed.connect(self._on_selection_changed)
        self.controller.stack.changed.connect(self._update_buttons)
        self.refresh()

    def choose_tool(self, tool: Tool) -> None:
        self.tool_buttons[tool].setChecked(True)
        self.controller.set_tool(tool)

    def _on_label_changed(self, text: str) -> None:
        self.controller.label_text = text

    def _update_buttons(self) -> None:
        stack = self.controller.stack
        self.undo_button.setEnabled(stack.can_undo())
        self.redo_button.setEnabled(stack.can_redo())
        self.undo_button.setToolTip(f"Undo {stack.undo_text()} (Ctrl+Z)")
        self.redo_button.setToolTip(f"Redo {stack.redo_text()} (Ctrl+Shift+Z)")
        self.delete_button.setEnabled(self.controller.selected_id is not None)

    def refresh(self) -> None:
        """Rebuild the table: one row per annotation, one statistics column per volume."""
        controller = self.controller
        names = list(controller.volumes)
        statistics = controller.statistics()
        self.table.blockSignals(True)
        set_column_names(self.table, [*self.FIXED_COLUMNS, *names])
        annotations = list(controller.document)
        self.table.setRowCount(len(annotations))
        for row, annotation in enumerate(annotations):
            cells = [annotation.label, annotation.kind, measurement_text(annotation).split(": ")[-1]]
            if annotation.kind == "point":
                cells[2] = ""
            per_volume = statistics.get(annotation.annotation_id, {})
            for name in names:
                cells.append(format_statistics(per_volume[name]) if name in per_volume else "")
            # Each volume's figures are in the row's first cells' tooltips too: those columns
            # are put aside where the dock is too narrow to read them.
            listed = "\n".join(f"{name}: {cells[3 + n]}" for n, name in enumerate(names) if cells[3 + n])
            for column, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(f"{text}\n{listed}" if listed and column < len(self.FIXED_COLUMNS) else text)
                item.setData(QtCore.Qt.ItemDataRole.UserRole, annotation.annotation_id)
                if column != 0:
                    item.setFlags(item.flags() & ~QtCore.Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(row, column, item)
            if annotation.annotation_id == controller.selected_id:
                self.table.selectRow(row)
        self.table.blockSignals(False)
        self._show_volume_columns_that_fit()
        self.mask_label.setText(mask_summary(controller))
        self._fill_stats_table(statistics.get(controller.selected_id or "", {}))
        self._update_buttons()

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        self._show_volume_columns_that_fit()

    def _show_volume_columns_that_fit(self) -> None:
        """The list's per-volume columns where each can be read; where the dock is too narrow
        (a four-volume compare at 1600x950 gave 8 columns of ~39 px: 'L…l', 'T…e', '10… ± …'),
        they are put aside: the selected ROI's figures are in the statistics table below, every
        ROI's in its row's tooltip."""
        table = self.table
        columns = table.columnCount()
        readable = columns * self.LIST_COLUMN_PX <= table.viewport().width()
        for column in range(len(self.FIXED_COLUMNS), columns):
            table.setColumnHidden(column, not readable)

    def _on_selection_changed(self) -> None:
        """An annotation picked on a panel (or just drawn): its row and its statistics."""
        selected = self.controller.selected_id
        self.table.blockSignals(True)
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.data(QtCore.Qt.ItemDataRole.UserRole) == selected:
                self.table.selectRow(row)
                break
        else:
            self.table.clearSelection()
        self.table.blockSignals(False)
        self._fill_stats_table(self.controller.statistics().get(selected or "", {}))
        self._update_buttons()

    def _fill_stats_table(self, per_volume: dict[str, RoiStatistics]) -> None:
        names = list(per_volume)
        set_column_names(self.stats_table, names)
        selected = self.controller.selected_id
        if per_volume:
            annotation = self.controller.document.get(selected)
            name = repr(annotation.label) if annotation.label else f"({annotation.kind})"
            self.stats_title.setText(f"ROI {name} on {' | '.join(names)}")
        else:
            self.stats_title.setText("Select an ROI to compare")
        # Four significant digits, and the units (when every volume has the same) in the row's
        # name: a four-volume compare gives each column ~45 px at 1600x950, where '96.452' and
        # '-42.748 HU' were cut to '9…2' and '-4…48'. The tooltip has the value to six digits.
        units = {stats.units for stats in per_volume.values()}
        shared_units = units.pop() if len(units) == 1 else ""
        self.stats_table.setVerticalHeaderLabels(
            [
                f"{label} ({shared_units})" if shared_units and attribute in UNIT_ATTRIBUTES else label
                for label, attribute in STAT_ROWS
            ]
        )
        for column, name in enumerate(names):
            stats = per_volume[name]
            cell_units = f" {stats.units}" if stats.units and not shared_units else ""
            whole_units = f" {stats.units}" if stats.units else ""
            for row, (statistic, attribute) in enumerate(STAT_ROWS):
                value = getattr(stats, attribute)
                if attribute == "voxel_count":
                    text = whole = str(value)
                else:
                    text, whole = f"{value:.4g}", f"{value:.6g}"
                    if attribute in UNIT_ATTRIBUTES:
                        text, whole = text + cell_units, whole + whole_units
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(f"{statistic} on {name}: {whole}")  # whole where the column is narrow
                self.stats_table.setItem(row, column, item)

    def _on_item_changed(self, item: QtWidgets.QTableWidgetItem) -> None:
        if item.column() == 0:
            annotation_id, label = item.data(QtCore.Qt.ItemDataRole.UserRole), item.text()
            # Deferred: the edit rebuilds the table, which must not happen inside the editor's commit.
            QtCore.QTimer.singleShot(0, lambda: self.controller.relabel(annotation_id, label))

    def _on_table_selection(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            item = self.table.item(rows[0].row(), 0)
            self.controller.select(item.data(QtCore.Qt.ItemDataRole.UserRole))
        self._fill_stats_table(self.controller.statistics().get(self.controller.selected_id or "", {}))
        self._update_buttons()

    # ----- files ----------------------------------------------------------------------------
    def save_to(self, path: str | Path) -> Path:
        return save_annotations(self.controller.document, path)

    def load_from(self, path: str | Path) -> bool:
        """Replace the annotations with a file's; a bad file leaves them and says why."""
        try:
            document = load_annotations(path)
        except AnnotationFileError as error:
            self.status = str(error)
            self.report_error("Cannot load annotations", str(error))
            return False
        self.controller.set_document(document)
        self.status = f"loaded {len(document)} annotations"
        return True

    def export_to(self, folder: str | Path) -> list[Path]:
        """Export the annotations of the volume they were drawn on into ``folder``.

        The exporter lives in app.io (file formats); the entry point hands it in (``exporter``,
        from the window's ``FileServices``) so the UI imports no file-format code.
        """
        reference = self.controller.reference
        if reference is None:
            raise ValueError("open a volume first: exports refer to the volume the annotations are on")
        if self.exporter is None:
            raise RuntimeError("no annotation exporter was given to this window")
        warnings: list[str] = []  # a de-identified export names the free text it kept
        written = self.exporter(
            self.controller.document,
            reference,
            folder,
            deidentify=self.deidentify_check.isChecked(),
            warnings=warnings,
            compare_volumes=self.controller.volumes,  # measurements mirrored on every panel
        )
        self.status = f"exported {len(written)} files to {folder}" + "".join(f"; {w}" for w in warnings)
        return written

    def _choose_export(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Export annotations into folder")
        if not folder:
            return
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        try:
            self.export_to(folder)
        except Exception as error:  # noqa: BLE001 - any export failure is reported, never a crash
            self.report_error("Cannot export annotations", str(error))
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()

    def switch_space(self, previous: Volume, volume: Volume) -> None:
        """Another patient space is opened: set the annotations of ``previous`` aside (they come
        back when it is opened again) and show ``volume``'s own, or its saved sidecar's."""
        document = self.controller.document
        if len(document) or document.mask is not None:
            self._set_aside[_space_key(previous)] = document
        restored = self._set_aside.pop(_space_key(volume), None)
        self.controller.set_document(restored or AnnotationDocument())
        if restored is None:
            self.load_sidecar_of(volume)
        if len(document) or document.mask is not None:
            self.status = (
                f"{len(document)} annotation(s) of the previous volume set aside: they belong to its"
                " space and come back when it is opened again"
            )

    def load_sidecar_of(self, volume: Volume) -> bool:
        """Open the annotations saved beside a volume's file (``NAME.annotations.json``), if any."""
        source = volume.source_path
        if not source:
            return False
        path = sidecar_path_for(source)
        return path.exists() and self.load_from(path)

    def _choose_save(self) -> None:
        reference = self.controller.reference
        source = reference.source_path if reference is not None else None
        suggested = str(sidecar_path_for(source)) if source else "annotations.annotations.json"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Save annotations", suggested, "Annotations (*.json)"
        )
        if not path:
            return
        try:
            written = self.save_to(path)
        except (OSError, AnnotationFileError) as error:  # an unwritable folder, a full disk
            self.status = f"not saved: {error}"
            self.report_error("Cannot save the annotations", f"{path}: {error}")
            return
        self.status = f"saved to {written}"

    def _choose_load(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Load annotations", "", "Annotations (*.json)")
        if path:
            self.load_from(path)


def install_annotation_tools(window) -> AnnotationPanel:
    """Dock the annotation tools in a MainWindow and follow its views (re-attached on rebuild)."""
    panel = AnnotationPanel()
    panel.report_error = window.session.report_error
    panel.exporter = window.services.export_annotations
    window.add_dock(panel, "Annotations")
    controller = panel.controller

    def follow_view() -> None:
        controller.attach(window.panels)
        volumes: dict[str, Volume] = {}
        original = window.session.current
        if original is not None:
            # A synthesized volume opened on its own is never headed "original".
            volumes["synthesized (reference)" if original.is_synthetic else "original"] = original
        # Maps (residual, uncertainty) shown beside the pair carry its provenance but are no output.
        images = [v for v in window.session.compare if not v.is_map]
        for other in window.session.compare:
            if other.quantity_map is not None:
                volumes[f"map: {other.name or other.quantity_map.kind}"] = other
                continue
            kind = "synthesized" if other.is_synthetic else "acquired"
            number = next(n for n, image in enumerate(images, start=1) if image is other)
            volumes[f"{kind} {number}" if len(images) > 1 else kind] = other
        difference = getattr(getattr(window, "view", None), "difference", None)
        if difference is not None:
            volumes["difference"] = difference.volume
        previous = controller.reference
        new_reference = original is not None and original is not previous
        # Annotations are places in one patient's space: another space gets its own document.
        if new_reference and previous is not None and not same_space(previous, original):
            panel.switch_space(previous, original)
        controller.set_volumes(volumes, original)
        if new_reference and len(controller.document) == 0 and controller.document.mask is None:
            panel.load_sidecar_of(original)

    window.view_changed.connect(follow_view)
    shortcuts = [
        (
            key,
            "Back to navigation (no annotation tool)"
            if tool is Tool.NAVIGATE
            else f"Annotation tool: {tool.value}",
            lambda t=tool: panel.choose_tool(t),
        )
        for tool, key in TOOL_KEYS.items()
    ]
    shortcuts += [
        ("Ctrl+Z", "Undo the last annotation edit", controller.undo),
        ("Ctrl+Shift+Z", "Redo an annotation edit", controller.redo),
        ("Ctrl+Y", "Redo an annotation edit", controller.redo),
        ("Del", "Delete the selected annotation", controller.delete_selected),
    ]
    for key, description, slot in shortcuts:
        if hasattr(window, "add_shortcut"):  # bound in the window and listed in its F1 help
            window.add_shortcut(key, description, slot)
        else:
            QtGui.QShortcut(QtGui.QKeySequence(key), window).activated.connect(slot)
    if window.panels:
        follow_view()
    return panel

"""Keyboard shortcuts: one table used both to bind the actions and to list them in the help."""

from __future__ import annotations

from PySide6 import QtWidgets

from app.core.viewer_state import PRESET_KEYS

# (key sequence, what it does); panel keys are handled by the focused SliceView itself.
SHORTCUTS: list[tuple[str, str]] = [
    ("Ctrl+O", "Open a DICOM or NIfTI file"),
    ("Ctrl+D", "Open a DICOM folder"),
    ("1", "Layout: axial"),
    ("2", "Layout: coronal"),
    ("3", "Layout: sagittal"),
    ("4", "Layout: MPR 1x3"),
    ("5", "Layout: 2x2 with 3D"),
    ("6", "Layout: compare (when a second volume is open)"),
    ("I", "Invert grey scale"),
    ("C", "Next colormap"),
    ("F", "Flicker original / synthesized (compare)"),
    ("T", "Threshold mask overlay on / off"),
    ("R", "Reset zoom and pan"),
    *(
        (f"Alt+{number}", f"Window preset {number} of the modality's (Image > Window presets)")
        for number in range(1, PRESET_KEYS + 1)
    ),
    ("F1", "This help"),
    ("Up / Down", "Next / previous slice (also mouse wheel)"),
    ("Page Up / Page Down", "Ten slices"),
    ("Ctrl+wheel", "Zoom"),
    ("Left click / drag", "Move the linked crosshair"),
    ("Right drag", "Window width (right = wider) / level (up = brighter)"),
    ("Middle drag", "Pan"),
]


class ShortcutHelpDialog(QtWidgets.QDialog):
    """The table of ``shortcuts`` (default: the viewer's own; the main window adds its tool
    docks' keys, e.g. the annotation tools)."""

    def __init__(self, parent=None, shortcuts: list[tuple[str, str]] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        shortcuts = SHORTCUTS if shortcuts is None else shortcuts
        table = QtWidgets.QTableWidget(len(shortcuts), 2)
        table.setHorizontalHeaderLabels(["Key", "Action"])
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)  # compact rows
        for row, (key, action) in enumerate(shortcuts):
            table.setItem(row, 0, QtWidgets.QTableWidgetItem(key))
            table.setItem(row, 1, QtWidgets.QTableWidgetItem(action))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table = table
        close = QtWidgets.QPushButton("Close")
        close.clicked.connect(self.accept)
        layout = QtWidgets.QVBoxLayout(self)
        convention = QtWidgets.QLabel(
            "Radiological convention: patient left on screen right (axial, "
            "coronal); anterior up (axial); superior up (coronal, sagittal)."
        )
        convention.setWordWrap(True)
        layout.addWidget(convention)
        layout.addWidget(table)
        layout.addWidget(close)
        self.resize(560, 640)

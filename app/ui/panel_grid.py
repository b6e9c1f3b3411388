"""PanelGrid: a grid of SliceViews sharing one ViewerState, linked in zoom and pan per plane."""

from __future__ import annotations

from PySide6 import QtWidgets

from app.core.planes import Plane
from app.core.viewer_state import ViewerState
from app.ui.slice_view import PanelContent, SliceView

Cell = tuple[PanelContent, Plane] | QtWidgets.QWidget | None


class PanelGrid(QtWidgets.QWidget):
    """``cells[row][col]``: a (content, plane) pair becomes a SliceView; a widget is placed as is."""

    def __init__(self, state: ViewerState, cells: list[list[Cell]], parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.panels: list[SliceView] = []
        self._widgets: list[QtWidgets.QWidget] = []  # cells placed as they are (the 3D view)
        layout = QtWidgets.QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        first_of_plane: dict[Plane, SliceView] = {}
        for row, row_cells in enumerate(cells):
            for col, cell in enumerate(row_cells):
                if cell is None:
                    continue
                if isinstance(cell, QtWidgets.QWidget):
                    layout.addWidget(cell, row, col)
                    self._widgets.append(cell)
                    continue
                content, plane = cell
                panel = SliceView(state, content, plane)
                self.panels.append(panel)
                layout.addWidget(panel, row, col)
                # Same scene coordinates for one plane: linking is exact, whatever the volume.
                if plane in first_of_plane:
                    panel.view_box.setXLink(first_of_plane[plane].view_box)
                    panel.view_box.setYLink(first_of_plane[plane].view_box)
                else:
                    first_of_plane[plane] = panel
        for row in range(layout.rowCount()):
            layout.setRowStretch(row, 1)
        for col in range(layout.columnCount()):
            layout.setColumnStretch(col, 1)

    def set_plane_shown(self, plane: Plane, shown: bool) -> None:
        """Show or put aside the panels of one plane; a row put aside gives its height to the
        others (a single-row compare fills the height, not a third of it)."""
        layout = self.layout()
        for panel in self.panels_for_plane(plane):
            panel.set_shown(shown)
            row = layout.getItemPosition(layout.indexOf(panel))[0]
            layout.setRowStretch(row, 1 if shown else 0)

    def panels_for_plane(self, plane: Plane) -> list[SliceView]:
        return [panel for panel in self.panels if panel.plane == plane]

    def reset_zoom(self) -> None:
        """Fit every panel; the linked panels of one plane keep room at the top for the tallest
        SYNTHETIC label among them (they share one field of view)."""
        rooms: dict[Plane, int] = {}
        for panel in self.panels:
            rooms[panel.plane] = max(rooms.get(panel.plane, 0), panel.synthetic_label_room())
        for panel in self.panels:
            panel.reset_zoom(rooms[panel.plane])

    def detach(self) -> None:
        for panel in self.panels:
            panel.detach()
        for widget in self._widgets:
            if hasattr(widget, "detach"):
                widget.detach()

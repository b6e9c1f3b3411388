"""PanelGrid: a grid of SliceViews sharing one ViewerState, linked in zoom and pan per plane."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

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

    def reset_zoom(self, planes: set[Plane] | None = None) -> None:
        """Fit every panel (of ``planes``: default all); the linked panels of one plane keep room
        at the top for the tallest SYNTHETIC label among them (they share one field of view)."""
        panels = [panel for panel in self.panels if planes is None or panel.plane in planes]
        rooms: dict[Plane, int] = {}
        for panel in panels:
            rooms[panel.plane] = max(rooms.get(panel.plane, 0), panel.synthetic_label_room())
        for panel in panels:
            panel.reset_zoom(rooms[panel.plane])

    def show_only(self, planes: set[Plane]) -> None:
        """Show the rows of ``planes`` and put the others aside. A row that stays keeps the
        reader's zoom and pan (centre and mm per pixel) where the image was zoomed into; a row
        showing its whole image, and a row shown again, is fitted. While the rows change height,
        linked panels of one plane are resized one after the other, and their locked aspect made
        each widen the shared range in turn: a single coronal row of the demo showed the head as
        a dot, +-1000 mm across a 180 px panel."""
        before = {plane for plane in self.planes() if any(p.is_shown() for p in self.panels_for_plane(plane))}
        kept = {}  # plane -> (centre u, centre v, mm per pixel): the zoom and pan, whatever the size
        for plane in before & planes:
            panel = self.panels_for_plane(plane)[0]
            image = panel.mapFromScene(panel.image_item.sceneBoundingRect()).boundingRect()
            if panel.viewport().rect().adjusted(-1, -1, 1, 1).contains(image):
                continue  # the whole image in view: fitted again in the new size
            box = panel.view_box
            (u_low, u_high), (v_low, v_high) = box.viewRange()
            kept[plane] = ((u_low + u_high) / 2, (v_low + v_high) / 2, box.viewPixelSize()[0])
        for plane in self.planes():
            self.set_plane_shown(plane, plane in planes)

        def fit() -> None:
            for plane, (u, v, mm_per_px) in kept.items():
                box = self.panels_for_plane(plane)[0].view_box
                half_u, half_v = box.width() * mm_per_px / 2, box.height() * mm_per_px / 2
                box.setRange(xRange=(u - half_u, u + half_u), yRange=(v - half_v, v + half_v), padding=0)
            self.reset_zoom(planes - set(kept))

        self.layout().activate()  # the new heights now: the panels are resized before the fit...
        fit()
        QtCore.QTimer.singleShot(0, self, fit)  # ...and again once rows shown again have laid out

    def planes(self) -> list[Plane]:
        return list(dict.fromkeys(panel.plane for panel in self.panels))

    def detach(self) -> None:
        for panel in self.panels:
            panel.detach()
        for widget in self._widgets:
            if hasattr(widget, "detach"):
                widget.detach()

"""Which panels a layout holds: single planes, MPR 1x3, 2x2 with 3D, and the compare grid."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6 import QtWidgets

from app.core.planes import Plane
from app.core.session import Layout
from app.core.volume import Volume

if TYPE_CHECKING:  # the panels (pyqtgraph) are imported when cells are made, not with the layouts
    from app.ui.panel_grid import Cell
    from app.ui.slice_view import PanelContent

SINGLE_PLANE_LAYOUTS = {Layout.AXIAL: Plane.AXIAL, Layout.CORONAL: Plane.CORONAL, Layout.SAGITTAL: Plane.SAGITTAL}
MAX_VOLUMES_PER_ROW = 4


def mpr_planes(layout: Layout) -> list[list[Plane | None]]:
    """The planes of a one-volume layout, row by row: a single plane (1x1), MPR (1x3) or 2x2
    (None: the 3D view's cell)."""
    if layout in SINGLE_PLANE_LAYOUTS:
        return [[SINGLE_PLANE_LAYOUTS[layout]]]
    if layout is Layout.MPR:
        return [list(Plane)]
    if layout is Layout.TWO_BY_TWO:
        return [[Plane.AXIAL, Plane.CORONAL], [Plane.SAGITTAL, None]]
    raise ValueError(f"{layout!r} is not a one-volume layout")


def mpr_cells(volume: Volume, layout: Layout, widget_3d: QtWidgets.QWidget | None = None) -> list[list[Cell]]:
    """Cells of a one-volume layout (``mpr_planes``), the 3D view's cell holding ``widget_3d``."""
    from app.ui.slice_view import PanelContent

    content = PanelContent(volume)
    return [[widget_3d if plane is None else (content, plane) for plane in row] for row in mpr_planes(layout)]


def compare_cells(columns: list[PanelContent], planes: list[Plane]) -> list[list[Cell]]:
    """One row per plane, one column per content (original, others..., difference)."""
    return [[(content, plane) for content in columns] for plane in planes]

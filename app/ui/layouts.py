"""Which panels a layout holds: single planes, MPR 1x3, 2x2 with 3D, and the compare grid."""

from __future__ import annotations

from PySide6 import QtWidgets

from app.core.planes import Plane
from app.core.session import Layout
from app.core.volume import Volume
from app.ui.panel_grid import Cell
from app.ui.slice_view import PanelContent

SINGLE_PLANE_LAYOUTS = {Layout.AXIAL: Plane.AXIAL, Layout.CORONAL: Plane.CORONAL, Layout.SAGITTAL: Plane.SAGITTAL}
MAX_VOLUMES_PER_ROW = 4


def mpr_cells(volume: Volume, layout: Layout, widget_3d: QtWidgets.QWidget | None = None) -> list[list[Cell]]:
    """Cells of a one-volume layout: a single plane (1x1), MPR (1x3) or 2x2 (+ a 3D view)."""
    content = PanelContent(volume)
    if layout in SINGLE_PLANE_LAYOUTS:
        return [[(content, SINGLE_PLANE_LAYOUTS[layout])]]
    if layout is Layout.MPR:
        return [[(content, plane) for plane in Plane]]
    if layout is Layout.TWO_BY_TWO:
        return [[(content, Plane.AXIAL), (content, Plane.CORONAL)], [(content, Plane.SAGITTAL), widget_3d]]
    raise ValueError(f"{layout!r} is not a one-volume layout")


def compare_cells(columns: list[PanelContent], planes: list[Plane]) -> list[list[Cell]]:
    """One row per plane, one column per content (original, others..., difference)."""
    return [[(content, plane) for content in columns] for plane in planes]

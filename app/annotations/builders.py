"""From a tool's mouse gesture (world points on one view plane) to an annotation.

Qt-free so the gesture rules are tested without a display: the UI maps mouse positions to
LPS with the panel's ``scene_to_lps`` and hands the points and the view's screen axes here.
"""

from __future__ import annotations

import enum

import numpy as np

from app.annotations.shapes import (
    Angle,
    Annotation,
    EllipseRoi,
    FreehandRoi,
    PointMarker,
    RectangleRoi,
    Ruler,
)


class Tool(enum.Enum):
    NAVIGATE = "navigate"
    POINT = "point"
    RULER = "ruler"
    ANGLE = "angle"
    RECTANGLE = "rectangle"
    ELLIPSE = "ellipse"
    FREEHAND = "freehand"
    BRUSH = "brush"
    ERASER = "eraser"
    MOVE = "move"


MIN_SIZE_MM = 0.05  # a drag shorter than this is a click, not a shape


def build_annotation(
    tool: Tool, points_lps: list[np.ndarray], right_lps: np.ndarray, down_lps: np.ndarray, label: str = ""
) -> Annotation | None:
    """The annotation ``tool`` makes from the gesture's points; None when the gesture is too
    small to mean a shape (a stray click with the ruler, a freehand scribble of one point)."""
    points = [np.asarray(p, dtype=float) for p in points_lps]
    if not points:
        return None
    right = np.asarray(right_lps, dtype=float)
    down = np.asarray(down_lps, dtype=float)
    first, last = points[0], points[-1]
    if tool is Tool.POINT:
        return PointMarker(label=label, position_lps=first)
    if tool is Tool.RULER:
        if np.linalg.norm(last - first) < MIN_SIZE_MM:
            return None
        return Ruler(label=label, start_lps=first, end_lps=last)
    if tool is Tool.ANGLE:
        if len(points) < 3:
            return None
        return Angle(label=label, first_lps=points[0], vertex_lps=points[1], second_lps=points[2])
    if tool in (Tool.RECTANGLE, Tool.ELLIPSE):
        diagonal = last - first
        half_width = abs(float(diagonal @ right)) / 2
        half_height = abs(float(diagonal @ down)) / 2
        if min(half_width, half_height) < MIN_SIZE_MM:
            return None
        cls = RectangleRoi if tool is Tool.RECTANGLE else EllipseRoi
        return cls(
            label=label,
            center_lps=(first + last) / 2,
            axis_u_lps=right,
            axis_v_lps=down,
            half_width_mm=half_width,
            half_height_mm=half_height,
        )
    if tool is Tool.FREEHAND:
        distinct = [points[0]]
        for point in points[1:]:
            if np.linalg.norm(point - distinct[-1]) >= MIN_SIZE_MM:
                distinct.append(point)
        if len(distinct) < 3:
            return None
        roi = FreehandRoi(label=label, axis_u_lps=right, axis_v_lps=down, vertices_lps=np.array(distinct))
        return roi if roi.area_mm2 > MIN_SIZE_MM**2 else None
    return None


def next_free_label(label: str, used: set[str]) -> str:
    """The label a new annotation gets: ``label`` itself when no annotation has it yet, else
    the next number ("lesion 1" taken: "lesion 2"; "lesion" taken: "lesion 2"). Empty stays
    empty (the measurement alone is drawn)."""
    label = label.strip()
    if not label or label not in used:
        return label
    stem, _, number = label.rpartition(" ")
    if stem and number.isdigit():
        base, count = stem, int(number)
    else:
        base, count = label, 2  # "lesion" is the first; the next is "lesion 2"
    while f"{base} {count}" in used:
        count += 1
    return f"{base} {count}"

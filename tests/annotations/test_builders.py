"""Tool gestures on a view plane become the right annotation, in world coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from app.annotations.builders import Tool, build_annotation
from app.annotations.shapes import EllipseRoi, FreehandRoi, RectangleRoi, Ruler

# Coronal view: screen right = patient left (+x), screen down = inferior (-z).
RIGHT, DOWN = np.array([1.0, 0, 0]), np.array([0, 0, -1.0])


def test_rectangle_from_a_drag_in_a_coronal_view():
    a, b = np.array([10.0, 5.0, 20.0]), np.array([14.0, 5.0, 14.0])
    rectangle = build_annotation(Tool.RECTANGLE, [a, b], RIGHT, DOWN, "box")
    assert isinstance(rectangle, RectangleRoi)
    np.testing.assert_allclose(rectangle.center_lps, [12, 5, 17])
    assert (rectangle.half_width_mm, rectangle.half_height_mm) == (2.0, 3.0)
    np.testing.assert_allclose(np.abs(rectangle.normal_lps), [0, 1, 0])
    assert rectangle.label == "box"


def test_each_tool_and_degenerate_gestures():
    p = np.array([1.0, 2.0, 3.0])
    assert build_annotation(Tool.POINT, [p], RIGHT, DOWN).position_lps.tolist() == [1, 2, 3]
    assert isinstance(build_annotation(Tool.RULER, [p, p + [3, 0, 4]], RIGHT, DOWN), Ruler)
    assert build_annotation(Tool.RULER, [p, p], RIGHT, DOWN) is None
    angle = build_annotation(Tool.ANGLE, [p + [1, 0, 0], p, p + [0, 0, 1]], RIGHT, DOWN)
    assert angle.angle_deg == pytest.approx(90)
    assert build_annotation(Tool.ANGLE, [p, p], RIGHT, DOWN) is None
    assert isinstance(build_annotation(Tool.ELLIPSE, [p, p + [2, 0, 2]], RIGHT, DOWN), EllipseRoi)
    assert build_annotation(Tool.ELLIPSE, [p, p + [2, 0, 0]], RIGHT, DOWN) is None  # flat
    path = [p, p + [4, 0, 0], p + [4, 0, -4], p + [4, 0, -4]]
    freehand = build_annotation(Tool.FREEHAND, path, RIGHT, DOWN)
    assert isinstance(freehand, FreehandRoi) and len(freehand.vertices_lps) == 3
    assert freehand.area_mm2 == pytest.approx(8.0)
    assert build_annotation(Tool.FREEHAND, [p, p], RIGHT, DOWN) is None
    assert build_annotation(Tool.NAVIGATE, [p], RIGHT, DOWN) is None


def test_a_label_in_use_gets_the_next_number():
    from app.annotations.builders import next_free_label

    assert next_free_label("lesion 1", set()) == "lesion 1"
    assert next_free_label("lesion 1", {"lesion 1"}) == "lesion 2"
    assert next_free_label("lesion 1", {"lesion 1", "lesion 2", "lesion 3"}) == "lesion 4"
    assert next_free_label("lesion", {"lesion"}) == "lesion 2"
    assert next_free_label("  ", {""}) == ""

"""Undo/redo of every edit: add, remove, move, paint and erase."""

from __future__ import annotations

import numpy as np
import pytest

from app.annotations.commands import (
    AddAnnotation,
    CommandStack,
    PaintMask,
    RemoveAnnotation,
    ReplaceAnnotation,
)
from app.annotations.document import AnnotationDocument
from app.annotations.label_mask import LabelMask
from app.annotations.shapes import PointMarker, Ruler
from app.core.volume import Geometry


def test_add_remove_replace_undo_redo():
    document = AnnotationDocument()
    stack = CommandStack()
    notified = []
    document.changed.connect(lambda: notified.append(1))
    first = PointMarker(label="a", position_lps=[1, 2, 3])
    second = Ruler(label="r", start_lps=[0, 0, 0], end_lps=[1, 0, 0])
    stack.push(AddAnnotation(document, first))
    stack.push(AddAnnotation(document, second))
    stack.push(ReplaceAnnotation(document, first.moved([10, 0, 0])))
    stack.push(RemoveAnnotation(document, second.annotation_id))
    assert document.ids() == [first.annotation_id]
    assert document.get(first.annotation_id).position_lps[0] == 11
    assert stack.undo_text() == "remove annotation"
    stack.undo()
    assert document.ids() == [first.annotation_id, second.annotation_id]
    stack.undo()
    assert document.get(first.annotation_id).position_lps[0] == 1
    stack.undo()
    stack.undo()
    assert len(document) == 0 and not stack.can_undo()
    assert stack.redo() and stack.redo() and stack.redo()
    assert document.get(first.annotation_id).position_lps[0] == 11
    assert notified


def test_new_edit_clears_redo():
    document = AnnotationDocument()
    stack = CommandStack()
    stack.push(AddAnnotation(document, PointMarker()))
    stack.undo()
    assert stack.can_redo()
    stack.push(AddAnnotation(document, PointMarker()))
    assert not stack.can_redo()


def test_brush_and_eraser_undo_exactly():
    geometry = Geometry.identity((1.0, 1.0, 1.0))
    mask = LabelMask.empty_like(geometry, (5, 20, 20))
    document = AnnotationDocument()
    stack = CommandStack()
    axial_u, axial_v = [1, 0, 0], [0, 1, 0]
    disk = mask.disk_indices([10, 10, 2], 3.0, axial_u, axial_v)
    stack.push(PaintMask(document, mask, disk, 1))
    assert document.mask is mask
    painted = mask.labels.copy()
    assert mask.voxel_count() == 29  # lattice points with i^2 + j^2 <= 9
    assert set(np.argwhere(painted)[:, 0]) == {2}
    eraser = mask.disk_indices([12, 10, 2], 1.0, axial_u, axial_v)
    stack.push(PaintMask(document, mask, eraser, 0))
    assert mask.voxel_count() == 29 - 5  # the 5-voxel eraser disk lies inside the painted one
    stack.undo()
    np.testing.assert_array_equal(mask.labels, painted)
    stack.undo()
    assert mask.voxel_count() == 0 and document.mask is None
    stack.redo()
    np.testing.assert_array_equal(mask.labels, painted)


def test_a_brush_stroke_undoes_as_one_step():
    geometry = Geometry.identity((1.0, 1.0, 1.0))
    mask = LabelMask.empty_like(geometry, (3, 20, 20))
    document = AnnotationDocument()
    stack = CommandStack()
    axes = ([1, 0, 0], [0, 1, 0])
    stroke = PaintMask(document, mask, mask.disk_indices([5, 5, 1], 2.0, *axes), 1)
    stack.push(stroke)
    for x in (7, 9, 11):
        stroke.extend(mask.disk_indices([x, 5, 1], 2.0, *axes))
    painted = mask.labels.copy()
    assert mask.labels[1, 5, 13] == 1 and mask.labels[1, 5, 2] == 0
    stack.undo()
    assert mask.voxel_count() == 0
    stack.redo()
    np.testing.assert_array_equal(mask.labels, painted)


def test_label_mask_volume_in_millilitres_on_anisotropic_voxels():
    geometry = Geometry.identity((0.5, 0.8, 2.5))  # 1 mm^3 per voxel
    mask = LabelMask.empty_like(geometry, (4, 30, 30))
    mask.labels[1, 2:12, 3:13] = 1  # 100 voxels
    mask.labels[2, 0:5, 0:4] = 2  # 20 voxels of another label
    assert mask.volume_ml() == pytest.approx(0.120)
    assert mask.volume_ml(1) == pytest.approx(0.100) and mask.volume_ml(2) == pytest.approx(0.020)
    assert LabelMask.empty_like(geometry, (2, 2, 2)).volume_ml() == 0.0

"""Every annotation type survives a JSON round trip exactly; measurements; bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.annotations.document import AnnotationDocument
from app.annotations.label_mask import LabelMask
from app.annotations.shapes import (
    ANNOTATION_TYPES,
    Angle,
    EllipseRoi,
    FreehandRoi,
    PointMarker,
    RectangleRoi,
    Ruler,
)
from app.annotations.sidecar import (
    AnnotationFileError,
    document_from_dict,
    load_annotations,
    save_annotations,
    sidecar_path_for,
)
from app.core.volume import Geometry

OBLIQUE_U = np.array([np.cos(0.3), np.sin(0.3), 0.0])
OBLIQUE_V = np.array([0.0, 0.0, -1.0])


def one_of_each():
    return [
        PointMarker(label="lesion 1", position_lps=[1.1, -2.2, 3.3000000000000003]),
        Ruler(label="d", start_lps=[0, 0, 0], end_lps=[3, 4, 0]),
        Angle(label="a", first_lps=[1, 0, 0], vertex_lps=[0, 0, 0], second_lps=[1, 1, 0]),
        RectangleRoi(label="r", center_lps=[5, 6, 7], half_width_mm=2.5, half_height_mm=1.25),
        EllipseRoi(
            label="e",
            center_lps=[1, 2, 3],
            axis_u_lps=OBLIQUE_U,
            axis_v_lps=OBLIQUE_V,
            half_width_mm=4,
            half_height_mm=2,
        ),
        FreehandRoi(label="f", vertices_lps=[[0, 0, 5], [10, 0, 5], [10, 10, 5], [0, 10, 5.0]]),
    ]


def test_one_of_each_covers_every_type():
    assert {a.kind for a in one_of_each()} == set(ANNOTATION_TYPES)


def test_every_type_round_trips_exactly(tmp_path):
    document = AnnotationDocument(reference={"name": "t1", "frame_of_reference_uid": "1.2.3"})
    for annotation in one_of_each():
        document.insert(annotation)
    mask = LabelMask.empty_like(Geometry.identity((0.5, 0.5, 2.0)), (3, 4, 5))
    mask.labels[1, 2, 1:4] = 1
    mask.labels[2, 0, 0] = 2
    mask.names = {1: "lesion", 2: "edema"}
    document.mask = mask
    path = save_annotations(document, tmp_path / "x.annotations.json")
    reopened = load_annotations(path)
    assert reopened.ids() == document.ids()
    for original, loaded in zip(document, reopened, strict=True):
        assert type(loaded) is type(original)
        assert loaded.same_as(original), (original.to_dict(), loaded.to_dict())
    assert reopened.reference == document.reference
    np.testing.assert_array_equal(reopened.mask.labels, mask.labels)
    assert reopened.mask.names == mask.names
    assert reopened.mask.geometry.allclose(mask.geometry, atol_mm=0)


def test_measurements():
    ruler = Ruler(start_lps=[0, 0, 0], end_lps=[3, 4, 12])
    assert ruler.length_mm == pytest.approx(13.0)
    angle = Angle(first_lps=[2, 0, 0], vertex_lps=[0, 0, 0], second_lps=[5, 5, 0])
    assert angle.angle_deg == pytest.approx(45.0)
    assert RectangleRoi(half_width_mm=2, half_height_mm=3).area_mm2 == pytest.approx(24.0)
    assert EllipseRoi(half_width_mm=2, half_height_mm=3).area_mm2 == pytest.approx(6 * np.pi)
    square = FreehandRoi(vertices_lps=[[0, 0, 0], [0, 10, 0], [10, 10, 0], [10, 0, 0]])
    assert square.area_mm2 == pytest.approx(100.0)


def test_moved_keeps_id_and_axes():
    ellipse = one_of_each()[4]
    moved = ellipse.moved([1, 2, 3])
    assert moved.annotation_id == ellipse.annotation_id
    np.testing.assert_allclose(moved.center_lps, ellipse.center_lps + [1, 2, 3])
    np.testing.assert_allclose(moved.axis_u_lps, ellipse.axis_u_lps)
    freehand = one_of_each()[5].moved([0, 0, 1])
    assert freehand.vertices_lps[:, 2].tolist() == [6, 6, 6, 6]


def test_invalid_shapes_are_refused():
    with pytest.raises(ValueError, match="perpendicular"):
        RectangleRoi(axis_u_lps=[1, 0, 0], axis_v_lps=[1, 1, 0])
    with pytest.raises(ValueError, match="three"):
        FreehandRoi(vertices_lps=[[0, 0, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match="finite"):
        PointMarker(position_lps=[np.nan, 0, 0])


def test_bad_files_give_clear_errors(tmp_path):
    broken = tmp_path / "broken.annotations.json"
    broken.write_text("{not json")
    with pytest.raises(AnnotationFileError, match="not JSON"):
        load_annotations(broken)
    newer = tmp_path / "newer.annotations.json"
    newer.write_text(json.dumps({"schema": "synthview-annotations", "version": 99, "annotations": []}))
    with pytest.raises(AnnotationFileError, match="newer"):
        load_annotations(newer)
    wrong = tmp_path / "wrong.annotations.json"
    wrong.write_text(
        json.dumps(
            {
                "schema": "synthview-annotations",
                "version": 1,
                "coordinate_system": "LPS_mm",
                "annotations": [{"kind": "ruler", "annotation_id": "a", "label": "", "start_lps": [1, 2]}],
            }
        )
    )
    with pytest.raises(AnnotationFileError, match="annotations/0/start_lps"):
        load_annotations(wrong)
    with pytest.raises(AnnotationFileError, match="cannot be read"):
        load_annotations(tmp_path / "missing.json")


def test_sidecar_names():
    assert sidecar_path_for("/d/scan.nii.gz").name == "scan.annotations.json"
    assert sidecar_path_for("/d/series_folder").name == "series_folder.annotations.json"


def test_a_damaged_label_mask_in_a_sidecar_is_a_clear_error_not_a_crash():
    """Every damaged mask entry is an AnnotationFileError naming the file (the viewer shows it in
    a message box); an IndexError / ValueError escaped from four of them."""
    base = {"schema": "synthview-annotations", "version": 1, "coordinate_system": "LPS_mm", "annotations": []}
    mask = {
        "shape_kji": [1, 1, 2],
        "origin_lps_mm": [0, 0, 0],
        "spacing_mm": [1, 1, 1],
        "direction": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        "names": {"1": "lesion"},
        "runs": [[1, 2]],
    }
    assert document_from_dict({**base, "mask": mask}).mask.voxel_count() == 2  # the intact one loads
    damaged = [
        {"runs": [[1]]},
        {"names": {"lesion": "1"}},
        {"direction": [[1, 0, 0], [1, 0, 0], [0, 0, 1]]},
        {"spacing_mm": [0, 1, 1]},
    ]
    for change in damaged:
        with pytest.raises(AnnotationFileError, match="scan.annotations.json"):
            document_from_dict({**base, "mask": {**mask, **change}}, "scan.annotations.json")

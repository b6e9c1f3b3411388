"""Save and load an AnnotationDocument as a JSON sidecar with a versioned schema.

Files reopen exactly: coordinates are written as JSON floats (Python's repr round-trips every
float64), ids and labels are kept, and the label mask is run-length encoded on its grid. The
schema is kept here (never fetched); a file from a newer schema version is refused with a
clear message instead of being half-read.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app.annotations.document import AnnotationDocument
from app.annotations.label_mask import LabelMask
from app.annotations.shapes import ANNOTATION_TYPES, annotation_from_dict
from app.core.volume import Geometry
from app.io.atomic import write_text_atomic

SCHEMA_NAME = "synthview-annotations"
SCHEMA_VERSION = 1
SIDECAR_SUFFIX = ".annotations.json"

_VECTOR = {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3}

SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "SynthView annotations",
    "type": "object",
    "required": ["schema", "version", "coordinate_system", "annotations"],
    "properties": {
        "schema": {"const": SCHEMA_NAME},
        "version": {"type": "integer", "minimum": 1},
        "coordinate_system": {"const": "LPS_mm"},
        "reference": {"type": "object"},
        "annotations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kind", "annotation_id", "label"],
                "properties": {
                    "kind": {"enum": sorted(ANNOTATION_TYPES)},
                    "annotation_id": {"type": "string", "minLength": 1},
                    "label": {"type": "string"},
                    "position_lps": _VECTOR,
                    "start_lps": _VECTOR,
                    "end_lps": _VECTOR,
                    "first_lps": _VECTOR,
                    "vertex_lps": _VECTOR,
                    "second_lps": _VECTOR,
                    "center_lps": _VECTOR,
                    "axis_u_lps": _VECTOR,
                    "axis_v_lps": _VECTOR,
                    "half_width_mm": {"type": "number", "exclusiveMinimum": 0},
                    "half_height_mm": {"type": "number", "exclusiveMinimum": 0},
                    "vertices_lps": {"type": "array", "items": _VECTOR, "minItems": 3},
                },
            },
        },
        "mask": {
            "type": ["object", "null"],
            "required": ["shape_kji", "origin_lps_mm", "spacing_mm", "direction", "names", "runs"],
            "properties": {
                "shape_kji": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1},
                    "minItems": 3,
                    "maxItems": 3,
                },
                "origin_lps_mm": _VECTOR,
                "spacing_mm": _VECTOR,
                "direction": {"type": "array", "items": _VECTOR, "minItems": 3, "maxItems": 3},
                "names": {"type": "object"},
                "runs": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
            },
        },
    },
}


class AnnotationFileError(ValueError):
    """An annotation file that cannot be read (message names the file and the problem)."""


def sidecar_path_for(image_path: str | Path) -> Path:
    """``scan.nii.gz`` -> ``scan.annotations.json``; a DICOM folder -> ``folder.annotations.json``."""
    path = Path(image_path)
    name = path.name
    for suffix in (".nii.gz", ".nii", ".dcm"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(name + SIDECAR_SUFFIX)


def document_to_dict(document: AnnotationDocument) -> dict:
    data = {
        "schema": SCHEMA_NAME,
        "version": SCHEMA_VERSION,
        "coordinate_system": "LPS_mm",
        "reference": document.reference,
        "annotations": [annotation.to_dict() for annotation in document],
        "mask": _mask_to_dict(document.mask) if document.mask is not None else None,
    }
    return data


def document_from_dict(data: dict, source: str = "annotations") -> AnnotationDocument:
    if isinstance(data, dict) and isinstance(data.get("version"), int) and data["version"] > SCHEMA_VERSION:
        raise AnnotationFileError(
            f"{source}: written by a newer SynthView (schema version {data['version']},"
            f" this one reads up to {SCHEMA_VERSION})"
        )
    import jsonschema  # here: 0.11 s of import the viewer's annotation dock does not need at start

    try:
        jsonschema.validate(data, SCHEMA)
    except jsonschema.ValidationError as error:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise AnnotationFileError(
            f"{source}: not a valid annotation file ({where}: {error.message})"
        ) from None
    document = AnnotationDocument(reference=data.get("reference") or {})
    for item in data["annotations"]:
        try:
            document.insert(annotation_from_dict(item))
        except (TypeError, ValueError) as error:
            raise AnnotationFileError(f"{source}: annotation {item.get('annotation_id')}: {error}") from None
    if data.get("mask"):
        document.mask = _mask_from_dict(data["mask"], source)
    return document


def save_annotations(document: AnnotationDocument, path: str | Path, measurements: dict | None = None) -> Path:
    """Write the sidecar; an export adds the derived ``measurements`` block (ignored on load)."""
    data = document_to_dict(document)
    if measurements is not None:
        data["measurements"] = measurements
    return write_text_atomic(path, json.dumps(data, indent=1))


def load_annotations(path: str | Path) -> AnnotationDocument:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise AnnotationFileError(f"{path.name}: cannot be read ({error.strerror})") from None
    except ValueError as error:
        raise AnnotationFileError(f"{path.name}: not JSON ({error})") from None
    return document_from_dict(data, path.name)


def _mask_to_dict(mask: LabelMask) -> dict:
    flat = mask.labels.ravel()
    change = np.flatnonzero(np.diff(flat)) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [flat.size]]))
    runs = [[int(flat[s]), int(n)] for s, n in zip(starts, lengths, strict=True)]
    return {
        "shape_kji": list(mask.labels.shape),
        "origin_lps_mm": mask.geometry.origin_lps_mm.tolist(),
        "spacing_mm": mask.geometry.spacing_mm.tolist(),
        "direction": mask.geometry.direction.tolist(),
        "names": {str(k): v for k, v in mask.names.items()},
        "runs": runs,
    }


def _mask_from_dict(data: dict, source: str) -> LabelMask:
    try:
        return _decode_mask(data, source)
    except AnnotationFileError:
        raise
    except (IndexError, TypeError, ValueError) as error:  # short runs, label names, a bad grid
        raise AnnotationFileError(f"{source}: the label mask cannot be read ({error})") from None


def _decode_mask(data: dict, source: str) -> LabelMask:
    shape = tuple(data["shape_kji"])
    values = np.array([run[0] for run in data["runs"]], dtype=np.int64)
    lengths = np.array([run[1] for run in data["runs"]], dtype=np.int64)
    if lengths.sum() != int(np.prod(shape)) or np.any(lengths <= 0) or np.any((values < 0) | (values > 255)):
        raise AnnotationFileError(f"{source}: the label mask runs do not fill its {shape} grid")
    labels = np.repeat(values.astype(np.uint8), lengths).reshape(shape)
    geometry = Geometry(
        np.array(data["origin_lps_mm"]), np.array(data["spacing_mm"]), np.array(data["direction"])
    )
    names = {int(k): str(v) for k, v in data["names"].items()}
    return LabelMask(geometry, labels, names)

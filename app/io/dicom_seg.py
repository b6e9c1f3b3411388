"""Label masks as DICOM Segmentation (binary SEG, one segment per label) with highdicom.

A SEG references the source images frame by frame, so the mask must lie on the grid of the
series it was painted on: we check that (same frame of reference, orientation, spacing and
slice positions) and refuse with a clear message otherwise rather than write a misplaced SEG.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from app import __version__
from app.core.volume import Geometry
from app.io.atomic import atomic_file
from app.io.deidentify import deidentify_dataset
from app.io.dicom_export import MANUFACTURER, ExportError, marked_description, with_type2_study_attributes


def write_label_seg(
    labels_kji: np.ndarray,
    geometry: Geometry,
    source_images: Sequence[Dataset],
    out_path: str | Path,
    names: dict[int, str] | None = None,
    deidentify: bool = False,
) -> Path:
    """Write ``labels_kji`` (uint8, 0 = background) as a binary SEG over ``source_images``."""
    names = names or {}
    present = [int(v) for v in np.unique(labels_kji) if v != 0]
    if not present:
        raise ExportError("the label mask is empty; there is nothing to export as SEG")
    ordered = with_type2_study_attributes(_sorted_by_position(source_images))
    _check_same_grid(geometry, labels_kji.shape, ordered)
    # highdicom wants segment numbers 1..n; keep the user's label order.
    label_map = np.zeros(labels_kji.shape, dtype=np.uint8)
    descriptions = []
    for number, label in enumerate(present, start=1):
        label_map[labels_kji == label] = number
        name = names.get(label, f"label {label}")
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=name[:64],
                segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                segmented_property_type=codes.SCT.Lesion if "lesion" in name.lower() else codes.SCT.Tissue,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            )
        )
    segmentation = hd.seg.Segmentation(
        source_images=ordered,
        pixel_array=label_map,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=9201,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name="SynthView",
        software_versions=str(__version__),
        device_serial_number="0",
        series_description=marked_description("SynthView label mask", ordered),
    )
    if deidentify:
        # A copy: highdicom shares sequence items with the source datasets given to it.
        segmentation = deidentify_dataset(copy.deepcopy(segmentation), keep=("SeriesDescription",))
    out_path = Path(out_path)
    with atomic_file(out_path) as partial:
        segmentation.save_as(partial, enforce_file_format=True)
    return out_path


def _sorted_by_position(source_images: Sequence[Dataset]) -> list[Dataset]:
    if not source_images:
        raise ExportError("a SEG needs the source DICOM images the mask was painted on")
    row, column = np.asarray(source_images[0].ImageOrientationPatient, float).reshape(2, 3)
    normal = np.cross(row, column)
    return sorted(source_images, key=lambda d: float(np.asarray(d.ImagePositionPatient, float) @ normal))


def _check_same_grid(geometry: Geometry, shape_kji: tuple[int, ...], ordered: list[Dataset]) -> None:
    first = ordered[0]
    problems = []
    if len(ordered) != shape_kji[0] or (int(first.Rows), int(first.Columns)) != tuple(shape_kji[1:]):
        problems.append(f"mask {shape_kji} vs series {len(ordered)} x {first.Rows} x {first.Columns}")
    else:
        orientation = np.asarray(first.ImageOrientationPatient, float)
        if not np.allclose(orientation, geometry.direction[:, :2].T.ravel(), atol=1e-4):
            problems.append("orientation differs")
        row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
        if not np.allclose([column_spacing, row_spacing], geometry.spacing_mm[:2], atol=1e-3):
            problems.append("pixel spacing differs")
        positions = np.array([np.asarray(d.ImagePositionPatient, float) for d in ordered])
        expected = geometry.lps_from_index(
            np.column_stack([np.zeros((len(ordered), 2)), np.arange(len(ordered))])
        )
        if not np.allclose(positions, expected, atol=1e-2):
            problems.append("slice positions differ")
    if problems:
        raise ExportError("the mask is not on the grid of the source series (" + "; ".join(problems) + ")")

"""Measurements as a DICOM Comprehensive 3D SR following TID 1500 (Measurement Report).

Each annotation becomes one Planar ROI measurement group (TID 1410) whose region is a
SCOORD3D in the series' frame of reference: our annotations are already world LPS points,
which is exactly what SCOORD3D holds, so nothing is lost. Rulers carry their length, angles
their angle, regions their area and the ROI statistics of the measured series (mean, SD,
min, max; HU for CT). The SR belongs to the study of the series it measures (``evidence``).
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

from app.annotations.document import AnnotationDocument
from app.annotations.roi_stats import RoiStatistics, roi_statistics
from app.annotations.shapes import Angle, Annotation, EllipseRoi, PlanarRegion, PointMarker, Ruler
from app.core.volume import Volume
from app.io.atomic import atomic_file
from app.io.deidentify import deidentify_dataset
from app.io.dicom_export import MANUFACTURER, ExportError, marked_description, with_type2_study_attributes

_MM = hd.sr.CodedConcept("mm", "UCUM", "millimeter")
_MM2 = hd.sr.CodedConcept("mm2", "UCUM", "square millimeter")
_DEGREES = hd.sr.CodedConcept("deg", "UCUM", "degree")
_HU = hd.sr.CodedConcept("[hnsf'U]", "UCUM", "Hounsfield unit")
_NO_UNITS = hd.sr.CodedConcept("1", "UCUM", "no units")
_PROCEDURES = {"CT": codes.LN.CTUnspecifiedBodyRegion, "MR": codes.LN.MRIUnspecifiedBodyRegion}


def write_measurement_sr(
    document: AnnotationDocument,
    evidence: Sequence[Dataset],
    out_path: str | Path,
    volume: Volume | None = None,
    deidentify: bool = False,
) -> Path:
    """Write the document's measurements as a TID 1500 SR next to the series ``evidence``.

    ``evidence`` are the measured series' datasets (headers suffice); ``volume`` is that series
    as a Volume, used for the ROI statistics (omitted: geometry-only measurements).
    """
    if not evidence:
        raise ExportError("an SR needs the measured DICOM series (evidence) to refer to")
    evidence = with_type2_study_attributes(list(evidence))
    frame_of_reference_uid = str(evidence[0].get("FrameOfReferenceUID", ""))
    if not frame_of_reference_uid:
        raise ExportError("the measured series has no Frame of Reference UID; SCOORD3D needs one")
    groups = [_measurement_group(annotation, frame_of_reference_uid, volume) for annotation in document]
    if not groups:
        raise ExportError("there are no annotations to export")
    observer = hd.sr.ObserverContext(
        observer_type=codes.cid270.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(), name=MANUFACTURER
        ),
    )
    modality = str(evidence[0].get("Modality", "")).upper()
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=_PROCEDURES.get(modality, codes.SCT.ImagingProcedure),
        imaging_measurements=groups,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=list(evidence),
        content=report,
        series_instance_uid=generate_uid(),
        series_number=9101,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
    )
    sr.SeriesDescription = marked_description("SynthView measurements", evidence)
    if deidentify:
        # A copy: highdicom shares sequence items with the source datasets given to it.
        sr = deidentify_dataset(copy.deepcopy(sr), keep=("SeriesDescription",))
    out_path = Path(out_path)
    with atomic_file(out_path) as partial:
        sr.save_as(partial, enforce_file_format=True)
    return out_path


def _measurement_group(
    annotation: Annotation, frame_of_reference_uid: str, volume: Volume | None
) -> hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    graphic_type, points = _graphic(annotation)
    region = hd.sr.ImageRegion3D(graphic_type, points, frame_of_reference_uid)
    tracking = hd.sr.TrackingIdentifier(
        uid=generate_uid(), identifier=(annotation.label or annotation.kind)[:64]
    )
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking,
        referenced_region=region,
        finding_type=codes.DCM.Finding,
        measurements=_measurements(annotation, volume),
    )


def _graphic(annotation: Annotation) -> tuple[str, np.ndarray]:
    if isinstance(annotation, PointMarker):
        return "POINT", annotation.position_lps.reshape(1, 3)
    if isinstance(annotation, Ruler):
        return "POLYLINE", np.stack([annotation.start_lps, annotation.end_lps])
    if isinstance(annotation, Angle):
        return "POLYLINE", np.stack([annotation.first_lps, annotation.vertex_lps, annotation.second_lps])
    if isinstance(annotation, EllipseRoi):
        return "ELLIPSE", annotation.axis_endpoints_lps()
    if isinstance(annotation, PlanarRegion):
        outline = annotation.outline_lps()
        return "POLYGON", np.concatenate([outline, outline[:1]])  # closed: first point repeated
    raise ExportError(f"no SR representation for annotation kind {annotation.kind!r}")


def _measurements(annotation: Annotation, volume: Volume | None) -> list[hd.sr.Measurement]:
    if isinstance(annotation, Ruler):
        return [hd.sr.Measurement(codes.SCT.Length, annotation.length_mm, _MM)]
    if isinstance(annotation, Angle):
        return [hd.sr.Measurement(codes.DCM.Angle, annotation.angle_deg, _DEGREES)]
    if not isinstance(annotation, PlanarRegion):
        return []
    measurements = [hd.sr.Measurement(codes.SCT.Area, annotation.area_mm2, _MM2)]
    if volume is not None:
        stats = roi_statistics(annotation, volume)
        if stats.voxel_count > 0:
            measurements.extend(_statistics_measurements(stats))
    return measurements


def _statistics_measurements(stats: RoiStatistics) -> list[hd.sr.Measurement]:
    unit = _HU if stats.units == "HU" else _NO_UNITS
    return [
        hd.sr.Measurement(codes.SCT.Mean, stats.mean, unit),
        hd.sr.Measurement(codes.SCT.StandardDeviation, stats.sd, unit),
        hd.sr.Measurement(codes.SCT.Minimum, stats.minimum, unit),
        hd.sr.Measurement(codes.SCT.Maximum, stats.maximum, unit),
    ]

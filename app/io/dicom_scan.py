"""Scan files and folders for DICOM images, reading headers only, and group them into series.

Each file is parsed up to (not including) its pixel data, so a scan reads a few kilobytes per
file: explicit VR little endian files through the fast reader in ``dicom_header``, anything
else through pydicom with a fixed set of tags. Files are grouped study -> series; a DICOM series that mixes
orientations, image sizes or (overlapping) acquisitions is split into parts that each make one
volume. Frames are sorted along the slice normal by ImagePositionPatient, and the spacing
between them is checked (uneven spacing, missing slices); a gantry tilt is noted with the
correction the loader will apply (``app.core.tilt``). Anything that is not a
readable DICOM image is skipped and reported with a reason; nothing here raises for bad files.
"""

from __future__ import annotations

import os
import warnings as py_warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from app.core.messages import one_line
from app.core.provenance import Provenance
from app.core.study import FrameRef, ScanResult, SeriesInfo, SkippedFile, StudyInfo
from app.core.tilt import plan_tilt_correction, stack_tilt_deg
from app.io import dicom_checks
from app.io.candidate_files import iter_candidate_files
from app.io.dicom_header import read_explicit_le_header
from app.io.dicom_marking import SyntheticMarking, read_marking, series_marking
from app.io.dicom_provenance import TAGS as PROVENANCE_TAGS
from app.io.dicom_provenance import read_provenance
from app.io.series_completeness import completeness_warnings

HEADER_TAGS = [
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "FrameOfReferenceUID",
    "Modality",
    "StudyDescription",
    "SeriesDescription",
    "PatientName",
    "PatientID",
    "StudyDate",
    "SeriesDate",
    "SeriesNumber",
    "AcquisitionNumber",
    "InstanceNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PatientOrientation",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "GantryDetectorTilt",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    # Completeness (app.io.series_completeness): the slice count SynthView records.
    "Manufacturer",
    "ImagesInAcquisition",
    "BurnedInAnnotation",  # a de-identified export of the volume is refused even without its folder
    # The synthetic marking (app.io.dicom_marking), read whatever the transfer syntax.
    "ImageType",
    "SyntheticData",
    "DerivationDescription",
    "DerivationCodeSequence",
    "ContributingEquipmentSequence",
    "RealWorldValueMappingSequence",  # MR values scaled without a Modality LUT
    # RT Dose: frame positions, scale and units of the dose grid.
    "GridFrameOffsetVector",
    "DoseGridScaling",
    "DoseUnits",
    "DoseType",
    "ModalityLUTSequence",
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
    # Inside the functional groups (the tag filter applies to nested items too).
    "PlanePositionSequence",
    "PlaneOrientationSequence",
    "PixelMeasuresSequence",
    "PixelValueTransformationSequence",
]

# The header tags and SynthView's provenance block (private: no keyword).
_READ_TAGS = [*HEADER_TAGS, *PROVENANCE_TAGS]

# Uncompressed little-endian syntaxes whose pixels can be read straight into the volume array.
RAW_SYNTAXES = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}

_ORIENTATION_DECIMALS = 4  # direction cosines equal to 1e-4 belong to one stack
_SPACING_TOLERANCE = 0.01  # relative deviation of one gap from the typical gap
_TILT_TOLERANCE_DEG = 0.05


@dataclass
class _Header:
    """What the scanner keeps of one file's header."""

    path: str
    dataset: pydicom.Dataset
    pixel_offset: int
    transfer_syntax_uid: str


def dicomdir_files(dicomdir_path: Path) -> tuple[list[Path], list[SkippedFile]]:
    """The image files a DICOMDIR references (paths resolved beside it)."""
    skipped: list[SkippedFile] = []
    try:
        dicomdir = pydicom.dcmread(dicomdir_path)
        records = dicomdir.DirectoryRecordSequence
    except Exception as error:  # noqa: BLE001 - any unreadable DICOMDIR: fall back to walking
        return [], [SkippedFile(str(dicomdir_path), f"unreadable DICOMDIR ({error})")]
    files = []
    for record in records:
        ids = record.get("ReferencedFileID")
        if not ids:
            continue
        parts = [ids] if isinstance(ids, str) else list(ids)
        file_path = dicomdir_path.parent.joinpath(*parts)
        if file_path.is_file():
            files.append(file_path)
        else:
            skipped.append(SkippedFile(str(file_path), "listed in the DICOMDIR but missing"))
    return files, skipped


def read_header(path: Path) -> _Header:
    """Parse one file's header up to its pixel data. Raises ``ValueError`` for non-DICOM files."""
    with open(path, "rb") as handle:
        fast = read_explicit_le_header(handle)
        if fast is not None:
            dataset, pixel_offset, syntax = fast
            return _Header(str(path), dataset, pixel_offset, syntax)
        handle.seek(0)
        try:
            dataset = pydicom.dcmread(handle, stop_before_pixels=True, specific_tags=_READ_TAGS)
        except InvalidDicomError:
            # No preamble: still DICOM if it starts with a group 0x0008 element.
            handle.seek(0)
            if handle.read(2) not in (b"\x08\x00", b"\x02\x00"):
                raise ValueError("not a DICOM file") from None
            handle.seek(0)
            dataset = pydicom.dcmread(handle, stop_before_pixels=True, specific_tags=_READ_TAGS, force=True)
        # The parser stops at the PixelData tag (or at the end of the file).
        pixel_offset = handle.tell()
    meta = getattr(dataset, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not syntax:
        syntax = ImplicitVRLittleEndian if dataset.is_implicit_VR else ExplicitVRLittleEndian
    return _Header(str(path), dataset, pixel_offset, syntax)


def scan(path: str | Path, recursive: bool = True) -> ScanResult:
    """Studies and series found in a DICOM file or folder (DICOMDIR when present; sub-folders
    too unless ``recursive`` is False)."""
    with py_warnings.catch_warnings():
        py_warnings.simplefilter("ignore")  # pydicom's notes on odd values; problems are reported
        return _scan(Path(path), recursive)


def _scan(path: Path, recursive: bool = True) -> ScanResult:
    result = ScanResult()
    if path.is_dir() and (path / "DICOMDIR").is_file():
        files, skipped = dicomdir_files(path / "DICOMDIR")
        result.skipped.extend(skipped)
        if not files:
            files = [f for f in iter_candidate_files(path, recursive) if f.name != "DICOMDIR"]
    else:
        files = list(iter_candidate_files(path, recursive))
    headers = []
    for file_path in files:
        try:
            header = read_header(file_path)
        except ValueError as error:
            result.skipped.append(SkippedFile(str(file_path), str(error)))
            continue
        except Exception as error:  # noqa: BLE001 - a corrupt file is reported, never fatal
            result.skipped.append(SkippedFile(str(file_path), f"unreadable DICOM header ({error})"))
            continue
        try:
            reason = _not_an_image_reason(header.dataset) or _header_fault(header)
        except Exception as error:  # noqa: BLE001 - a corrupt value is this file's fault only
            reason = f"unreadable DICOM header ({type(error).__name__}: {error})"
        if reason:
            result.skipped.append(SkippedFile(str(file_path), reason))
            continue
        headers.append(header)
    result.studies = _group(headers, result.skipped)
    return result


_NATIVE_SYNTAXES = {ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian}


def _header_fault(header: _Header) -> str:
    """Why this one file cannot be part of a volume (sizes against its bytes, geometry), or ""."""
    size = os.path.getsize(header.path)
    syntax = header.transfer_syntax_uid
    if dicom_checks.uid_fault("TransferSyntaxUID", syntax):
        return dicom_checks.uid_fault("TransferSyntaxUID", syntax)
    if header.pixel_offset > size:
        return "the header runs past the end of the file (truncated, or an element length is wrong)"
    if syntax == DeflatedExplicitVRLittleEndian:
        pixel_bytes = size * dicom_checks.DEFLATE_MAX_RATIO
    else:
        pixel_bytes = max(size - header.pixel_offset - 8, 0)  # less the PixelData element's header
    return dicom_checks.header_fault(
        lambda keyword, default: _fast(header.dataset, keyword, default),
        pixel_bytes,
        encapsulated=syntax not in _NATIVE_SYNTAXES and syntax != DeflatedExplicitVRLittleEndian,
    )


_FAST_TAGS = {keyword: (Tag(tag_for_keyword(keyword)), dictionary_VR(keyword)) for keyword in HEADER_TAGS}
_FAST_TEXT_VRS = {"UI", "CS", "DS", "IS"}


def _fast(ds: pydicom.Dataset, keyword: str, default=None):
    """``ds.get(keyword)`` for the plain values read from every file, parsed from the raw bytes.

    pydicom's general conversion (with validation) costs more than reading the header itself;
    UIDs, codes, numbers and unsigned shorts are simple enough to decode directly. Anything
    unusual falls back to pydicom.
    """
    tag, vr = _FAST_TAGS[keyword]
    element = ds.get_item(tag)
    if element is None:
        return default
    if not isinstance(element, RawDataElement):
        value = element.value
        return default if value is None or value == "" else value
    raw = element.value
    if not raw:
        return default
    if vr == "US" and element.is_little_endian and len(raw) == 2:
        return int.from_bytes(raw, "little")
    if vr in _FAST_TEXT_VRS:
        parts = raw.decode("latin-1").strip("\x00 ").split("\\")
        try:
            if vr == "DS":
                values = [float(part) for part in parts]
            elif vr == "IS":
                values = [int(float(part)) for part in parts]
            else:
                return parts[0].strip("\x00 ") if len(parts) == 1 else [p.strip() for p in parts]
        except ValueError:
            return ds.get(keyword, default)
        return values[0] if len(values) == 1 else values
    value = ds.get(keyword, default)
    return default if value is None or value == "" else value


def _not_an_image_reason(ds: pydicom.Dataset) -> str:
    if "DirectoryRecordSequence" in ds or str(_fast(ds, "SOPClassUID", "")) == "1.2.840.10008.1.3.10":
        return "DICOMDIR (media directory), not an image"
    if "Rows" not in ds or "Columns" not in ds:
        modality = _text(ds, "Modality")
        modality = modality if modality.isalnum() and len(modality) <= 16 else "unknown modality"
        return f"no image in this file ({modality} object without Rows/Columns)"
    return ""


def _group(headers: list[_Header], skipped: list[SkippedFile]) -> list[StudyInfo]:
    by_series: dict[tuple[str, str], list[_Header]] = defaultdict(list)
    for header in headers:
        ds = header.dataset
        by_series[(str(_fast(ds, "StudyInstanceUID", "")), str(_fast(ds, "SeriesInstanceUID", "")))].append(
            header
        )
    studies: dict[str, StudyInfo] = {}
    for (study_uid, series_uid), members in by_series.items():
        first = members[0].dataset
        study = studies.get(study_uid)
        if study is None:
            study = StudyInfo(
                uid=study_uid,
                description=_text(first, "StudyDescription"),
                patient_name=_text(first, "PatientName"),
                patient_id=_text(first, "PatientID"),
                date=_text(first, "StudyDate"),
            )
            studies[study_uid] = study
        study.series.extend(_series_of(series_uid, study_uid, members, skipped))
    ordered = [s for s in studies.values() if s.series]
    for study in ordered:
        study.series.sort(key=lambda s: (s.number if s.number is not None else 1 << 30, s.uid))
    return ordered


def _series_of(
    series_uid: str, study_uid: str, members: list[_Header], skipped: list[SkippedFile]
) -> list[SeriesInfo]:
    """The volumes of one DICOM series. When they cannot be built, the files that fail on their
    own are skipped with their reason and the rest is built again: one odd file never costs the
    good files of its series."""
    try:
        return _build_parts(series_uid, study_uid, members)
    except Exception as error:  # noqa: BLE001 - one odd series never stops the scan
        failure = error
    if len(members) > 1:
        alone = {header.path: _fails_alone(series_uid, study_uid, header) for header in members}
        rest = [header for header in members if not alone[header.path]]
        if 0 < len(rest) < len(members):
            skipped.extend(SkippedFile(path, reason) for path, reason in alone.items() if reason)
            try:
                return _build_parts(series_uid, study_uid, rest)
            except Exception as error:  # noqa: BLE001 - still inconsistent together
                failure, members = error, rest
    skipped.extend(SkippedFile(h.path, f"inconsistent image header ({failure})") for h in members)
    return []


def _fails_alone(series_uid: str, study_uid: str, header: _Header) -> str:
    try:
        _build_parts(series_uid, study_uid, [header])
    except Exception as error:  # noqa: BLE001 - this file's own fault
        return f"inconsistent image header ({error})"
    return ""


def _build_parts(series_uid: str, study_uid: str, members: list[_Header]) -> list[SeriesInfo]:
    parts = _split_series(members)
    built = []
    for index, part in enumerate(parts):
        uid = series_uid if index == 0 else f"{series_uid}#{index + 1}"
        series = _build_series(uid, series_uid, study_uid, part)
        if len(parts) > 1:
            series.warnings.append(
                f"DICOM series {series_uid} was split into {len(parts)} volumes "
                "(mixed orientation, image size or acquisition)"
            )
        built.append(series)
    return built


def _split_series(members: list[_Header]) -> list[list[_Header]]:
    """Parts of one DICOM series that each form a single volume."""
    groups: dict[tuple, list[_Header]] = defaultdict(list)
    for header in members:
        ds = header.dataset
        if _is_multiframe(ds):
            groups[("multiframe", header.path)].append(header)
            continue
        cosines = _floats(_fast(ds, "ImageOrientationPatient"), 6)
        orientation = (
            () if cosines is None else tuple(round(float(v), _ORIENTATION_DECIMALS) for v in cosines)
        )
        key = (
            orientation,
            int(ds.Rows),
            int(ds.Columns),
            int(_fast(ds, "SamplesPerPixel", 1) or 1),
            int(_fast(ds, "BitsAllocated", 16) or 16),
        )
        groups[key].append(header)
    parts = []
    for group in groups.values():
        parts.extend(_split_overlapping(group))
    parts.sort(key=lambda p: (_int_or(_fast(p[0].dataset, "InstanceNumber"), 0), p[0].path))
    return parts


def _is_multiframe(ds: pydicom.Dataset) -> bool:
    return _int_or(_fast(ds, "NumberOfFrames"), 1) > 1 or "PerFrameFunctionalGroupsSequence" in ds


def _split_overlapping(group: list[_Header]) -> list[list[_Header]]:
    """Split single-frame files that share positions: first by acquisition, then by repetition."""
    if len(group) < 2 or "ImagePositionPatient" not in group[0].dataset:
        return [group]
    positions = [_position_key(h) for h in group]
    if None in positions or len(set(positions)) == len(positions):
        return [group]
    by_acquisition: dict[int, list[_Header]] = defaultdict(list)
    for header in group:
        by_acquisition[_int_or(_fast(header.dataset, "AcquisitionNumber"), 0)].append(header)
    parts: list[list[_Header]] = []
    for acquisition in sorted(by_acquisition):
        members = sorted(
            by_acquisition[acquisition],
            key=lambda h: (_int_or(_fast(h.dataset, "InstanceNumber"), 0), h.path),
        )
        # Still repeated positions (dynamic or multi-echo): the n-th visit of a position -> part n.
        seen: dict[tuple, int] = defaultdict(int)
        repeats: dict[int, list[_Header]] = defaultdict(list)
        for header in members:
            key = _position_key(header)
            repeats[seen[key]].append(header)
            seen[key] += 1
        parts.extend(repeats[n] for n in sorted(repeats))
    return parts


def _position_key(header: _Header) -> tuple | None:
    position = _floats(_fast(header.dataset, "ImagePositionPatient"), 3)
    return None if position is None else tuple(round(float(v), 3) for v in position)


def _build_series(uid: str, series_uid: str, study_uid: str, part: list[_Header]) -> SeriesInfo:
    first = part[0]
    ds = first.dataset
    if len(part) == 1 and (_is_multiframe(ds)):
        frames, row_dir, col_dir, pixel_spacing, warnings = _multiframe_frames(first)
    else:
        frames, row_dir, col_dir, pixel_spacing, warnings = _single_frame_frames(part)
    normal = np.cross(row_dir, col_dir)
    frames, slice_spacing, more_warnings = _sort_and_check(frames, normal, ds)
    warnings.extend(more_warnings)
    if not (len(part) == 1 and _is_multiframe(ds)):
        warnings.extend(
            completeness_warnings(
                [_int_or(_fast(h.dataset, "InstanceNumber"), None) for h in part],
                [_int_or(_fast(h.dataset, "ImagesInAcquisition"), None) for h in part],
                _text(ds, "Manufacturer"),
                missing_positions_reported=any("missing slice" in w for w in more_warnings),
            )
        )
    marking, mixed = series_marking(read_marking(header.dataset) for header in part)
    if mixed:
        warnings.append(mixed)
    tilt = _tilt_note(frames, row_dir, col_dir, pixel_spacing, ds)
    if tilt:
        warnings.append(tilt)
    direction = np.column_stack([row_dir, col_dir, normal])
    syntax = first.transfer_syntax_uid
    return SeriesInfo(
        uid=uid,
        series_instance_uid=series_uid,
        study_uid=study_uid,
        modality=_text(ds, "Modality"),
        description=_text(ds, "SeriesDescription"),
        number=_int_or(_get(ds, "SeriesNumber"), None),
        patient_name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        date=_text(ds, "SeriesDate") or _text(ds, "StudyDate"),
        size_ijk=(int(ds.Columns), int(ds.Rows), len(frames)),
        spacing_mm=(float(pixel_spacing[1]), float(pixel_spacing[0]), float(slice_spacing)),
        origin_lps_mm=tuple(float(v) for v in frames[0].position_lps_mm),
        direction=tuple(tuple(float(v) for v in row) for row in direction),
        frames=frames,
        warnings=warnings,
        bits_allocated=int(ds.get("BitsAllocated", 16) or 16),
        bits_stored=int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16),
        pixel_representation=int(ds.get("PixelRepresentation", 0) or 0),
        samples_per_pixel=int(ds.get("SamplesPerPixel", 1) or 1),
        photometric=_text(ds, "PhotometricInterpretation") or "MONOCHROME2",
        transfer_syntax_uid=syntax,
        metadata=_series_metadata(ds, marking),
        synthetic=marking.synthetic,
        recorded_provenance=_recorded_provenance(part) if marking.synthetic else None,
        modality_lut=_modality_lut(ds, warnings),
    )


def _single_frame_frames(part: list[_Header]):
    ds = part[0].dataset
    warnings: list[str] = []
    row_dir, col_dir = _orientation(ds.get("ImageOrientationPatient"), warnings, _get(ds, "PatientOrientation"))
    pixel_spacing = _pixel_spacing(ds, warnings)
    # Direct reads need the series' own syntax: a file in another syntax is decoded instead.
    raw_syntax = part[0].transfer_syntax_uid if part[0].transfer_syntax_uid in RAW_SYNTAXES else None
    frames = []
    for index, header in enumerate(part):
        h = header.dataset
        position = _floats(_fast(h, "ImagePositionPatient"), 3)
        if position is None:
            # No patient position: stack along the normal in instance order.
            position = np.zeros(3)
            if index == 0:
                warnings.append("no ImagePositionPatient: slices stacked by instance number")
        slope, intercept = _rescale(h)
        offset = header.pixel_offset if header.transfer_syntax_uid == raw_syntax else -1
        frames.append(
            FrameRef(header.path, None, tuple(float(v) for v in position), slope, intercept, offset)
        )
    if "ImagePositionPatient" not in ds:
        step = float(_first_number(ds, "SpacingBetweenSlices", "SliceThickness") or 1.0)
        normal = np.cross(row_dir, col_dir)
        ordered = sorted(frames, key=lambda f: _int_or(_instance_number(f.path, part), 0))
        frames = [
            FrameRef(
                f.path,
                None,
                tuple(float(v) for v in normal * step * n),
                f.rescale_slope,
                f.rescale_intercept,
                f.pixel_offset,
            )
            for n, f in enumerate(ordered)
        ]
    return frames, row_dir, col_dir, pixel_spacing, warnings


def _instance_number(path: str, part: list[_Header]):
    for header in part:
        if header.path == path:
            return _fast(header.dataset, "InstanceNumber")
    return None


def _multiframe_frames(header: _Header):
    """Frames of an (enhanced) multi-frame object from its functional groups."""
    ds = header.dataset
    warnings: list[str] = []
    count = max(_int_or(ds.get("NumberOfFrames"), 1), 1)
    shared = ds.SharedFunctionalGroupsSequence[0] if ds.get("SharedFunctionalGroupsSequence") else None
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence") or [])

    def group_value(index: int, sequence: str, attribute: str):
        for source in (per_frame[index] if index < len(per_frame) else None, shared):
            if source is not None and sequence in source and len(source[sequence].value):
                item = source[sequence].value[0]
                if attribute in item:
                    return item[attribute].value
        return ds.get(attribute)

    orientation = group_value(0, "PlaneOrientationSequence", "ImageOrientationPatient")
    row_dir, col_dir = _orientation(orientation, warnings, _get(ds, "PatientOrientation"))
    spacing = _floats(group_value(0, "PixelMeasuresSequence", "PixelSpacing"), 2)
    if spacing is None or not np.all(spacing > 0):
        spacing = _pixel_spacing(ds, warnings)
    normal = np.cross(row_dir, col_dir)
    step = float(
        _floats(group_value(0, "PixelMeasuresSequence", "SpacingBetweenSlices"), 1)[0]
        if group_value(0, "PixelMeasuresSequence", "SpacingBetweenSlices") is not None
        else _first_number(ds, "SpacingBetweenSlices", "SliceThickness") or 1.0
    )
    frames = []
    missing_position = False
    offsets = _grid_frame_offsets(ds, count)
    dose_scaling = _floats(ds.get("DoseGridScaling"), 1)
    for index in range(count):
        frame_orientation = _floats(
            group_value(index, "PlaneOrientationSequence", "ImageOrientationPatient"), 6
        )
        if frame_orientation is not None and not np.allclose(
            frame_orientation, np.r_[row_dir, col_dir], atol=10**-_ORIENTATION_DECIMALS
        ):
            raise ValueError("frames of this multi-frame object have different orientations")
        position = _floats(group_value(index, "PlanePositionSequence", "ImagePositionPatient"), 3)
        if offsets is not None and not _in_groups(per_frame, shared, index, "PlanePositionSequence"):
            position = None  # the top-level position is the first plane's only
        if position is None:
            top = _floats(ds.get("ImagePositionPatient"), 3)
            top = np.zeros(3) if top is None else top
            if offsets is not None:  # RT Dose: planes along the normal at these offsets
                position = top + normal * (offsets[index] - offsets[0])
            else:
                missing_position = True
                position = top + normal * step * index
        slope = group_value(index, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = group_value(index, "PixelValueTransformationSequence", "RescaleIntercept")
        if dose_scaling is not None and slope in (None, "") and dose_scaling[0] > 0:
            slope, intercept = float(dose_scaling[0]), 0.0  # stored value x scaling = dose
        _check_frame(index, position, spacing, slope, intercept)
        frames.append(
            FrameRef(
                header.path,
                index,
                tuple(float(v) for v in position),
                float(slope) if slope not in (None, "") else 1.0,
                float(intercept) if intercept not in (None, "") else 0.0,
                -1,
            )
        )
    if missing_position:
        warnings.append("no per-frame positions: frames stacked at the slice spacing")
    if dose_scaling is not None and dose_scaling[0] > 0:
        units = one_line(str(ds.get("DoseUnits", "") or "not stated").strip(), 40)
        warnings.append(f"RT Dose: stored values x DoseGridScaling {float(dose_scaling[0]):g} = dose ({units})")
    return frames, row_dir, col_dir, spacing, warnings


def _in_groups(per_frame: list, shared, index: int, sequence: str) -> bool:
    own = per_frame[index] if index < len(per_frame) else None
    return any(source is not None and sequence in source for source in (own, shared))


def _grid_frame_offsets(ds: pydicom.Dataset, count: int) -> np.ndarray | None:
    """RT Dose's Grid Frame Offset Vector (mm along the normal, one per frame), or None.

    Offsets relative to the first plane start at 0; otherwise they are the planes' coordinates
    (axial grids only), which differ from relative ones by the first value alone.
    """
    offsets = _floats(ds.get("GridFrameOffsetVector"), count)
    if offsets is None or count < 2 or len(np.unique(offsets)) != count:
        return None
    return offsets


def _check_frame(index: int, position, spacing, slope, intercept) -> None:
    """A frame's own geometry and rescale from the functional groups; ``ValueError`` when unusable."""
    reason = dicom_checks.position_fault(list(position)) or dicom_checks.spacing_fault(list(spacing))
    for value in (slope, intercept):
        reason = reason or dicom_checks.rescale_fault(dicom_checks.numbers(value) or [0.0])
    if reason:
        raise ValueError(f"frame {index + 1}: {reason}")


def _sort_and_check(frames: list[FrameRef], normal: np.ndarray, ds: pydicom.Dataset):
    """Frames sorted along the normal, the slice spacing, and warnings about the stack."""
    warnings: list[str] = []
    positions = np.array([f.position_lps_mm for f in frames], dtype=float)
    distances = positions @ normal
    order = np.argsort(distances, kind="stable")
    frames = [frames[i] for i in order]
    distances = distances[order]
    positions = positions[order]
    if len(frames) < 2:
        spacing = float(_first_number(ds, "SpacingBetweenSlices", "SliceThickness") or 1.0)
        return frames, spacing if spacing > 0 else 1.0, warnings
    gaps = np.diff(distances)
    if np.any(gaps < 1e-3):
        warnings.append(f"{int(np.sum(gaps < 1e-3))} slice(s) share a position with another slice")
        gaps_positive = gaps[gaps >= 1e-3]
        if gaps_positive.size == 0:
            return frames, float(_first_number(ds, "SliceThickness") or 1.0), warnings
        gaps = gaps_positive
    spacing = float(np.median(gaps))
    deviation = np.abs(gaps - spacing) / spacing
    if np.any(deviation > _SPACING_TOLERANCE):
        missing = int(np.sum(np.maximum(np.rint(gaps / spacing) - 1, 0)))
        if missing:
            warnings.append(
                f"{missing} missing slice(s): gaps of up to {gaps.max():.3g} mm in a {spacing:.3g} mm series"
            )
        uneven = np.abs(gaps / spacing - np.rint(gaps / spacing)) > _SPACING_TOLERANCE
        if np.any(uneven) or not missing:
            warnings.append(
                f"uneven slice spacing: {gaps.min():.4g} to {gaps.max():.4g} mm (volume uses {spacing:.4g} mm)"
            )
    return frames, spacing, warnings


def _tilt_note(frames: list[FrameRef], row_dir, col_dir, pixel_spacing, ds: pydicom.Dataset) -> str:
    """What the loader will do about slices displaced in plane (gantry tilt), or ""."""
    positions = np.array([f.position_lps_mm for f in frames], dtype=float)
    # PixelSpacing is (row spacing, column spacing): i runs along the row direction.
    correction = plan_tilt_correction(
        positions, row_dir, col_dir, (pixel_spacing[1], pixel_spacing[0]), (int(ds.Columns), int(ds.Rows))
    )
    if correction is not None:
        return correction.message()
    tilt_deg = stack_tilt_deg(positions, np.cross(row_dir, col_dir)) if len(positions) > 1 else 0.0
    if tilt_deg > _TILT_TOLERANCE_DEG:
        return f"gantry tilt of {tilt_deg:.2f} deg: slices off by less than 0.1 pixel, not resampled"
    return ""


_PATIENT_LETTERS_LPS = {
    "L": (1.0, 0.0, 0.0),
    "R": (-1.0, 0.0, 0.0),
    "P": (0.0, 1.0, 0.0),
    "A": (0.0, -1.0, 0.0),
    "H": (0.0, 0.0, 1.0),
    "F": (0.0, 0.0, -1.0),
}


def _patient_orientation(value) -> tuple[np.ndarray, np.ndarray] | None:
    """Row and column directions (LPS) from PatientOrientation (0020,0020), e.g. L\\F for a
    chest PA radiograph; oblique values name several letters ("LF"). None when unusable."""
    if value is None or isinstance(value, str) or len(value) != 2:
        return None
    directions = []
    for text in value:
        letters = str(text).strip().upper()
        if not letters or any(letter not in _PATIENT_LETTERS_LPS for letter in letters):
            return None
        vector = np.sum([_PATIENT_LETTERS_LPS[letter] for letter in letters], axis=0)
        norm = np.linalg.norm(vector)
        if norm == 0:
            return None
        directions.append(vector / norm)
    row_dir, col_dir = directions
    if abs(row_dir @ col_dir) > 0.9:  # parallel (e.g. L\\L): no plane
        return None
    col_dir = col_dir - (col_dir @ row_dir) * row_dir
    return row_dir, col_dir / np.linalg.norm(col_dir)


def _orientation(value, warnings: list[str], patient_orientation=None) -> tuple[np.ndarray, np.ndarray]:
    cosines = _floats(value, 6)
    if cosines is None:
        from_letters = _patient_orientation(patient_orientation)
        if from_letters is not None:
            letters = "\\".join(str(text) for text in patient_orientation)
            warnings.append(
                f"no ImageOrientationPatient: orientation from PatientOrientation {letters} "
                "(a projection image: position in the patient unknown)"
            )
            return from_letters
        warnings.append("no ImageOrientationPatient: axial orientation assumed")
        return np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    row_dir, col_dir = cosines[:3], cosines[3:]
    row_dir = row_dir / np.linalg.norm(row_dir)
    # Re-orthogonalise slightly inconsistent cosines (rounded in the header).
    col_dir = col_dir - (col_dir @ row_dir) * row_dir
    col_dir = col_dir / np.linalg.norm(col_dir)
    return row_dir, col_dir


def _pixel_spacing(ds: pydicom.Dataset, warnings: list[str]) -> np.ndarray:
    for name in ("PixelSpacing", "ImagerPixelSpacing"):
        spacing = _floats(ds.get(name), 2)
        if spacing is not None and np.all(spacing > 0):
            return spacing
    warnings.append("no PixelSpacing: 1 mm pixels assumed")
    return np.array([1.0, 1.0])


def _rescale(ds: pydicom.Dataset) -> tuple[float, float]:
    slope = _fast(ds, "RescaleSlope")
    intercept = _fast(ds, "RescaleIntercept")
    if slope in (None, "") and intercept in (None, ""):
        slope, intercept = _real_world_linear(ds)
    slope = float(slope) if slope not in (None, "") else 1.0
    intercept = float(intercept) if intercept not in (None, "") else 0.0
    return (slope if slope != 0 else 1.0), intercept


def _modality_lut(ds: pydicom.Dataset, warnings: list[str]) -> tuple[int, tuple[float, ...]] | None:
    """The Modality LUT Sequence as (first stored value mapped, output values), or None.

    An unusable LUT is not ignored silently: the series is read as stored values, and says so.
    """
    if not ds.get("ModalityLUTSequence"):
        return None
    try:
        from pydicom.pixels import apply_modality_lut

        item = ds.ModalityLUTSequence[0]
        entries, first = int(item.LUTDescriptor[0]) or 65536, int(item.LUTDescriptor[1])
        table = apply_modality_lut(np.arange(first, first + entries), ds)
        if table.shape != (entries,) or not np.all(np.isfinite(table)):
            raise ValueError("LUT data does not match its descriptor")
    except Exception as error:  # noqa: BLE001 - a broken LUT: say so, show stored values
        warnings.append(
            f"Modality LUT Sequence not applied ({one_line(error, 120)}): values are the stored pixel values"
        )
        return None
    label = one_line(str(ds.ModalityLUTSequence[0].get("ModalityLUTType", "") or "").strip(), 40)
    warnings.append(f"Modality LUT Sequence applied ({entries} entries{', ' + label if label else ''})")
    return first, tuple(float(v) for v in table)


def _real_world_linear(ds: pydicom.Dataset) -> tuple[float | None, float | None]:
    """Slope and intercept of an MR image's linear Real World Value Mapping (the MR IOD has no
    Modality LUT, so a scaled MR image, SynthView's exports included, says it there)."""
    if str(_fast(ds, "Modality", "")).upper() != "MR":
        return None, None
    for item in ds.get("RealWorldValueMappingSequence") or []:
        slope, intercept = item.get("RealWorldValueSlope"), item.get("RealWorldValueIntercept")
        if slope is not None and intercept is not None:
            return float(slope), float(intercept)
    return None, None


def _recorded_provenance(part: list[_Header]) -> Provenance | None:
    """The provenance record SynthView wrote into the series (the first instance holding one)."""
    return next(filter(None, (read_provenance(header.dataset) for header in part)), None)


def _series_metadata(ds: pydicom.Dataset, marking: SyntheticMarking) -> dict:
    keys = (
        "PatientName",
        "PatientID",
        "StudyInstanceUID",
        "StudyDescription",
        "StudyDate",
        "SeriesDescription",
        "SeriesNumber",
        "FrameOfReferenceUID",
        "Modality",
        "RescaleType",
        "PhotometricInterpretation",
        "SyntheticData",
        "DerivationDescription",
        "DoseUnits",
        "DoseType",
        "BurnedInAnnotation",
    )
    metadata = {key: _text(ds, key) for key in keys if _get(ds, key) not in (None, "")}
    # The series' marking, from whichever instance or functional group carries it.
    if marking.synthetic:
        metadata["SyntheticData"] = "YES"
    if marking.derivation_description:
        metadata["DerivationDescription"] = marking.derivation_description
    for key in ("WindowCenter", "WindowWidth"):
        value = _floats(_get(ds, key), None)
        if value is not None and value.size:
            metadata[key] = float(value[0])
    slope, intercept = _real_world_linear(ds) if ds.get("RescaleSlope") is None else (None, None)
    if slope is not None and "WindowCenter" in metadata and "WindowWidth" in metadata:
        # The window is in stored values; the volume holds the real world values.
        metadata["WindowCenter"] = metadata["WindowCenter"] * slope + intercept
        metadata["WindowWidth"] = metadata["WindowWidth"] * abs(slope)
    return metadata


def _floats(value, count: int | None) -> np.ndarray | None:
    """A DICOM multi-valued number as floats, or None when absent or of the wrong length."""
    if value is None or value == "":
        return None
    try:
        numbers = np.array(
            [float(v) for v in value] if not isinstance(value, str | float | int) else [float(value)]
        )
    except (TypeError, ValueError):
        return None
    if count is not None and numbers.size != count:
        return None
    if not np.all(np.isfinite(numbers)):
        return None
    return numbers


def _first_number(ds: pydicom.Dataset, *names: str) -> float | None:
    for name in names:
        value = _floats(_get(ds, name), 1)
        if value is not None and dicom_checks.MIN_SPACING_MM <= value[0] <= dicom_checks.MAX_SPACING_MM:
            return float(value[0])
    return None


def _int_or(value, default):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _get(ds: pydicom.Dataset, name: str, default=None):
    """``ds.get(name)``, or ``default`` when the element cannot be converted (a corrupt value)."""
    try:
        return ds.get(name, default)
    except Exception:  # noqa: BLE001 - pydicom raises many kinds for corrupt elements
        return default


_TEXT_CHARS = 1024  # the longest short-text VR (ST); a longer value is a corrupt element


def _text(ds: pydicom.Dataset, name: str) -> str:
    """A text value as one printable line (a corrupt value can hold the elements after it)."""
    value = _get(ds, name)
    try:
        return "" if value is None else one_line(value, _TEXT_CHARS)
    except Exception:  # noqa: BLE001 - e.g. a person name in an undecodable character set
        return ""

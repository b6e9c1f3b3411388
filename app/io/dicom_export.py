"""Write a Volume as a derived DICOM series (one file per slice), and as NIfTI + sidecar.

What makes the export trustworthy:

* Geometry: Image Position (Patient) per slice from ``geometry.lps_from_index``, Image
  Orientation (Patient) from the direction's i and j columns, Pixel Spacing in DICOM's
  row\\column order (spacing along j, then along i), Slice Thickness = spacing along k.
* Values: int16 with slope 1 when the voxels are integers that fit (lossless), else one
  series-wide Rescale Slope/Intercept (the written, DS-formatted numbers are the ones used to
  quantize, so a reader reproduces the values to within half a slope step).
* Synthetic volumes (``volume.provenance`` set) are never mistaken for acquired ones: Image
  Type DERIVED\\SECONDARY, Synthetic Data (0008,001C) = YES, a Series Description starting
  with "SYNTHETIC", Derivation Description and Derivation Code Sequence naming the plugin.
* New Study/Series/SOP Instance UIDs, or the source study's UID when asked; the source series
  is referenced (Related Series Sequence, Source Image Sequence per slice when the source
  slices are known).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from pydicom.valuerep import DS

from app.core.provenance import Provenance
from app.core.study import SOURCE_STUDY_KEYS
from app.core.volume import Volume
from app.io.atomic import atomic_folder
from app.io.deidentify import deidentify_dataset
from app.io.dicom_checks import MAX_RESCALE, rescale_fault
from app.io.dicom_marking import is_synthetic
from app.io.dicom_provenance import TAGS as PROVENANCE_TAGS
from app.io.dicom_provenance import write_provenance
from app.io.identifiers import KnownIdentifiers
from app.io.nifti import save_nifti, says_burned_in
from app.io.pseudonym_uids import UidPseudonyms

IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.10.1500.1"  # SynthView under pydicom's root style
MANUFACTURER = "SynthView"
_SOP_CLASS_BY_MODALITY = {"CT": CTImageStorage, "MR": MRImageStorage}

# Patient and study attributes copied from a source so the derived series joins its patient.
_PATIENT_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge")
_STUDY_KEYWORDS = (
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyDescription",
)
# MR Image module type 1/2 attributes carried over from an MR source (dummy values otherwise).
_MR_KEYWORDS = (
    "ScanningSequence",
    "SequenceVariant",
    "ScanOptions",
    "MRAcquisitionType",
    "RepetitionTime",
    "EchoTime",
    "EchoTrainLength",
    "MagneticFieldStrength",
)


# Type 2 Patient / General Study attributes that highdicom copies from the images an SR or SEG
# refers to; it reads them as attributes, so an image that leaves one out stopped the export.
_TYPE2_COPIED_TO_SR_SEG = (*_PATIENT_KEYWORDS[:4], "AccessionNumber", "StudyID", "StudyDate", "StudyTime")


def marked_description(description: str, referenced: Iterable[Dataset]) -> str:
    """``description``, saying so when the images it refers to are synthetic (Synthetic Data YES):
    measurements or masks of a synthesized image are exports of it, and marked like it."""
    if any(is_synthetic(d) for d in referenced):
        return f"{description} on SYNTHETIC images"[:64]
    return description


def with_type2_study_attributes(datasets: list[Dataset]) -> list[Dataset]:
    """``datasets``, those missing a type 2 patient/study attribute as copies holding it empty."""
    completed = []
    for dataset in datasets:
        missing = [keyword for keyword in _TYPE2_COPIED_TO_SR_SEG if keyword not in dataset]
        if missing:
            copied = Dataset()
            copied.update(dataset)  # new element dict: the caller's header is left as it was
            if hasattr(dataset, "file_meta"):
                copied.file_meta = dataset.file_meta
            for keyword in missing:
                setattr(copied, keyword, "")
            dataset = copied
        completed.append(dataset)
    return completed


class ExportError(ValueError):
    """An export that cannot be written as asked (message says why, for the user)."""


@dataclass
class SourceSeries:
    """What the export needs to know about the acquired series a volume came from."""

    header: Dataset
    # (SOP Class UID, SOP Instance UID, position along the slice normal in mm) per source file.
    instances: list[tuple[str, str, float]] = field(default_factory=list)
    burned_in_annotation: bool = False  # any source image says Burned In Annotation YES
    # The source's own synthetic marking (a series a generator made): what it derives from is
    # synthetic too, whatever the exported volume's own record says.
    synthetic_provenance: Provenance | None = None


@dataclass(frozen=True)
class StoredValues:
    """How voxel values map to stored int16 pixels: value = stored * slope + intercept."""

    slope: float
    intercept: float

    @property
    def lossless(self) -> bool:
        return self.slope == 1.0 and self.intercept == 0.0


def write_derived_series(
    volume: Volume,
    out_dir: str | Path,
    source: Dataset | str | Path | SourceSeries | None = None,
    keep_study_uid: bool = False,
    deidentify: bool = False,
    series_description: str | None = None,
    series_number: int = 9001,
    allow_burned_in: bool = False,
    replace: bool = False,
) -> list[Path]:
    """Write ``volume`` as a derived DICOM series into ``out_dir`` (created); return the files.

    ``source`` is the acquired series the volume derives from: a pydicom Dataset (one header
    of it), a DICOM file or folder, or None to use the series the volume was made from
    (``derived_from_series``) or loaded from, or, failing those, a fresh patient and study. ``keep_study_uid`` puts
    the series into the source's study; ``deidentify`` applies the DICOM basic profile (UIDs
    become this installation's pseudonyms, so two exports of a study stay one study) and refuses
    a source marked Burned In Annotation YES unless ``allow_burned_in`` (then the series says
    Burned In Annotation YES too).
    The series is written into a sibling folder and renamed when complete (``app.io.atomic``),
    so ``out_dir`` never holds part of it; ``replace`` lets it replace an earlier series there.
    Every instance records the slice count (ImagesInAcquisition), so a series that lost files
    afterwards is reported incomplete on load.
    """
    out_dir = Path(out_dir)
    if volume.voxels.size == 0:
        raise ExportError("cannot export an empty volume")
    if volume.is_colour:
        raise ExportError(
            "a colour (RGB) image cannot be written as a derived greyscale DICOM series; write it as .nii.gz"
        )
    if volume.is_label_map:
        raise ExportError(
            "a label map (segmentation) is not an image and is not written as an image series;"
            " write it as .nii.gz (marked as a label map)"
        )
    if not np.all(np.isfinite(volume.voxels)) and np.issubdtype(volume.voxels.dtype, np.floating):
        raise ExportError("the volume has NaN or infinite voxels; DICOM cannot store them")
    if volume.voxels.dtype == np.bool_:
        volume = volume.with_voxels(volume.voxels.astype(np.uint8))  # a mask: stored as 0 / 1
    source_series = source_of(volume, source)
    volume = with_source_marking(volume, source_series)
    if keep_study_uid and source_series is None:
        raise ExportError("keep_study_uid needs a source DICOM series to take the study from")
    burned_in = burned_in_annotation(volume, source_series)
    if deidentify and burned_in and not allow_burned_in:
        raise ExportError(BURNED_IN_REFUSAL)
    known = known_identifiers(volume, source_series)
    check_series_folder(out_dir, replace=replace)

    is_mr = (volume.modality or "").upper() == "MR"
    stored_values = choose_stored_values(volume.voxels, round_wide_floats=is_mr)
    if rescale_fault([stored_values.slope, stored_values.intercept]):
        # A series no reader (SynthView's own included) would load: refused before writing.
        raise ExportError(
            f"the volume's values ({float(np.min(volume.voxels)):.3g} to {float(np.max(volume.voxels)):.3g}) need"
            f" a rescale beyond {MAX_RESCALE:g}, which DICOM readers refuse; export it as NIfTI"
        )
    template = _series_template(volume, source_series, keep_study_uid, stored_values)
    if series_description is None:
        series_description = _default_description(volume, deidentify)
    elif deidentify:
        series_description = known.scrub(series_description)
    template.SeriesDescription = series_description[:64]
    if burned_in:
        template.BurnedInAnnotation = "YES"
    if deidentify and volume.provenance is not None:
        # Our own description of the generator, undated (dates go) and scrubbed of the source's
        # identifiers (a foreign generator's text is kept); the record loses the source's name too.
        template.DerivationDescription = known.scrub(volume.provenance.derivation_description(dated=False))
        write_provenance(template, _scrubbed(volume.provenance.deidentified(), known))
    template.SeriesNumber = series_number
    template.ImagesInAcquisition = volume.voxels.shape[0]
    # Without a Modality LUT (scaled MR) the window applies to the stored values.
    _set_window(template, volume.voxels, None if "RescaleSlope" in template else stored_values)

    uid_map = UidPseudonyms() if deidentify else None
    geometry = volume.geometry
    normal = _slice_normal(volume)
    names: list[str] = []
    with atomic_folder(out_dir, replace=replace) as partial:
        for k in range(volume.voxels.shape[0]):
            dataset = copy.deepcopy(template)
            dataset.SOPInstanceUID = generate_uid()
            dataset.InstanceNumber = k + 1
            position = geometry.lps_from_index([0.0, 0.0, float(k)])
            dataset.ImagePositionPatient = [_ds(v) for v in position]
            dataset.SliceLocation = _ds(float(position @ normal))
            if source_series is not None:
                _reference_source_slice(
                    dataset, source_series, float(position @ normal), geometry.spacing_mm[2]
                )
            # Slice by slice: no full-volume float64 copy of a large series.
            dataset.PixelData = np.ascontiguousarray(quantize(volume.voxels[k], stored_values)).tobytes()
            dataset.file_meta = _file_meta(dataset)
            if deidentify:
                deidentify_dataset(dataset, uid_map, keep=_MARKING_KEYWORDS, known=known)
            names.append(_series_file_name(k))
            dataset.save_as(partial / names[-1], enforce_file_format=True)
    return [out_dir / name for name in names]


BURNED_IN_REFUSAL = (
    "the source images are marked Burned In Annotation YES: their pixels may show the patient's "
    "name or ID, which de-identification cannot remove; export without --deidentify, or add "
    "--allow-burned-in to export them anyway, marked Burned In Annotation YES"
)
# What a SynthView series says about itself: kept through de-identification (the profile would
# remove descriptions and private blocks; these are written by SynthView and scrubbed of the
# source's identifiers).
_MARKING_KEYWORDS = ("SeriesDescription", "DerivationDescription", "DerivationCodeSequence", *PROVENANCE_TAGS)


def _scrubbed(provenance: Provenance, known: KnownIdentifiers) -> Provenance:
    """``provenance`` with the source's identifiers removed from every text it holds."""

    def scrub(value):
        if isinstance(value, str):
            return known.scrub(value)
        if isinstance(value, dict):
            return {key: scrub(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [scrub(item) for item in value]
        return value

    return Provenance.from_dict(scrub(dataclasses.asdict(provenance)))


def with_source_marking(volume: Volume, source: SourceSeries | None) -> Volume:
    """``volume``, synthetic (with the source's record) when it has no provenance of its own but
    derives from a series marked synthetic: an export of it must not say Synthetic Data NO."""
    if volume.provenance is not None or source is None or source.synthetic_provenance is None:
        return volume
    return volume.with_voxels(volume.voxels, provenance=source.synthetic_provenance)


def _marked_provenance(headers: Iterable[Dataset]) -> Provenance | None:
    """The provenance of the first header marked synthetic (its SynthView record, else what its
    derivation description tells), None when none is."""
    from app.io.dicom_load import provenance_from_description
    from app.io.dicom_marking import read_marking
    from app.io.dicom_provenance import read_provenance

    for header in headers:
        marking = read_marking(header)
        if marking.synthetic:
            return read_provenance(header) or provenance_from_description(marking.derivation_description)
    return None


def burned_in_annotation(volume: Volume, source: SourceSeries | None) -> bool:
    """True when the source (or the volume's own DICOM header) says Burned In Annotation YES."""
    if source is not None and source.burned_in_annotation:
        return True
    return says_burned_in(volume.metadata)


def known_identifiers(volume: Volume, source: SourceSeries | None = None) -> KnownIdentifiers:
    """The patient's identifiers a de-identified export must not repeat in any free text."""
    return KnownIdentifiers.of(source.header if source is not None else None, volume.metadata)


_SERIES_FILE = re.compile(r"^IM\d{5}\.dcm$")


def check_series_folder(out_dir: str | Path, replace: bool = False) -> None:
    """Refuse a folder a series cannot go into (callers check before long work).

    The folder must be new or empty: any file in it, at any depth, would be read as part of
    the series by a folder scan. ``replace`` allows a folder holding only a series SynthView
    wrote (``IM#####.dcm``, nothing else), which the new series then replaces as a whole.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} is a file, not a folder; a DICOM series is written into a folder")
    entries = list(out_dir.iterdir()) if out_dir.is_dir() else []
    if not entries:
        return
    previous_series = all(entry.is_file() and _SERIES_FILE.match(entry.name) for entry in entries)
    if previous_series and replace:
        return
    if previous_series:
        raise ExportError(f"{out_dir} already holds a DICOM series (give --force to replace it)")
    raise ExportError(
        f"{out_dir} is not empty; a DICOM series is written into a new or empty folder (other files"
        " there would be read as part of the series)"
    )


def _series_file_name(index: int) -> str:
    return f"IM{index + 1:05d}.dcm"


def write_derived_nifti(volume: Volume, path: str | Path, deidentify: bool = False) -> Path:
    """NIfTI export; a synthetic volume gets its JSON provenance sidecar (save_nifti does it).

    ``deidentify``: the sidecar's provenance loses the source's description (it may name the
    patient) and the dates; the SYNTHETIC marking and the generator stay.
    """
    if deidentify and volume.provenance is not None:
        volume = volume.with_voxels(volume.voxels, provenance=volume.provenance.deidentified())
    if deidentify:  # nor the patient and study the sidecar would file it under
        volume = volume.with_voxels(volume.voxels)
        for key in SOURCE_STUDY_KEYS:
            volume.metadata.pop(key, None)
    return save_nifti(volume, path)


# MR floats spanning at least this many units are stored rounded to integers (error <= 0.5, far
# below MR noise) rather than scaled: the MR IOD has no Modality LUT, and most tools ignore the
# Real World Value Mapping a scale would need.
_MR_ROUNDED_SPAN = 100.0


def choose_stored_values(voxels: np.ndarray, round_wide_floats: bool = False) -> StoredValues:
    """int16 unchanged when lossless, else a series-wide slope/intercept spanning the range.

    ``round_wide_floats`` (MR): floats spanning at least 100 units that fit int16 once rounded
    are stored rounded, without a scale.
    """
    low = float(np.min(voxels))
    high = float(np.max(voxels))
    integer_valued = np.issubdtype(voxels.dtype, np.integer) or bool(np.all(np.mod(voxels, 1) == 0))
    fits = np.rint(low) >= -32768 and np.rint(high) <= 32767
    if fits and (integer_valued or (round_wide_floats and high - low >= _MR_ROUNDED_SPAN)):
        return StoredValues(1.0, 0.0)
    if integer_valued and high - low <= 65535:
        return StoredValues(1.0, float(DS(np.floor((high + low + 1) / 2), auto_format=True)))
    intercept = float(DS((high + low) / 2.0, auto_format=True))
    span = max(high - intercept, intercept - low)
    slope = float(DS(span / 32000.0, auto_format=True)) if span > 0 else 1.0
    return StoredValues(slope, intercept)


def quantize(voxels: np.ndarray, stored_values: StoredValues) -> np.ndarray:
    """Stored int16 pixels for ``voxels`` (round to nearest, clipped to int16)."""
    if stored_values.lossless:
        if np.issubdtype(voxels.dtype, np.floating):
            return np.rint(voxels).astype(np.int16)  # integers, or wide MR floats rounded
        return voxels.astype(np.int16, copy=False)
    scaled = (np.asarray(voxels, dtype=np.float64) - stored_values.intercept) / stored_values.slope
    return np.clip(np.rint(scaled), -32768, 32767).astype(np.int16)


def source_of(
    volume: Volume, source: Dataset | str | Path | SourceSeries | None = None
) -> SourceSeries | None:
    """The acquired series ``volume`` derives from: ``source`` when given, else the one its
    metadata names (the DICOM folder it was loaded from), else None."""
    return resolve_source(source if source is not None else _source_of_volume(volume), volume)


def resolve_source(
    source: Dataset | str | Path | SourceSeries | None, volume: Volume | None = None
) -> SourceSeries | None:
    """Normalise the ``source`` argument: a header and, for a folder, every slice's UIDs."""
    if source is None or isinstance(source, SourceSeries):
        return source
    if isinstance(source, Dataset):
        return SourceSeries(
            header=source,
            burned_in_annotation=says_burned_in(source),
            synthetic_provenance=_marked_provenance([source]),
        )
    path = Path(source)
    if path.is_file():
        header = _read_header(path)
        return SourceSeries(
            header=header,
            burned_in_annotation=says_burned_in(header),
            synthetic_provenance=_marked_provenance([header]),
        )
    if path.is_dir():
        return _scan_source_folder(path, volume)
    raise ExportError(f"source {path} is neither a DICOM file nor a folder")


def _source_of_volume(volume: Volume) -> str | None:
    """The acquired series a generator's output was made from, or the DICOM series folder the
    volume itself was loaded from."""
    if volume.derived_from_series and Path(volume.derived_from_series).exists():
        return volume.derived_from_series
    loaded_from = volume.source_path
    if volume.metadata.get("SeriesInstanceUID") and loaded_from and Path(loaded_from).is_dir():
        return loaded_from
    return None


def _read_header(path: Path) -> Dataset:
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as error:  # pydicom raises several types for non-DICOM input
        raise ExportError(f"source {path.name} is not a readable DICOM file: {error}") from error


def read_series_headers(folder: str | Path, series_uid: str | None = None) -> list[Dataset]:
    """Headers (no pixels) of one image series under ``folder``: ``series_uid``, else the largest."""
    by_series = _headers_by_series(Path(folder))
    if series_uid is not None:
        if series_uid not in by_series:
            raise ExportError(f"no series {series_uid} under {folder}")
        return by_series[series_uid]
    return max(by_series.values(), key=len)


def _headers_by_series(folder: Path) -> dict[str, list[Dataset]]:
    by_series: dict[str, list[Dataset]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - non-DICOM files in a folder are skipped
            continue
        positioned = "ImagePositionPatient" in header or "PerFrameFunctionalGroupsSequence" in header
        if positioned and "SOPInstanceUID" in header and "SeriesInstanceUID" in header:
            by_series.setdefault(str(header.SeriesInstanceUID), []).append(header)
    if not by_series:
        raise ExportError(f"source folder {folder} holds no DICOM image files")
    return by_series


def _scan_source_folder(folder: Path, volume: Volume | None = None) -> SourceSeries:
    """The source series in ``folder``: the one on the volume's grid when there is one (same
    orientation and slice count; a study folder holds several), else the largest."""
    by_series = _headers_by_series(folder)

    def fits(headers: list[Dataset]) -> bool:
        if (
            volume is None
            or len(headers) != volume.voxels.shape[0]
            or "ImageOrientationPatient" not in headers[0]
        ):
            return False
        orientation = np.asarray(headers[0].ImageOrientationPatient, float)
        return bool(np.allclose(orientation, volume.geometry.direction[:, :2].T.ravel(), atol=1e-3))

    candidates = sorted(by_series.values(), key=lambda h: (fits(h), len(h)), reverse=True)
    headers = candidates[0]
    burned_in = any(says_burned_in(h) for h in headers)
    marked = _marked_provenance(headers)
    if "ImageOrientationPatient" not in headers[0]:
        # An enhanced multi-frame object: its study and patient, no per-slice references.
        return SourceSeries(header=headers[0], burned_in_annotation=burned_in, synthetic_provenance=marked)
    row, column = np.asarray(headers[0].ImageOrientationPatient, float).reshape(2, 3)
    normal = np.cross(row, column)
    instances = [
        (str(h.SOPClassUID), str(h.SOPInstanceUID), float(np.asarray(h.ImagePositionPatient, float) @ normal))
        for h in headers
    ]
    return SourceSeries(
        header=headers[0], instances=instances, burned_in_annotation=burned_in, synthetic_provenance=marked
    )


def _series_template(
    volume: Volume, source: SourceSeries | None, keep_study_uid: bool, stored_values: StoredValues
) -> Dataset:
    now = _dt.datetime.now()
    header = source.header if source is not None else None
    modality = (volume.modality or (str(header.get("Modality", "")) if header else "")).upper()
    sop_class = _SOP_CLASS_BY_MODALITY.get(modality, SecondaryCaptureImageStorage)
    if sop_class == SecondaryCaptureImageStorage:
        modality = "OT"

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    # Value 3 is required for CT/MR: a CT slice is AXIAL (its defined terms are AXIAL and
    # LOCALIZER); "OTHER" is MR's defined term for images like ours.
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL" if sop_class == CTImageStorage else "OTHER"]
    ds.Modality = modality
    ds.Manufacturer = MANUFACTURER
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    ds.ContentDate = ds.InstanceCreationDate
    ds.ContentTime = ds.InstanceCreationTime
    ds.SeriesDate = ds.InstanceCreationDate
    ds.SeriesTime = ds.InstanceCreationTime

    # Patient and study: the source's (same patient), or a fresh anonymous one.
    for keyword in _PATIENT_KEYWORDS:
        setattr(ds, keyword, header.get(keyword, "") if header else "")
    if not header:
        ds.PatientName = "SYNTHVIEW^EXPORT"
        ds.PatientID = "SV" + generate_uid()[-10:].replace(".", "")
    if keep_study_uid and header is not None:
        ds.StudyInstanceUID = header.StudyInstanceUID
        for keyword in _STUDY_KEYWORDS:
            setattr(ds, keyword, header.get(keyword, ""))
    else:
        ds.StudyInstanceUID = generate_uid()
        ds.StudyDate = ds.InstanceCreationDate
        ds.StudyTime = ds.InstanceCreationTime
        ds.StudyID = "SV1"
        ds.AccessionNumber = ""
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "SynthView derived study"
    ds.SeriesInstanceUID = generate_uid()
    same_space = header is not None and "FrameOfReferenceUID" in header
    ds.FrameOfReferenceUID = header.FrameOfReferenceUID if same_space else generate_uid()
    ds.PositionReferenceIndicator = ""
    # Type 2C in General Series, for a paired body part. A value the source gives is copied; an
    # empty one is not (beside an unpaired body part such as BRAIN it is an error to
    # validators); body part unknown: present and empty, "unknown" honestly (absent is an error
    # to validators then, empty only a note that it should be known).
    if header is not None and str(header.get("Laterality", "") or "").strip():
        ds.Laterality = header.Laterality
    elif header is None or not header.get("BodyPartExamined"):
        ds.Laterality = ""
    ds.PatientPosition = header.get("PatientPosition", "") if header else ""
    ds.PatientOrientation = ""
    ds.AcquisitionNumber = 1
    ds.BodyPartExamined = header.get("BodyPartExamined", "") if header else ""
    if not ds.BodyPartExamined:
        del ds.BodyPartExamined

    _set_geometry(ds, volume)
    _set_pixel_module(ds, volume, stored_values)
    if modality == "CT":
        ds.KVP = header.get("KVP", "") if header else ""
    if modality == "MR":
        _set_mr_attributes(ds, header)
    if sop_class == SecondaryCaptureImageStorage:
        ds.ConversionType = "WSD"
    _set_derivation(ds, volume, source)
    return ds


def _set_geometry(ds: Dataset, volume: Volume) -> None:
    geometry = volume.geometry
    spacing_i, spacing_j, spacing_k = (float(s) for s in geometry.spacing_mm)
    row_direction = geometry.direction[:, 0]  # along a row, the column index i increases
    column_direction = geometry.direction[:, 1]
    ds.ImageOrientationPatient = [_ds(v) for v in (*row_direction, *column_direction)]
    ds.PixelSpacing = [_ds(spacing_j), _ds(spacing_i)]  # DICOM: row spacing \ column spacing
    ds.SliceThickness = _ds(spacing_k)
    ds.SpacingBetweenSlices = _ds(spacing_k)


def _set_pixel_module(ds: Dataset, volume: Volume, stored_values: StoredValues) -> None:
    nk, nj, ni = volume.voxels.shape
    ds.Rows = nj
    ds.Columns = ni
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    if ds.SOPClassUID == MRImageStorage:
        # The MR Image IOD has no Modality LUT: a scale goes into a Real World Value Mapping.
        if not stored_values.lossless:
            ds.RealWorldValueMappingSequence = Sequence([_real_world_mapping(stored_values)])
        return
    # As chosen (already DS-formatted): _ds would round a slope under 1e-12 (an ADC map in
    # m^2/s) to 0, and every value would read back as its stored integer.
    ds.RescaleIntercept = DS(stored_values.intercept, auto_format=True)
    ds.RescaleSlope = DS(stored_values.slope, auto_format=True)
    ds.RescaleType = "HU" if volume.modality.upper() == "CT" else "US"


def _real_world_mapping(stored_values: StoredValues) -> Dataset:
    item = Dataset()
    item.RealWorldValueFirstValueMapped = -32768
    item.RealWorldValueLastValueMapped = 32767
    item.RealWorldValueIntercept = float(stored_values.intercept)
    item.RealWorldValueSlope = float(stored_values.slope)
    item.LUTExplanation = "Voxel values of the exported volume"
    item.LUTLabel = "SYNTHVIEW_VALUES"
    item.MeasurementUnitsCodeSequence = Sequence([_code("1", "UCUM", "no units")])
    return item


def _set_mr_attributes(ds: Dataset, header: Dataset | None) -> None:
    from_mr = header is not None and str(header.get("Modality", "")).upper() == "MR"
    defaults = {
        "ScanningSequence": "RM",
        "SequenceVariant": "NONE",
        "ScanOptions": "",
        "MRAcquisitionType": "3D",
        "RepetitionTime": "",
        "EchoTime": "",
        "EchoTrainLength": "",
    }
    for keyword in _MR_KEYWORDS:
        if from_mr and keyword in header and header.data_element(keyword).value not in (None, ""):
            setattr(ds, keyword, header.data_element(keyword).value)
        elif keyword in defaults:
            setattr(ds, keyword, defaults[keyword])


def _set_derivation(ds: Dataset, volume: Volume, source: SourceSeries | None) -> None:
    provenance = volume.provenance
    if provenance is not None:
        ds.add_new(0x0008001C, "CS", "YES")  # Synthetic Data
        ds.DerivationDescription = provenance.derivation_description()
        write_provenance(ds, provenance)  # the whole record, read back in place of the line above
        # A standard code only: validators know no private scheme (a 99SYNTHVIEW plugin code
        # warned even when declared); the plugin is named in the Derivation Description.
        ds.DerivationCodeSequence = Sequence([_code("123110", "DCM", "Artificial Intelligence")])
    else:
        ds.add_new(0x0008001C, "CS", "NO")
        ds.DerivationDescription = "Exported by SynthView"
    if volume.tilt_correction is not None:  # the voxels were resampled on load: say so
        ds.DerivationDescription = f"{ds.DerivationDescription}; {volume.tilt_correction.derivation_note()}"
    if source is not None and "SeriesInstanceUID" in source.header:
        related = Dataset()
        related.StudyInstanceUID = source.header.StudyInstanceUID
        related.SeriesInstanceUID = source.header.SeriesInstanceUID
        related.PurposeOfReferenceCodeSequence = Sequence(
            [_code("121322", "DCM", "Source image for image processing operation")]
        )
        ds.RelatedSeriesSequence = Sequence([related])


def _reference_source_slice(
    ds: Dataset, source: SourceSeries, position_mm: float, spacing_k_mm: float
) -> None:
    """Source Image Sequence: the acquired slice at the same position, when there is one."""
    if not source.instances:
        return
    distances = [abs(pos - position_mm) for _, _, pos in source.instances]
    nearest = int(np.argmin(distances))
    if distances[nearest] > 0.5 * spacing_k_mm:
        return
    sop_class, sop_instance, _ = source.instances[nearest]
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    item.PurposeOfReferenceCodeSequence = Sequence(
        [_code("121322", "DCM", "Source image for image processing operation")]
    )
    ds.SourceImageSequence = Sequence([item])


def _set_window(ds: Dataset, voxels: np.ndarray, stored_values: StoredValues | None = None) -> None:
    sample = voxels[:: max(1, voxels.shape[0] // 16)]
    low, high = np.percentile(sample, [1.0, 99.0])
    if stored_values is not None and not stored_values.lossless:
        low, high = ((v - stored_values.intercept) / stored_values.slope for v in (low, high))
    if high <= low:
        high = low + 1.0
    ds.WindowCenter = DS((low + high) / 2.0, auto_format=True)
    ds.WindowWidth = DS(high - low, auto_format=True)
    if high - low < 1.0:
        # A window narrower than one unit (a probability or ADC map in its own units) is valid
        # only with the exact linear function (PS3.3 C.11.2.1.3.2).
        ds.VOILUTFunction = "LINEAR_EXACT"


def _slice_normal(volume: Volume) -> np.ndarray:
    direction = volume.geometry.direction
    return np.cross(direction[:, 0], direction[:, 1])


def _default_description(volume: Volume, deidentify: bool = False) -> str:
    if volume.provenance is not None:
        name = f"{volume.provenance.plugin_name} {volume.provenance.plugin_version}".strip()
        return f"SYNTHETIC {name}"
    # The name is a file name or the source's series description: either may name the patient.
    return "DERIVED" if deidentify else f"DERIVED {volume.name}".strip()


def _file_meta(ds: Dataset) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = "SYNTHVIEW"
    return meta


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _ds(value: float) -> DS:
    """A DS value formatted to fit DICOM's 16 characters (pydicom auto-format)."""
    number = float(value)
    if abs(number) < 1e-12:
        number = 0.0
    return DS(number, auto_format=True)

"""The demo study: nilearn's bundled MNI152 T1 template written as a DICOM MR series.

Real anatomy from data that ships inside a registry package, so nothing is downloaded. The
series is one file per axial slice (MR Image Storage, explicit VR little endian, int16 with a
rescale intercept), with UIDs derived from a fixed root so every rebuild is byte-identical.

Geometry: the template's NIfTI affine is RAS with +i towards the patient's right and +j towards
anterior. DICOM readers expect rows running right->left and columns anterior->posterior
(ImageOrientationPatient 1\\0\\0\\0\\1\\0 in LPS), so each slice is the template flipped along
i and j; slices go from inferior to superior.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_ROOT = REPO_ROOT / "resources" / "demo" / "generated"
DEMO_SERIES_DIR = DEMO_ROOT / "demo_mr_t1"
# Bumped whenever the written series changes, so an older build is replaced.
DEMO_FORMAT_VERSION = "1"
_STAMP_NAME = ".complete"

_UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's root; entropy sources make UIDs deterministic
_RESCALE_INTERCEPT = 500.0  # stored = value - intercept: exercises the rescale path of loaders
_VALUE_SCALE = 4  # template 0..255 -> 0..1020, an MR-like range


def mni_t1_template_path() -> Path:
    """nilearn's bundled MNI152 2009a T1 template (1 mm, 197 x 233 x 189, RAS)."""
    import nilearn.datasets

    path = (
        Path(nilearn.datasets.__file__).parent / "data" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    )
    if not path.exists():
        raise FileNotFoundError(f"the MNI152 template is missing from nilearn: {path}")
    return path


def demo_study_is_built(output_dir: Path = DEMO_SERIES_DIR) -> bool:
    stamp = Path(output_dir) / _STAMP_NAME
    return stamp.exists() and stamp.read_text().strip() == DEMO_FORMAT_VERSION


def ensure_demo_study(output_dir: Path = DEMO_SERIES_DIR) -> Path:
    """Build the demo series unless a complete build of this version is already there."""
    output_dir = Path(output_dir)
    if not demo_study_is_built(output_dir):
        build_demo_study(output_dir)
    return output_dir


def _uid(*parts: str) -> str:
    return generate_uid(prefix=_UID_ROOT, entropy_srcs=["synthview-demo", *parts])


def build_demo_study(output_dir: Path = DEMO_SERIES_DIR) -> Path:
    """Write the series into a temporary folder beside ``output_dir``, then move it in place.

    The move makes the build atomic: a concurrent reader sees either no folder or a complete one.
    """
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    image = nib.load(str(mni_t1_template_path()))
    ras_from_ijk = np.asarray(image.affine, dtype=float)
    if not np.allclose(ras_from_ijk[:3, :3], np.eye(3)):
        raise ValueError("expected the MNI template on an axis-aligned 1 mm RAS grid")
    template = np.asarray(image.dataobj, dtype=np.float64)  # (i, j, k) RAS
    ni, nj, nk = template.shape
    values = np.rint(template * _VALUE_SCALE) - _RESCALE_INTERCEPT
    stored = values.astype(np.int16)
    # Voxel (ni-1, nj-1, k) of the template is the first pixel of slice k (flipped i and j).
    corner_ras = ras_from_ijk[:3, :3] @ np.array([ni - 1, nj - 1, 0]) + ras_from_ijk[:3, 3]
    corner_lps = corner_ras * np.array([-1.0, -1.0, 1.0])

    study_uid, series_uid, frame_uid = _uid("study"), _uid("series"), _uid("frame")
    work = Path(tempfile.mkdtemp(prefix=".demo_build_", dir=output_dir.parent))
    # mkdtemp makes the folder private (0700): give it a normal folder's mode, so other users of a
    # shared checkout can read the demo.
    umask = os.umask(0)
    os.umask(umask)
    work.chmod(0o777 & ~umask)
    try:
        for k in range(nk):
            pixels = np.ascontiguousarray(stored[::-1, ::-1, k].T)  # rows: posterior, cols: left
            position_lps = corner_lps + np.array([0.0, 0.0, float(k)])
            dataset = _slice_dataset(pixels, k, nk, position_lps, study_uid, series_uid, frame_uid)
            dataset.save_as(work / f"IM{k + 1:04d}.dcm", enforce_file_format=True)
        (work / _STAMP_NAME).write_text(DEMO_FORMAT_VERSION + "\n")
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(work, output_dir)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return output_dir


def _slice_dataset(
    pixels: np.ndarray,
    k: int,
    slice_count: int,
    position_lps: np.ndarray,
    study_uid: str,
    series_uid: str,
    frame_uid: str,
) -> pydicom.Dataset:
    sop_uid = _uid("instance", str(k))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = _UID_ROOT + "1"
    meta.ImplementationVersionName = "SYNTHVIEW_DEMO"

    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = "20090101"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = "120000"
    ds.AccessionNumber = "DEMO0001"
    ds.Modality = "MR"
    ds.Manufacturer = "SynthView demo (MNI ICBM152 2009a template)"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "SynthView demo brain MR"
    ds.SeriesDescription = "T1 MNI152 2009a 1mm"
    ds.PatientName = "MNI152^Template"
    ds.PatientID = "MNI152"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = "BRAIN"
    ds.PatientPosition = "HFS"
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "3D"
    ds.SliceThickness = "1"
    ds.SpacingBetweenSlices = "1"
    ds.RepetitionTime = ""  # unknown for a template: type 2, left empty
    ds.EchoTime = ""
    ds.EchoTrainLength = "1"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = "1"
    ds.AcquisitionNumber = "1"
    ds.InstanceNumber = str(k + 1)
    ds.ImagePositionPatient = [_ds_number(v) for v in position_lps]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = _ds_number(position_lps[2])
    ds.ImagesInAcquisition = str(slice_count)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelSpacing = ["1", "1"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.WindowCenter = "450"
    ds.WindowWidth = "900"
    ds.RescaleIntercept = _ds_number(_RESCALE_INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.PixelData = pixels.astype("<i2").tobytes()
    return ds


def _ds_number(value: float) -> str:
    """A DS string without float noise (``-72`` rather than ``-72.0000000001``)."""
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text

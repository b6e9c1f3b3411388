"""Tiny DICOM series written on the fly, for the scanner's grouping/sorting/warning rules."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

STUDY_UID = generate_uid(entropy_srcs=["test-study"])


def write_slice(
    path: Path,
    pixels: np.ndarray,
    position_lps,
    orientation=(1, 0, 0, 0, 1, 0),
    series_uid: str | None = None,
    instance: int = 1,
    spacing=(0.5, 0.7),
    slope: float = 1.0,
    intercept: float = -1024.0,
    acquisition: int = 1,
    gantry_tilt_deg: float | None = None,
) -> Path:
    series_uid = series_uid or generate_uid(entropy_srcs=["test-series"])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CT"
    ds.PatientName = "Test^Series"
    ds.PatientID = "T1"
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.StudyID = "1"
    ds.StudyInstanceUID = STUDY_UID
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 3
    ds.AcquisitionNumber = acquisition
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [float(v) for v in position_lps]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [float(spacing[0]), float(spacing[1])]
    ds.SliceThickness = 1.0
    if gantry_tilt_deg is not None:
        ds.GantryDetectorTilt = float(gantry_tilt_deg)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(
    folder: Path,
    z_positions_mm,
    shape=(6, 5),
    orientation=(1, 0, 0, 0, 1, 0),
    x_shift_per_slice_mm: float = 0.0,
    series_uid: str | None = None,
    prefix: str = "s",
    **kwargs,
) -> list[np.ndarray]:
    """One file per slice, written in reverse order; returns the stored pixels per slice."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    row = np.array(orientation[:3], float)
    col = np.array(orientation[3:], float)
    normal = np.cross(row, col)
    planes = []
    for n, z in reversed(list(enumerate(z_positions_mm))):
        pixels = (np.arange(shape[0] * shape[1]).reshape(shape) + 100 * n).astype(np.uint16)
        position = normal * z + np.array([x_shift_per_slice_mm * n, 0, 0]) + np.array([-10.0, 20.0, 0.0])
        write_slice(
            folder / f"{prefix}{n:03d}.dcm", pixels, position, orientation, series_uid, n + 1, **kwargs
        )
        planes.insert(0, pixels)
    return planes


def write_tilted_ball_series(
    folder: Path,
    ball_lps_mm,
    radius_mm: float,
    tilt_deg: float = 15.0,
    slices: int = 40,
    shape=(64, 60),
    spacing=(0.9, 0.8),
    table_step_mm: float = 2.0,
    lateral_step_mm: float = 0.0,
    first_position_lps_mm=(-24.0, -30.0, 0.0),
    inside: int = 2000,
    outside: int = 1000,
    **kwargs,
) -> dict:
    """A CT series of a bright ball acquired with the gantry tilted about the patient's L-R axis.

    Image rows run along +x; columns along (0, cos t, -sin t); the table moves the slice
    position along +z (plus ``lateral_step_mm`` along +x per slice), not along the normal,
    as on a tilted scanner. Each pixel holds ``inside`` or ``outside`` by where the DICOM
    geometry places it. ``spacing`` is PixelSpacing (row spacing, column spacing). Returns the
    geometry written, for checks.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tilt = np.radians(tilt_deg)
    row = np.array([1.0, 0.0, 0.0])
    col = np.array([0.0, np.cos(tilt), -np.sin(tilt)])
    orientation = tuple(row) + tuple(col)
    series_uid = generate_uid()
    rows, columns = shape
    j, i = np.mgrid[0:rows, 0:columns]
    ball = np.asarray(ball_lps_mm, dtype=float)
    positions = []
    for k in range(slices):
        position = np.asarray(first_position_lps_mm, float) + [lateral_step_mm * k, 0.0, table_step_mm * k]
        world = position + i[..., None] * spacing[1] * row + j[..., None] * spacing[0] * col
        pixels = np.where(np.linalg.norm(world - ball, axis=-1) < radius_mm, inside, outside)
        write_slice(
            folder / f"t{k:03d}.dcm",
            pixels.astype(np.uint16),
            position,
            orientation,
            series_uid,
            k + 1,
            spacing=spacing,
            gantry_tilt_deg=tilt_deg,
            **kwargs,
        )
        positions.append(position)
    return {"row": row, "col": col, "positions": np.array(positions), "spacing": spacing, "shape": shape}

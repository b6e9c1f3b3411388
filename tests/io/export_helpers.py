"""Shared helpers for the export tests: small volumes and the external validators."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume


def tool_path(name: str) -> str:
    """The venv's copy of a command-line tool (PyPI package) first, else the system one."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed (requirements.txt / scripts/install.sh)")
    return found


def dciodvfy_errors(path: Path) -> list[str]:
    """The error lines dciodvfy reports for one DICOM file (warnings are not errors)."""
    result = subprocess.run([tool_path("dciodvfy"), str(path)], capture_output=True, text=True, timeout=60)
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")]


def oblique_geometry() -> Geometry:
    angle = 0.3
    direction = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    return Geometry(np.array([10.0, -20.0, 30.0]), np.array([0.8, 0.9, 2.5]), direction)


def synthetic_mr_volume() -> Volume:
    rng = np.random.default_rng(7)
    voxels = (rng.normal(size=(5, 6, 7)) * 100.0 + 300.0).astype(np.float32)
    provenance = Provenance("pix2pix-t1t2", "1.2.0", task="T1->T2", weights_sha256="ab" * 32, device="cpu")
    return Volume(voxels, oblique_geometry(), modality="MR", name="t2_synth", provenance=provenance)


def ct_volume() -> Volume:
    rng = np.random.default_rng(3)
    voxels = rng.integers(-1024, 2000, size=(4, 5, 6)).astype(np.int16)
    geometry = Geometry(np.array([-50.0, -60.0, -70.0]), np.array([0.7, 0.6, 1.5]), np.diag([1.0, 1.0, 1.0]))
    return Volume(voxels, geometry, modality="CT", units="HU", name="ct")


def source_header() -> pydicom.Dataset:
    """An acquired series' header with identifying attributes to carry or strip."""
    header = pydicom.Dataset()
    header.PatientName = "DOE^JANE"
    header.PatientID = "PID-998877"
    header.PatientBirthDate = "19610203"
    header.PatientSex = "F"
    header.StudyInstanceUID = pydicom.uid.generate_uid()
    header.SeriesInstanceUID = pydicom.uid.generate_uid()
    header.FrameOfReferenceUID = pydicom.uid.generate_uid()
    header.StudyDate = "20240105"
    header.StudyTime = "101500"
    header.StudyID = "ST42"
    header.AccessionNumber = "ACC-31337"
    header.ReferringPhysicianName = "HOUSE^GREGORY"
    header.InstitutionName = "General Hospital"
    header.Modality = "MR"
    return header


def _slope_intercept(dataset: pydicom.Dataset) -> tuple[float, float]:
    """Rescale slope and intercept, or (MR, no Modality LUT) the real world value mapping's."""
    if "RealWorldValueMappingSequence" in dataset:
        item = dataset.RealWorldValueMappingSequence[0]
        return float(item.RealWorldValueSlope), float(item.RealWorldValueIntercept)
    return float(dataset.get("RescaleSlope", 1.0)), float(dataset.get("RescaleIntercept", 0.0))


def geometry_from_dicom_files(paths: list[Path]) -> tuple[Geometry, np.ndarray]:
    """Rebuild geometry and rescaled voxels[k, j, i] from a written series, sorted by position."""
    datasets = [pydicom.dcmread(p) for p in paths]
    row, column = np.asarray(datasets[0].ImageOrientationPatient, float).reshape(2, 3)
    normal = np.cross(row, column)
    datasets.sort(key=lambda d: float(np.asarray(d.ImagePositionPatient, float) @ normal))
    positions = np.array([np.asarray(d.ImagePositionPatient, float) for d in datasets])
    row_spacing, column_spacing = (float(v) for v in datasets[0].PixelSpacing)
    step = positions[1] - positions[0]
    spacing_k = float(np.linalg.norm(step))
    direction = np.column_stack([row, column, step / spacing_k])
    geometry = Geometry(positions[0], np.array([column_spacing, row_spacing, spacing_k]), direction)
    voxels = np.stack([d.pixel_array * _slope_intercept(d)[0] + _slope_intercept(d)[1] for d in datasets])
    return geometry, voxels

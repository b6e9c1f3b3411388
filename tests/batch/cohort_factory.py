"""Small cohorts for the batch tests: slabs of the demo head as NIfTI files (and one DICOM series)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from app.core.volume import Geometry, Volume
from app.io.nifti import save_nifti

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo" / "generated" / "demo_mr_t1"


def demo_volume() -> Volume:
    from app.io.loader import load_volume

    return load_volume(DEMO)


def slab(volume: Volume, first: int, count: int, step: int = 2) -> Volume:
    """``count`` axial slices from ``first`` (every ``step``-th row/column: a small, fast case)."""
    voxels = np.ascontiguousarray(volume.voxels[first : first + count, ::step, ::step])
    lps = volume.geometry.lps_from_ijk.copy()
    lps[:3, :3] = lps[:3, :3] @ np.diag([step, step, 1.0])
    lps[:3, 3] = volume.geometry.lps_from_index((0, 0, first))
    return replace(volume, voxels=voxels, geometry=Geometry.from_affine_lps(lps), name=f"slab {first}")


def write_cohort(folder: Path, count: int, slices: int = 6) -> list[Path]:
    volume = demo_volume()
    folder.mkdir(parents=True, exist_ok=True)
    first_slices = np.linspace(40, volume.shape_kji[0] - 40 - slices, count).astype(int)
    paths = []
    for n, first in enumerate(first_slices):
        path = folder / f"case{n:02d}.nii.gz"
        save_nifti(slab(volume, int(first), slices), path)
        paths.append(path)
    return paths

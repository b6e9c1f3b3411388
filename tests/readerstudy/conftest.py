"""Tiny real and synthetic NIfTI cases and a created study, for the reader-study tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io.nifti import load_nifti, save_nifti
from app.readerstudy.definition import definition_from_folders
from app.readerstudy.package import create_study

PLUGIN_NAME = "toygan-pix2pix"


def write_cases(root: Path, real: int = 4, synthetic: int = 4) -> tuple[Path, Path]:
    """Real cases as int16 with 1.0 x 1.0 x 2.0 mm voxels; synthetic ones as float32 with a
    provenance sidecar naming the plugin: the differences blinding must remove."""
    rng = np.random.default_rng(7)
    real_dir, synthetic_dir = root / "real_scans", root / "synthetic_scans"
    real_dir.mkdir(parents=True)
    synthetic_dir.mkdir(parents=True)
    for index in range(real):
        voxels = rng.integers(0, 1000, size=(3, 12, 10)).astype(np.int16)
        volume = Volume(voxels, Geometry.identity((1.0, 1.0, 2.0)), modality="MR", name=f"patient{index}")
        save_nifti(volume, real_dir / f"sub-{index:02d}_T1w_SeriesDescription.nii.gz")
    for index in range(synthetic):
        voxels = rng.normal(500, 100, size=(3, 12, 10)).astype(np.float32)
        volume = Volume(
            voxels,
            Geometry.identity((1.0, 1.0, 2.0)),
            modality="MR",
            name=f"fake{index}",
            provenance=Provenance(PLUGIN_NAME, "1.0", task="t1-from-t2"),
        )
        save_nifti(volume, synthetic_dir / f"sub-{index:02d}_{PLUGIN_NAME}_synthetic.nii.gz")
    return real_dir, synthetic_dir


@pytest.fixture
def case_folders(tmp_path):
    return write_cases(tmp_path / "sources")


@pytest.fixture
def created_study(tmp_path, case_folders):
    """A visual Turing test with one practice case per class; returns (CreatedStudy, definition)."""
    real_dir, synthetic_dir = case_folders
    definition = definition_from_folders(
        real_dir, synthetic_dir, "VTT of toygan", seed=1234, practice_per_class=1
    )
    created = create_study(definition, tmp_path / "study", load_nifti, save_nifti)
    return created, definition

"""Label masks as NIfTI (uint8 on the painted volume's grid) with label names in the sidecar."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.core.volume import Geometry, Volume
from app.io.nifti import load_nifti, save_nifti


def save_label_mask_nifti(
    labels_kji: np.ndarray, geometry: Geometry, path: str | Path, names: dict[int, str] | None = None
) -> Path:
    mask = Volume(np.asarray(labels_kji, dtype=np.uint8), geometry, name=Path(path).name)
    sidecar = {"LabelMask": True, "labels": {str(k): v for k, v in (names or {}).items()}}
    return save_nifti(mask, path, extra_sidecar=sidecar)


def load_label_mask_nifti(path: str | Path) -> tuple[np.ndarray, Geometry, dict[int, str]]:
    """Labels[k, j, i] as uint8, their geometry, and the label names from the sidecar."""
    volume = load_nifti(path)
    labels = np.asarray(volume.voxels)
    if np.any(labels < 0) or np.any(labels > 255) or np.any(np.mod(labels, 1) != 0):
        raise ValueError(f"{Path(path).name}: not a label mask (values must be integers 0..255)")
    names_data = volume.metadata.get("sidecar", {}).get("labels", {})
    names = {int(k): str(v) for k, v in names_data.items()}
    return labels.astype(np.uint8), volume.geometry, names

"""Independent references for geometry tests: dcm2niix and SimpleITK, brought to one frame.

Each reader may order axes differently (dcm2niix flips rows, ITK follows the slice order), so
every result is reduced to the closest canonical RAS orientation with nibabel before comparing
arrays and affines.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from app.core.volume import Volume


def dcm2niix_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "dcm2niix"
    return str(beside_python) if beside_python.exists() else shutil.which("dcm2niix")


def canonical(data_ijk: np.ndarray, ras_from_ijk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(data_ijk), ras_from_ijk))
    return np.asanyarray(image.dataobj), image.affine


def canonical_from_volume(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    return canonical(volume.voxels.T, volume.geometry.ras_from_ijk)


def dcm2niix_canonical(dicom_paths: list[Path], work: Path) -> tuple[np.ndarray, np.ndarray]:
    """Run the dcm2niix binary on copies of the files; the single NIfTI it writes, canonical."""
    source, out = work / "in", work / "out"
    source.mkdir(parents=True)
    out.mkdir()
    for n, path in enumerate(dicom_paths):
        shutil.copy(path, source / f"{n:05d}.dcm")
    command = [dcm2niix_binary(), "-z", "n", "-b", "n", "-f", "ref", "-o", str(out), str(source)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    written = [p for p in sorted(out.glob("*.nii")) if "_ROI" not in p.name]  # overlays go to *_ROI*
    if len(written) != 1:
        raise AssertionError(
            f"dcm2niix wrote {[p.name for p in written]}:\n{completed.stdout}{completed.stderr}"
        )
    image = nib.load(str(written[0]))
    data = np.asanyarray(image.dataobj)  # applies scl_slope / scl_inter
    while data.ndim > 3:
        data = data[..., 0]
    return canonical(data, image.affine)


def sitk_canonical(dicom_paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    names = [str(p) for p in dicom_paths]
    if len(names) > 1:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(Path(names[0]).parent)))
        image = reader.Execute()
    else:
        image = sitk.ReadImage(names[0])
    array = sitk.GetArrayFromImage(image)
    if array.ndim == 2:
        array = array[np.newaxis]
    lps = np.eye(4)
    spacing = np.array(image.GetSpacing() + (1.0,) * (3 - image.GetDimension()))
    direction = np.array(image.GetDirection(), dtype=float)
    direction = direction.reshape(3, 3) if direction.size == 9 else np.pad(direction.reshape(2, 2), (0, 1))
    if direction.shape == (3, 3) and direction[2, 2] == 0 and image.GetDimension() == 2:
        direction[2, 2] = 1.0
    lps[:3, :3] = direction * spacing
    lps[:3, 3] = np.array(image.GetOrigin() + (0.0,) * (3 - image.GetDimension()))
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    return canonical(array.T, ras)

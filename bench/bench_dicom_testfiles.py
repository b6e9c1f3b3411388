"""Benchmark: every image file of pydicom's and pydicom-data's test sets, loaded by SynthView vs SimpleITK.

For each file holding an image (Rows, Columns, Pixel Data): does ``load_volume`` load it, or
refuse it with which reason; and, where SimpleITK reads it too, do the two agree in world space
(the LPS position of the first and last voxel of the volume and the value there, within 0.02 voxel
and 1 %), or, for files that give no position (projections, frames without positions), in values
alone. Value conventions that differ on purpose are allowed for: MONOCHROME1 inverted, RT Dose
scaled, a Modality LUT applied, colour samples of more than 8 bits shown as 8 (every RGB sample
compared). Where SimpleITK differs, dcm2niix's reading is the second opinion. Prints the table's
counts, the refusal reasons, the disagreements, and the load time as a ratio to SimpleITK's.

Run: ``.venv/bin/python bench/bench_dicom_testfiles.py [--list]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def image_files() -> list[Path]:
    """Files of both test sets whose header has Rows, Columns and Pixel Data (sorted by name)."""
    import pydicom
    import pydicom.data

    folders = [Path(pydicom.data.get_testdata_file("CT_small.dcm")).parent]
    try:
        import data_store

        folders.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    found: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.suffix in (".py", ".pyc", ".json", ".gz", ".bz2", ".txt", ".xml"):
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    header = pydicom.dcmread(path, stop_before_pixels=False, force=True, defer_size=64)
                has_pixels = any(t in header for t in (0x7FE00010, 0x7FE00008, 0x7FE00009))
                if "Rows" in header and "Columns" in header and has_pixels:
                    found.setdefault(str(path), path)
            except Exception:  # noqa: BLE001 - not DICOM, or too broken to say: not an image file
                continue
    return sorted(found.values(), key=lambda p: p.name.lower())


def simpleitk_read(path: Path):
    import SimpleITK as sitk

    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.SetImageIO("GDCMImageIO")
        return reader.Execute()
    except Exception:  # noqa: BLE001 - SimpleITK refuses: no reference for this file
        return None


def reference_values(path: Path, image, volume) -> list[np.ndarray]:
    """SimpleITK's voxels (k, j, i[, c]) in the value conventions SynthView may use instead:
    as read; MONOCHROME1 inverted; RT Dose scaled; a Modality LUT applied; colour samples of
    more than 8 bits scaled to 8."""
    import pydicom
    import SimpleITK as sitk
    from pydicom.pixels import apply_modality_lut

    array = sitk.GetArrayFromImage(image)
    if array.ndim == (3 if image.GetNumberOfComponentsPerPixel() > 1 else 2):
        array = array[np.newaxis]
    header = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    candidates = [array.astype(float)]
    if volume.is_colour and array.dtype.itemsize > 1:
        bits = int(header.get("BitsStored", 16) or 16)
        candidates.append(np.clip(array.astype(np.int64) >> max(bits - 8, 0), 0, 255).astype(float))
    if str(header.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":
        candidates.append(-array.astype(float))  # inverted by a reader: compared up to a constant
    if "DoseGridScaling" in header:
        candidates.append(array.astype(float) * float(header.DoseGridScaling))
    if "ModalityLUTSequence" in header:
        try:
            candidates.append(np.asarray(apply_modality_lut(array, header), dtype=float))
        except Exception:  # noqa: BLE001 - an unusable LUT gives no candidate
            pass
    return candidates


def compare(path: Path, volume, image) -> str:
    """'world' (same world positions, same values), 'values' (same values; the file gives no
    position to compare: a projection, or frames without positions), or 'differs'."""
    candidates = reference_values(path, image, volume)
    if candidates[0].shape[:3] != volume.voxels.shape[:3]:
        return "differs"
    nk, nj, ni = volume.voxels.shape[:3]
    corners = np.array([[i, j, k] for i in (0, ni - 1) for j in (0, nj - 1) for k in (0, nk - 1)], float)
    positioned = volume.load_warnings and any(
        "no ImagePositionPatient" in w or "no per-frame positions" in w or "no ImageOrientationPatient" in w
        for w in volume.load_warnings
    )
    theirs_index = []
    for corner in corners:
        world = volume.geometry.lps_from_index(corner)
        if image.GetDimension() == 3 and not positioned:
            index = np.array(image.TransformPhysicalPointToContinuousIndex([float(v) for v in world]))
            if not np.allclose(index, np.round(index), atol=0.02):
                return "differs"
        else:
            index = corner
        theirs_index.append(np.round(index).astype(int))
    mine = np.array([np.asarray(volume.voxels[int(c[2]), int(c[1]), int(c[0])], float) for c in corners])
    for number, reference in enumerate(candidates):
        try:
            theirs = np.array(
                [reference[t[2] if reference.shape[0] > 1 else 0, t[1], t[0]] for t in theirs_index]
            )
        except IndexError:
            return "differs"
        if number and np.all(reference <= 0) and reference.ndim == 3:  # MONOCHROME1: up to a constant
            theirs = theirs + float(np.median(mine - theirs))
        if np.allclose(mine, theirs, rtol=0.01, atol=1.0):
            return "values" if positioned else "world"
    return "differs"


def dcm2niix_agrees(path: Path, volume) -> bool:
    """Second opinion where SimpleITK differs: dcm2niix's NIfTI, compared in world space."""
    import shutil
    import subprocess
    import tempfile

    from app.io.nifti import load_nifti

    tool = Path(sys.executable).parent / "dcm2niix"
    command = str(tool) if tool.exists() else shutil.which("dcm2niix")
    if command is None:
        return False
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "in").mkdir()
        shutil.copy(path, folder / "in" / "image.dcm")
        subprocess.run(
            [command, "-z", "n", "-f", "out", "-o", scratch, str(folder / "in")],
            capture_output=True,
            timeout=120,
        )
        outputs = sorted(folder.glob("out*.nii"))
        if len(outputs) != 1:
            return False
        try:
            theirs = load_nifti(outputs[0])
        except Exception:  # noqa: BLE001 - an unreadable second opinion is none
            return False
        nk, nj, ni = volume.shape_kji
        for corner in ([0, 0, 0], [ni - 1, nj - 1, nk - 1], [ni - 1, 0, 0], [0, nj - 1, nk - 1]):
            world = volume.geometry.lps_from_index(np.array(corner, float))
            index = theirs.geometry.index_from_lps(world)
            if not np.allclose(index, np.round(index), atol=0.02):
                return False
            i, j, k = (int(round(v)) for v in index)
            tk, tj, ti = theirs.shape_kji
            if not (0 <= k < tk and 0 <= j < tj and 0 <= i < ti):
                return False
            mine = np.asarray(volume.voxels[corner[2], corner[1], corner[0]], float)
            if not np.allclose(mine, np.asarray(theirs.voxels[k, j, i], float), rtol=0.01, atol=1.0):
                return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print one line per file")
    args = parser.parse_args(argv)

    from app.io.errors import LoadError
    from app.io.loader import load_volume

    files = image_files()
    loaded, refused, agreed, values_only, differ, no_reference = [], Counter(), [], [], [], []
    by_dcm2niix: list[str] = []
    ours_s = theirs_s = 0.0
    for path in files:
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                volume = load_volume(path)
        except LoadError as error:
            reason = str(error).split(": ", 1)[-1]
            refused[reason[:110]] += 1
            if args.list:
                print(f"  refused  {path.name}: {reason}")
            continue
        except Exception as error:  # noqa: BLE001 - a crash is the worst outcome: count it
            refused[f"CRASH {type(error).__name__}: {error}"[:110]] += 1
            continue
        ours_s += time.perf_counter() - start
        loaded.append(path)
        start = time.perf_counter()
        image = simpleitk_read(path)
        theirs_s += time.perf_counter() - start
        if image is None:
            no_reference.append(path.name)
            verdict = "no SimpleITK reference"
        else:
            verdict = compare(path, volume, image)
            if verdict == "differs" and dcm2niix_agrees(path, volume):
                verdict = "world (dcm2niix; SimpleITK differs)"
                by_dcm2niix.append(path.name)
            else:
                kept = agreed if verdict == "world" else values_only if verdict == "values" else differ
                kept.append(path.name)
        if args.list:
            print(f"  loads    {path.name}: {volume.voxels.shape} {volume.voxels.dtype} {verdict}")
    print(f"{len(files)} image files: {len(loaded)} load, {sum(refused.values())} refused")
    print(f"  of those loaded: {len(agreed)} agree with SimpleITK in world space (positions and values),")
    print(f"  {len(by_dcm2niix)} agree with dcm2niix in world space where SimpleITK differs,")
    print(f"  {len(values_only)} agree in values (no position in the file to compare), {len(differ)} differ,")
    print(f"  {len(no_reference)} have no SimpleITK reading to compare with")
    print("refusal reasons:")
    for reason, count in refused.most_common():
        print(f"  {count:3d}  {reason}")
    if by_dcm2niix:
        print("dcm2niix agrees, SimpleITK differs: " + ", ".join(by_dcm2niix))
    if differ:
        print("differ: " + ", ".join(differ))
    if theirs_s > 0:
        print(f"load time ratio SynthView / SimpleITK (files both read): {ours_s / theirs_s:.2f}")


if __name__ == "__main__":
    main()

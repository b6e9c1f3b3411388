"""Benchmark: every image file of pydicom's and pydicom-data's test sets, loaded by SynthView vs SimpleITK.

For each file holding an image (Rows, Columns, Pixel Data): does ``load_volume`` load it, or
refuse it with which reason; and, where SimpleITK reads it too, do the two agree in world space
(the LPS position of the first and last voxel of the volume and the value there, within 0.01 mm
and 1 %). Colour images count as agreeing when every RGB sample agrees. Prints the table's
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
    """Files of both test sets whose header has Rows, Columns and Pixel Data (sorted, unique)."""
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
                    found.setdefault(path.name, path)
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


def agrees(volume, image) -> bool:
    """Same world positions of the first and last voxel, and the same values there."""
    import SimpleITK as sitk

    reference = sitk.GetArrayFromImage(image)  # (k, j, i[, c])
    colour = image.GetNumberOfComponentsPerPixel() > 1
    if reference.ndim == (3 if colour else 2):
        reference = reference[np.newaxis]
    if reference.shape[:3] != volume.voxels.shape[:3]:
        return False
    size = np.array(image.GetSize() + ((1,) if image.GetDimension() == 2 else ()))
    for index in (np.zeros(3), size - 1):
        index = [int(v) for v in index]
        point = image.TransformIndexToPhysicalPoint(index[: image.GetDimension()])
        world = np.array(list(point) + ([0.0] if len(point) == 2 else []))
        ours = volume.geometry.index_from_lps(world if len(point) == 3 else volume.geometry.lps_from_index(index))
        if len(point) == 3 and not np.allclose(ours, index, atol=0.01 / min(volume.geometry.spacing_mm)):
            return False
        k, j, i = (int(round(v)) for v in ours[::-1])
        theirs = reference[index[2], index[1], index[0]].astype(float)
        mine = np.asarray(volume.voxels[k, j, i], dtype=float)
        if not np.allclose(mine, theirs, rtol=0.01, atol=1.0):
            return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print one line per file")
    args = parser.parse_args(argv)

    from app.io.errors import LoadError
    from app.io.loader import load_volume

    files = image_files()
    loaded, refused, agreed, differ, no_reference = [], Counter(), [], [], []
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
        elif agrees(volume, image):
            agreed.append(path.name)
            verdict = "agrees"
        else:
            differ.append(path.name)
            verdict = "DIFFERS"
        if args.list:
            print(f"  loads    {path.name}: {volume.voxels.shape} {volume.voxels.dtype} {verdict}")
    print(f"{len(files)} image files: {len(loaded)} load, {sum(refused.values())} refused")
    print(f"  of those loaded: {len(agreed)} agree with SimpleITK in world space, {len(differ)} differ,")
    print(f"  {len(no_reference)} have no SimpleITK reading to compare with")
    print("refusal reasons:")
    for reason, count in refused.most_common():
        print(f"  {count:3d}  {reason}")
    if differ:
        print("differ: " + ", ".join(differ))
    if theirs_s > 0:
        print(f"load time ratio SynthView / SimpleITK (files both read): {ours_s / theirs_s:.2f}")


if __name__ == "__main__":
    main()

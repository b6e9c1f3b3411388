"""DICOM series loading: SynthView's loader vs SimpleITK's ImageSeriesReader, same files, warm cache.

The benchmark writes its own 512 x 512 x 400 int16 CT-like series (one file per slice,
explicit VR little endian, rescale intercept -1024) into a temporary folder, reads it once with
each reader to warm the page cache, then times several runs of each:

* ours: ``load_volume(folder)``: header scan of the folder + pixels into a numpy array;
* SimpleITK: ``GetGDCMSeriesFileNames(folder)`` + ``ImageSeriesReader.Execute()`` (no numpy
  conversion counted, which favours SimpleITK).

Peak memory of our loader is measured in a fresh subprocess as the growth of the resident set's
high-water mark (reset through /proc/self/clear_refs), relative to the raw voxel bytes
(512 * 512 * 400 * 2); tracemalloc is printed too, but it sees only the Python/NumPy heap, not
the anonymous mmap the voxels are read into (app.io.dicom_load.empty_volume). Figures are printed as ratios, so they compare across
machines. Targets: time ratio <= 0.5, peak memory < 1.3x.

    .venv/bin/python bench/bench_dicom_load.py [--slices 400] [--size 512] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_ct_series(folder: Path, size: int, slices: int) -> None:
    """A body-like ellipse with bone and noise, 0.7 mm pixels, 1.25 mm slices, stored + 1024."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    rng = np.random.default_rng(0)
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    body = (x / 0.85) ** 2 + (y / 0.65) ** 2 < 1
    bone = ((x / 0.12) ** 2 + ((y + 0.35) / 0.1) ** 2) < 1
    base = np.where(body, 1024 + 40, 1024 - 1000).astype(np.int16)
    base[bone] = 1024 + 900
    noise = rng.normal(0, 12, (8, size, size)).astype(np.int16)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for k in range(slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "CT"
        ds.PatientName = "Bench^CT"
        ds.PatientID = "BENCH"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SeriesNumber, ds.InstanceNumber, ds.AcquisitionNumber = 1, k + 1, 1
        ds.ImagePositionPatient = [-179.2, -179.2, -500.0 + 1.25 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = 1.25
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.PixelData = (base + noise[k % 8]).astype("<i2").tobytes()
        ds.save_as(folder / f"CT{k:04d}.dcm", enforce_file_format=True)


def time_ours(folder: Path) -> float:
    from app.io.loader import load_volume

    started = time.perf_counter()
    volume = load_volume(folder)
    elapsed = time.perf_counter() - started
    assert volume.voxels.dtype == np.int16
    return elapsed


def time_sitk(folder: Path) -> float:
    import SimpleITK as sitk

    started = time.perf_counter()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    reader.Execute()
    return time.perf_counter() - started


_MEMORY_PROBE = r"""
import json, sys, tracemalloc
sys.path.insert(0, sys.argv[2])
import numpy as np
from app.io.loader import load_volume
import app.io.dicom_load, app.io.dicom_scan  # imports out of the measurement

def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

mode = sys.argv[3]
if mode == "rss":
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset the high-water mark to the current RSS
    before = rss_kb()
    volume = load_volume(sys.argv[1])
    peak = (hwm_kb() - before) * 1024
else:
    tracemalloc.start()
    volume = load_volume(sys.argv[1])
    peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({"peak_bytes": peak, "voxel_bytes": volume.voxels.nbytes}))
"""


def peak_memory_ratio(folder: Path, mode: str) -> float:
    completed = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(folder), str(ROOT), mode],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    return figures["peak_bytes"] / figures["voxel_bytes"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_dicom_") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        write_ct_series(folder, args.size, args.slices)
        raw_mb = args.size * args.size * args.slices * 2 / 2**20
        print(
            f"series: {args.size}x{args.size}x{args.slices} int16 ({raw_mb:.0f} MiB of voxels), "
            f"written in {time.perf_counter() - started:.1f} s"
        )
        time_ours(folder), time_sitk(folder)  # warm the page cache and the imports
        ours, theirs = [], []
        for _ in range(args.repeat):  # interleaved, so machine load affects both alike
            ours.append(time_ours(folder))
            theirs.append(time_sitk(folder))
        ours_s, sitk_s = statistics.median(ours), statistics.median(theirs)
        print(
            f"load time ratio ours/SimpleITK: {ours_s / sitk_s:.2f}  (target <= 0.5; "
            f"medians {ours_s:.3f} s vs {sitk_s:.3f} s over {args.repeat} runs)"
        )
        rss = peak_memory_ratio(folder, "rss")
        traced = peak_memory_ratio(folder, "tracemalloc")
        print(
            f"peak memory / voxel bytes: {rss:.2f}x resident-set growth (target < 1.3x); tracemalloc"
            f" {traced:.2f}x counts only the Python/NumPy heap (the voxel buffer is an mmap it does not see)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

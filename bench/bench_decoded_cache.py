"""bench_decoded_cache: reopening a study from the decoded-series cache against loading it from its files.

Two cases: the demo series (189 slices 197 x 233, explicit VR little endian) and a JPEG 2000
lossless copy of it that the benchmark writes into a temporary folder (what a workstation gets
from a PACS that compresses). The cache lives in a temporary folder too (never the user's).

* In one process (readers imported, page cache warm): the median of ``--repeat`` runs of
  ``load_volume(folder)`` against ``DecodedCache.get(folder)`` (a hit: every file's stats, the
  JSON record and the .npy array read), and their ratio; ``put`` (after a load) and ``verify``
  (the background rehash after a hit) are given as ratios to the load too.
* In fresh interpreters (reopening in a new viewer process): from the interpreter's start to the
  volume in memory, imports included (numpy, and pydicom + its plugins for a load), ``--rounds``
  starts of each alternated; medians and ratio, and whether pydicom was imported.

    .venv/bin/python bench/bench_decoded_cache.py [--repeat 5] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import sys, time
start = time.perf_counter()
sys.path.insert(0, sys.argv[3])
if sys.argv[1] == "load":
    from app.io.loader import load_volume
    volume = load_volume(sys.argv[2])
else:
    from app.io.decoded_cache import DecodedCache
    volume = DecodedCache(sys.argv[4]).get(sys.argv[2])
print("SECONDS", time.perf_counter() - start, "PYDICOM", "pydicom" in sys.modules, "SHAPE", volume.voxels.shape)
"""


def write_jpeg2000_copy(source: Path, folder: Path) -> Path:
    import pydicom
    from pydicom.uid import JPEG2000Lossless

    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.dcm")):
        dataset = pydicom.dcmread(path)
        dataset.compress(JPEG2000Lossless)
        dataset.save_as(folder / path.name, enforce_file_format=True)
    return folder


def median_seconds(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_process(name: str, folder: Path, cache_folder: Path, repeat: int) -> None:
    import numpy as np

    from app.io.decoded_cache import DecodedCache
    from app.io.loader import load_volume

    cache = DecodedCache(cache_folder)
    fresh = load_volume(folder)  # warm: imports, page cache
    start = time.perf_counter()
    assert cache.put(folder, None, fresh)
    put_s = time.perf_counter() - start
    hit = cache.get(folder)
    assert hit is not None and np.array_equal(hit.voxels, fresh.voxels)
    load_s = median_seconds(lambda: load_volume(folder), repeat)
    hit_s = median_seconds(lambda: cache.get(folder), repeat)
    verify_s = median_seconds(lambda: cache.verify(folder), repeat)
    print(
        f"{name}: in one process, median of {repeat}: load {load_s * 1000:.1f} ms, cache hit {hit_s * 1000:.1f} ms"
        f" -> hit/load {hit_s / load_s:.3f} ({load_s / hit_s:.0f}x faster); put {put_s / load_s:.2f}x a load,"
        f" verify {verify_s / load_s:.2f}x a load ({fresh.voxels.nbytes / 1e6:.0f} MB of voxels)"
    )


def fresh_processes(name: str, folder: Path, cache_folder: Path, rounds: int) -> None:
    def run(mode: str) -> tuple[float, bool]:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, mode, str(folder), str(ROOT), str(cache_folder)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        fields = done.stdout.split()
        return float(fields[1]), fields[3] == "True"

    run("load"), run("hit")  # untimed: bytecode compiled, files cached
    loads, hits = [], []
    for _ in range(rounds):
        loads.append(run("load"))
        hits.append(run("hit"))
    load_s = statistics.median(seconds for seconds, _ in loads)
    hit_s = statistics.median(seconds for seconds, _ in hits)
    print(
        f"{name}: fresh interpreter, median of {rounds} alternated starts, imports included: load {load_s:.3f} s"
        f" (pydicom imported: {loads[0][1]}), cache hit {hit_s:.3f} s (pydicom imported: {hits[0][1]})"
        f" -> hit/load {hit_s / load_s:.3f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure in one process")
    parser.add_argument("--rounds", type=int, default=5, help="fresh interpreters started per side")
    args = parser.parse_args()
    from app.io.demo_study import ensure_demo_study

    demo = ensure_demo_study()
    with tempfile.TemporaryDirectory(prefix="bench-decoded-cache-") as scratch:
        scratch = Path(scratch)
        jpeg2000 = write_jpeg2000_copy(demo, scratch / "demo_j2k")
        for name, folder in (("demo (uncompressed)", demo), ("demo as JPEG 2000 lossless", jpeg2000)):
            cache_folder = scratch / f"cache-{folder.name}"
            in_process(name, folder, cache_folder, args.repeat)
            fresh_processes(name, folder, cache_folder, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

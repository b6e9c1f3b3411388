"""Benchmark: derived DICOM export and ROI statistics, as ratios to numpy baselines.

* Export: ``write_derived_series`` of a 256 x 256 x 64 float volume (rescaled to int16, one
  file per slice, UIDs, geometry) vs writing the same int16 slices as raw files (the I/O floor).
* ROI statistics: ``roi_statistics`` of a 40 mm ellipse (finding its voxels in world
  coordinates) vs numpy's mean/std/min/max over a precomputed mask of the same voxels.

Run: ``.venv/bin/python bench/bench_export.py``. Prints ratios (lower is better; 1 = floor).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.annotations.roi_stats import region_mask, roi_statistics  # noqa: E402
from app.annotations.shapes import EllipseRoi  # noqa: E402
from app.core.provenance import Provenance  # noqa: E402
from app.core.volume import Geometry, Volume  # noqa: E402
from app.io.dicom_export import write_derived_series  # noqa: E402


def best_of(function, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    rng = np.random.default_rng(0)
    voxels = rng.normal(300, 80, size=(64, 256, 256)).astype(np.float32)
    geometry = Geometry(np.array([-120.0, -120.0, -60.0]), np.array([0.94, 0.94, 2.0]), np.eye(3))
    volume = Volume(voxels, geometry, modality="MR", provenance=Provenance("bench-gan", "1.0"))

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        counter = iter(range(1000))

        def export() -> None:
            write_derived_series(volume, root / f"dicom{next(counter)}")

        def raw() -> None:
            folder = root / f"raw{next(counter)}"
            folder.mkdir()
            stored = np.rint(voxels).astype(np.int16)
            for k in range(stored.shape[0]):
                stored[k].tofile(folder / f"{k:05d}.raw")

        export_s, raw_s = best_of(export), best_of(raw)
    print(
        f"export 256x256x64: {export_s * 1000:.0f} ms, raw int16 write {raw_s * 1000:.0f} ms, ratio {export_s / raw_s:.1f}"
    )

    ellipse = EllipseRoi(
        center_lps=geometry.lps_from_index([128, 128, 32]), half_width_mm=40, half_height_mm=40
    )
    mask = region_mask(ellipse, geometry, volume.shape_kji)

    def numpy_stats() -> None:
        values = voxels[mask]
        values.mean(), values.std(ddof=1), values.min(), values.max()

    roi_s, numpy_s = best_of(lambda: roi_statistics(ellipse, volume), 5), best_of(numpy_stats, 5)
    print(
        f"ROI stats 40 mm ellipse ({int(mask.sum())} voxels): {roi_s * 1000:.2f} ms,"
        f" numpy on a ready mask {numpy_s * 1000:.2f} ms, ratio {roi_s / numpy_s:.1f}"
    )


if __name__ == "__main__":
    main()

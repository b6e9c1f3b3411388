"""Redraw time of the 3x3 compare grid for one scroll step on 512x512 slices, offscreen.

One scroll step moves the cursor one slice along the axial normal; every panel of the grid
that shows that plane re-cuts its slice and all nine panels are repainted (the crosshair of the
coronal and sagittal panels moves). The figure is reported as median and 95th percentile, and
as a ratio to the bare numpy windowing (apply_window) of the same nine 512x512 slices measured
in the same process, so it compares across machines.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_redraw.py [--steps 60]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def make_pair(size: int = 512, slices: int = 64):
    from app.core.provenance import Provenance
    from app.core.volume import Geometry, Volume

    rng = np.random.default_rng(0)
    voxels = rng.normal(40, 300, (slices, size, size)).astype(np.float32)
    geometry = Geometry.identity(spacing_mm=(0.7, 0.7, 0.7))
    original = Volume(voxels, geometry, modality="CT", units="HU", name="original")
    synthesized = original.with_voxels(
        voxels + rng.normal(0, 10, voxels.shape).astype(np.float32),
        provenance=Provenance("bench-gan", "1"),
        name="synthesized",
    )
    return original, synthesized


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--screenshot", default=None, help="save the grid as PNG at the end (to look at it)")
    args = parser.parse_args()

    from PySide6 import QtWidgets

    from app.core.display import apply_window
    from app.core.planes import Plane, extract_slice, slice_position_mm
    from app.core.viewer_state import ViewerState
    from app.ui.compare_view import CompareView

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    original, synthesized = make_pair()
    state = ViewerState(original)
    view = CompareView(state, original, [synthesized], list(Plane))
    view.resize(1800, 1800)  # each panel about 590 px: 512x512 slices drawn near 1:1
    view.show()
    app.processEvents()
    view.grid.reset_zoom()
    app.processEvents()

    # Baseline: numpy windowing of nine 512x512 slices (the least any redraw must do), timed
    # between the redraws so both see the same machine load.
    window = state.display.window
    position = slice_position_mm(Plane.AXIAL, state.cursor_lps_mm)
    baseline_slices = [
        extract_slice(volume, Plane.AXIAL, position).pixels.copy()
        for volume in (original, synthesized, view.difference.volume) * 3
    ]
    baseline_s: list[float] = []
    cpu_s: dict[int, list[float]] = {}  # this process's CPU time per step, by the list of wall times

    def timed(move) -> list[float]:
        times, cpu = [], []
        for step in range(args.steps):
            start, start_cpu = time.perf_counter(), time.process_time()
            move(1 if (step // 10) % 2 == 0 else -1)  # back and forth: stays inside the volume
            view.repaint()  # synchronous paint of all nine panels
            app.processEvents()
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            start = time.perf_counter()
            for pixels in baseline_slices:
                apply_window(pixels, window)
            baseline_s.append(time.perf_counter() - start)
        cpu_s[id(times)] = cpu
        return times

    # Scroll in the axial row: 3 panels re-cut their slice, 6 move their crosshair.
    redraw_s = timed(lambda sign: state.step(Plane.AXIAL, sign))
    # The same scroll, step by step alternately with pyqtgraph's own rendering of a slice (an
    # Indexed8 image Qt converts on every paint: what the panels drew before WindowedImageItem).
    import pyqtgraph as pg

    from app.ui.fast_image_item import WindowedImageItem

    windowed_render = WindowedImageItem.render
    alternate: dict[bool, list[float]] = {True: [], False: []}
    alternate_cpu: dict[bool, list[float]] = {True: [], False: []}  # this process's CPU time:
    for step in range(2 * args.steps):  # what the redraw costs, whatever else the machine runs
        windowed = step % 2 == 1
        WindowedImageItem.render = windowed_render if windowed else pg.ImageItem.render
        start, start_cpu = time.perf_counter(), time.process_time()
        state.step(Plane.AXIAL, 1 if (step // 20) % 2 == 0 else -1)
        view.repaint()
        app.processEvents()
        alternate[windowed].append(time.perf_counter() - start)
        alternate_cpu[windowed].append(time.process_time() - start_cpu)
    WindowedImageItem.render = windowed_render
    # Worst case: the cursor moves one voxel along all three axes, all 9 panels re-cut.
    full_s = timed(lambda sign: state.set_cursor(state.cursor_lps_mm + sign * 0.7))
    if args.screenshot:
        view.grab().save(args.screenshot)

    # A second series on another grid (0.72 mm, shifted): its panels and the difference are
    # resampled through world coordinates slice by slice as they are drawn.
    from app.core.volume import Geometry, Volume

    other_grid = Geometry(np.array([1.0, 1.0, 1.0]), np.array([0.72, 0.72, 0.75]), np.eye(3))
    other = Volume(
        np.random.default_rng(1).normal(40, 300, (58, 500, 500)).astype(np.float32),
        other_grid,
        modality="CT",
        units="HU",
        name="other grid",
    )
    view.detach()
    view.close()
    state = ViewerState(original)
    view = CompareView(state, original, [other], list(Plane))
    view.resize(1800, 1800)
    view.show()
    app.processEvents()
    cross_grid_first_s = timed(lambda sign: state.step(Plane.AXIAL, sign))  # while it is filled
    from app.core.resample import wait_for_resampled_partners

    filled = wait_for_resampled_partners()
    cross_grid_s = timed(lambda sign: state.step(Plane.AXIAL, sign))

    base = float(np.median(np.array(baseline_s[5:]) * 1e3))
    print(f"3x3 compare grid, 512x512 slices, {args.steps - 5} steps each, offscreen")
    print(f"numpy windowing of the 9 slices (baseline): median {base:.2f} ms")
    for label, times, target_ms in (
        ("axial scroll step, same grid", redraw_s, 8),
        ("all 9 panels re-cut, same grid", full_s, 16),
        ("axial scroll, second series on another grid, while its resampling fills", cross_grid_first_s, 16),
        (f"axial scroll, second series on another grid, resampled once (filled: {filled})", cross_grid_s, 16),
    ):
        values_ms = np.array(times[5:]) * 1e3
        median, p95 = float(np.median(values_ms)), float(np.percentile(values_ms, 95))
        cpu_median = float(np.median(np.array(cpu_s[id(times)][5:]) * 1e3))
        print(
            f"{label}: median {median:.1f} ms, p95 {p95:.1f} ms"
            f" = {median / base:.1f}x / {p95 / base:.1f}x the baseline (target < {target_ms} ms median);"
            f" CPU median {cpu_median:.1f} ms"
        )
    for label, samples in (("wall", alternate), ("CPU", alternate_cpu)):
        windowed_ms, pyqtgraph_ms = (float(np.median(np.array(samples[key][5:]) * 1e3)) for key in (True, False))
        print(
            f"axial scroll step, same grid, alternating ({label} time): windowed ARGB32 {windowed_ms:.1f} ms,"
            f" pyqtgraph's Indexed8 rendering {pyqtgraph_ms:.1f} ms = {windowed_ms / pyqtgraph_ms:.2f}x"
        )
    print(f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    view.detach()
    return 0


if __name__ == "__main__":
    sys.exit(main())

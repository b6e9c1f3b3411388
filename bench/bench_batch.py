"""Cohort runs on Dask against the plain loop, in one process run (ratios: this machine is noisy).

    .venv/bin/python bench/bench_batch.py [--cases 8] [--slices 12] [--plugin mr-t1-denoise] [--compare]

Baseline: the plain loop a researcher would write, in this process with one torch thread (the
budget of one worker of one thread): for each case load, synthesize with the plugin loaded once, write the NIfTI (+ the hallucination check with --compare). Then the
same cases through ``batch synthesize``'s engine on an embedded LocalCluster of 1 worker (1 thread)
and of 2 workers (1 thread each). Printed: per-case overhead of the 1-worker cohort over the loop
(from the first submission to the last result, cluster start-up shown apart), throughput in cases
per minute for the loop, 1 and 2 workers, and each worker's peak resident memory against the
voxel bytes of one case. Target: per-case overhead at most 5 %.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def plain_loop(cases, plugin: str, out: Path, compare: bool) -> tuple[float, float]:
    import torch

    from app.analysis.compare_run import run_compare
    from app.io.loader import load_volume
    from app.io.nifti import save_nifti
    from app.plugins.discovery import find_plugin
    from app.plugins.loading import load_plugin
    from app.plugins.runtime import RunOptions, synthesize

    torch.set_num_threads(1)  # the process budget of one Dask worker with one thread
    started, started_cpu = time.perf_counter(), time.process_time()
    loaded = load_plugin(find_plugin(plugin))
    out.mkdir(parents=True)
    for case in cases:
        volume = load_volume(case.path)
        result = synthesize(loaded, volume, RunOptions(device="cpu"))
        save_nifti(result.volume, out / f"{case.case_id}.nii.gz")
        if compare:
            run_compare(volume, result.volume)
    return time.perf_counter() - started, time.process_time() - started_cpu


def cohort(cases, plugin: str, out: Path, workers: int, compare: bool) -> dict:
    from app.batch.cohort import ClusterOptions, run_cohort, spec_for_plugin

    stats: dict = {}
    spec = spec_for_plugin(plugin, "cpu", compare)
    rows = run_cohort(cases, spec, out, ClusterOptions(workers=workers, threads_per_worker=1, retries=0), stats=stats)
    assert all(r.status == "done" for r in rows), [r.reason for r in rows if r.status != "done"]
    stats["cpu_s"] = sum(r.cpu_s for r in rows)
    return stats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=8, help="cases in the cohort (default 8)")
    parser.add_argument("--slices", type=int, default=12, help="axial slices per case (default 12)")
    parser.add_argument("--plugin", default="mr-t1-denoise", help="plugin (default mr-t1-denoise)")
    parser.add_argument("--compare", action="store_true", help="also run the hallucination check per case")
    args = parser.parse_args(argv)

    from app.batch.cases import find_cases
    from app.batch.cohort import _peak_rss
    from tests.batch.cohort_factory import write_cohort

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp = Path(tmp)
        paths = write_cohort(tmp / "in", args.cases, slices=args.slices)
        cases = find_cases(tmp / "in")
        from app.io.loader import load_volume

        voxel_bytes = load_volume(paths[0]).voxels.astype("float32").nbytes
        loop_s, loop_cpu = plain_loop(cases, args.plugin, tmp / "loop", args.compare)
        loop_rss = _peak_rss()
        one = cohort(cases, args.plugin, tmp / "one", 1, args.compare)
        two = cohort(cases, args.plugin, tmp / "two", 2, args.compare)
    n = len(cases)
    print(f"cohort: {n} cases of {args.slices} slices ({voxel_bytes / 2**20:.2f} MiB float32 each), plugin {args.plugin},"
          f" compare {'on' if args.compare else 'off'}")  # fmt: skip
    print(f"plain loop (this process, 1 thread, plugin loaded once): {loop_s:.2f} s = {60 * n / loop_s:.1f} cases/min")
    print(f"1 worker: cluster start {one['cluster_start_s']:.2f} s, cases {one['cases_s']:.2f} s"
          f" = {60 * n / one['cases_s']:.1f} cases/min; per-case overhead vs the loop {one['cases_s'] / loop_s - 1:+.1%}"
          f" (ratio {one['cases_s'] / loop_s:.3f}; with start-up {(one['cases_s'] + one['cluster_start_s']) / loop_s:.3f})")  # fmt: skip
    print(f"2 workers: cases {two['cases_s']:.2f} s = {60 * n / two['cases_s']:.1f} cases/min"
          f" (speed-up over 1 worker {one['cases_s'] / two['cases_s']:.2f}x)")  # fmt: skip
    print(f"CPU time of the cases (robust to a busy machine): loop {loop_cpu:.2f} s, 1 worker {one['cpu_s']:.2f} s"
          f" (ratio {one['cpu_s'] / loop_cpu:.3f}), 2 workers {two['cpu_s']:.2f} s (ratio {two['cpu_s'] / loop_cpu:.3f})")  # fmt: skip
    for label, stats in (("1 worker", one), ("2 workers", two)):
        peaks = ", ".join(f"{p / 2**20:.0f} MiB ({p / voxel_bytes:.0f}x a case)" for p in stats["worker_peak_rss_bytes"])
        print(f"peak RSS per worker, {label}: {peaks}")
    print(f"peak RSS of the loop's process (for scale): {loop_rss / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

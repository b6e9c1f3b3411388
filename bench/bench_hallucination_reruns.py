"""Cost of the rerun hallucination maps, as ratios to one plain synthesis of the same input.

TTA, Monte-Carlo dropout, perturbation and cycle maps rerun the generator (7 TTA runs, N dropout
samples, 2 perturbation runs, one reverse run), so their cost in plugin runs is known in advance;
this measures what each map costs in practice against one ``synthesize`` of the same slices, in
one process, with the shipped pseudo-healthy plugin on axial slices of the demo anatomy (MNI152
T1). A map the plugin cannot make (no dropout layers, no reverse generator) is listed with the
reason.

    .venv/bin/python bench/bench_hallucination_reruns.py [--slices 8] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--plugin", default="mr-t1-pseudo-healthy")
    args = parser.parse_args(argv)

    from app.io.demo_study import mni_t1_template_path
    from app.io.nifti import load_nifti
    from app.plugins.discovery import find_plugin
    from app.plugins.loading import load_plugin
    from app.plugins.rerun_maps import MapRequest, map_availability
    from app.plugins.runtime import RunOptions, synthesize
    from app.plugins.uncertainty_runs import compute_map, has_dropout

    volume = load_nifti(mni_t1_template_path())
    middle = volume.voxels.shape[0] // 2
    start = max(0, middle - args.slices // 2)
    voxels = volume.voxels[start : start + args.slices].copy()
    geometry = volume.geometry  # same direction and spacing; origin irrelevant for timing
    part = volume.__class__(voxels, geometry, volume.modality or "MR", name="mni slab")
    plugin = load_plugin(find_plugin(args.plugin))
    options = RunOptions(device=args.device)
    synthesize(plugin, part, options)  # warm-up

    def timed(run) -> float:
        began = time.perf_counter()
        run()
        return time.perf_counter() - began

    base = min(timed(lambda: synthesize(plugin, part, options)) for _ in range(2))
    synthesized = synthesize(plugin, part, options).volume
    print(f"{args.plugin} on {voxels.shape} ({args.device}): one synthesis = 1.00")
    for kind, reason in map_availability(plugin.manifest).items():
        if kind == "mc_dropout" and not reason and not has_dropout(plugin):
            reason = f"{plugin.manifest.name} has no dropout layers"  # a TorchScript without any
        if reason:
            print(f"  {kind:13s} map: not measured ({reason})")
            continue
        request = MapRequest(kind, device=args.device)
        seconds = min(timed(lambda r=request: compute_map(r, plugin, part, synthesized)) for _ in range(2))
        runs = {"tta": "7 generator runs", "perturbation": "2 generator runs", "cycle": "1 reverse run"}
        runs["mc_dropout"] = f"{request.mc_samples} dropout samples"
        print(f"  {kind:13s} map: {seconds / base:5.2f} x one synthesis ({runs[kind]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

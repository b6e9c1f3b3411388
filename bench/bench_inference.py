"""Plugin runtime throughput vs a bare torch loop over the same model and slices.

The runtime (``app.plugins.runtime.synthesize``) adds intensity scaling, reorientation to the
plugin's plane, padding, batching with OOM handling, inverse scaling and a Volume with
provenance around the network. This benchmark runs the same generator over the same axial
slices of the demo volume (nilearn's MNI152 T1, the anatomy of the demo study) both ways in one
process and reports the runtime's time as a ratio to the bare loop (target: overhead < 10 %).

    .venv/bin/python bench/bench_inference.py [--device cpu|cuda] [--slices 0] [--ngf 16] [--arch ...]

The bare loop: normalised slices already in memory, ``model(batch)`` under inference_mode (and
float16 autocast on CUDA, as the runtime uses), outputs copied back to the CPU. Plugin loading
(hash + weights) is timed separately: it happens once per session, not per volume.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def demo_voxels(npy_path: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The MNI152 T1 template as (voxels[k, j, i], direction), or a saved copy of it."""
    if npy_path:
        voxels = np.load(npy_path).astype(np.float32)
        return voxels, np.diag([-1.0, -1.0, 1.0])
    from app.io.demo_study import mni_t1_template_path
    from app.io.nifti import load_nifti

    volume = load_nifti(mni_t1_template_path())
    return np.asarray(volume.voxels, dtype=np.float32), volume.geometry.direction


def write_plugin(folder: Path, arch: str, ngf: int) -> Path:
    import torch
    import yaml

    from app.plugins.architectures import build_generator
    from app.plugins.manifest import ArchitectureSpec

    torch.manual_seed(0)
    if arch == "conv1x1":  # next to no compute: what is left is the framework's own cost
        weights = folder / "conv1x1.pt"
        torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.Tanh())).save(str(weights))
    else:
        spec = ArchitectureSpec(arch, 1, 1, ngf=ngf, norm="instance")
        weights = folder / "latest_net_G.pth"
        torch.save(build_generator(spec).state_dict(), weights)
    manifest = {
        "name": "bench-mr2ct",
        "version": "0",
        "task": "cross-modality",
        "input": {"modality": "MR"},
        "output": {"modality": "CT", "units": "HU"},
        "dimensionality": "2D",
        "plane": "axial",
        "normalization": {
            "input": {"method": "percentile", "low_percentile": 0.5, "high_percentile": 99.5},
            "output": {"method": "window", "low": -1000, "high": 2000},
        },
        "architecture": {"type": "torchscript"}
        if arch == "conv1x1"
        else {"type": arch, "ngf": ngf, "norm": "instance"},
        "weights": {"file": weights.name, "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()},
        "model_card": {
            "training_data": "none",
            "paired": False,
            "intended_use": "benchmark",
            "known_limits": "random",
        },
    }
    (folder / "plugin.yaml").write_text(yaml.safe_dump(manifest))
    return folder


def bare_loop(model, stack: np.ndarray, batch_size: int, device, amp: bool, multiple: int) -> np.ndarray:
    """The least a script can do: slices to the device once, forward in batches, back once."""
    import torch
    import torch.nn.functional as F

    rows, cols = stack.shape[1:]
    pad = (0, -cols % multiple, 0, -rows % multiple)  # what the network needs (ResNet: 4)
    slices = torch.from_numpy(stack).to(device)
    output = torch.empty(slices.shape, dtype=torch.float32, device=device)
    autocast = torch.autocast("cuda", dtype=torch.float16) if amp else nullcontext()
    with torch.inference_mode(), autocast:
        for start in range(0, stack.shape[0], batch_size):
            batch = slices[start : start + batch_size, None]
            batch = F.pad(batch, pad, mode="replicate") if any(pad) else batch
            output[start : start + batch_size] = model(batch)[:, 0, :rows, :cols].float()
    return output.cpu().numpy()


def network_time_split(plugin, run, sync) -> tuple[float, float]:
    """(seconds inside the network's forward, seconds in total) for one ``run()``.

    The forward is wrapped with device synchronisation on both sides, so what is left of the
    total is the framework's own cost (scaling, batching, reorientation, copies) whatever the
    network: the noisy part of a pass, the convolutions, drops out of that figure.
    """
    import torch

    inner = plugin.generator.module
    spent = [0.0]

    class Timed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, images):
            sync()
            started = time.perf_counter()
            output = self.inner(images)
            sync()
            spent[0] += time.perf_counter() - started
            return output

    timed = Timed()
    plugin.generator.module = timed
    try:
        sync()
        started = time.perf_counter()
        run(timed)
        sync()
        return spent[0], time.perf_counter() - started
    finally:
        plugin.generator.module = inner


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--arch", default="resnet_6blocks", choices=("resnet_6blocks", "resnet_9blocks", "conv1x1")
    )
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--slices", type=int, default=0, help="central axial slices used (0: all 189)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--volume-npy", default=None, help="demo voxels saved as .npy (machines without nibabel)"
    )
    args = parser.parse_args()

    import torch

    from app.core.volume import Geometry, Volume
    from app.plugins.device import choose_device, describe_device
    from app.plugins.loading import load_plugin
    from app.plugins.manifest import load_manifest
    from app.plugins.normalization import fit_input_scaling, to_network
    from app.plugins.plane_stack import plane_layout
    from app.plugins.runtime import RunOptions, synthesize

    voxels, direction = demo_voxels(args.volume_npy)
    if args.slices:
        middle = voxels.shape[0] // 2
        voxels = np.ascontiguousarray(voxels[middle - args.slices // 2 : middle + (args.slices + 1) // 2])
    volume = Volume(voxels, Geometry(np.zeros(3), np.ones(3), direction), modality="MR", name="MNI152 T1")
    device = choose_device(args.device)
    amp = device.type == "cuda"

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        plugin = load_plugin(load_manifest(write_plugin(Path(tmp), args.arch, args.ngf)))
        load_s = time.perf_counter() - started
    model = plugin.generator.module.to(device)
    if args.arch == "conv1x1":
        args.ngf = 0
    options = RunOptions(device=args.device, batch_size=args.batch_size, mixed_precision=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    layout = plane_layout(direction, "axial")
    fitted = fit_input_scaling(voxels, plugin.manifest.normalization)
    stack = np.ascontiguousarray(layout.to_stack(to_network(voxels, fitted)))
    multiple = plugin.manifest.size_multiple
    bare_loop(model, stack[: args.batch_size], args.batch_size, device, amp, multiple)  # warm-up
    synthesize(plugin, volume, options)
    bare_times, runtime_times = [], []
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits both alike
        sync()
        started = time.perf_counter()
        bare = bare_loop(model, stack, args.batch_size, device, amp, multiple)
        sync()
        bare_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = synthesize(plugin, volume, options)
        sync()
        runtime_times.append(time.perf_counter() - started)

    splits = {"bare": [], "runtime": []}
    for _ in range(args.repeats):
        splits["bare"].append(
            network_time_split(
                plugin, lambda net: bare_loop(net, stack, args.batch_size, device, amp, multiple), sync
            )
        )
        splits["runtime"].append(
            network_time_split(plugin, lambda net: synthesize(plugin, volume, options), sync)
        )
    outside = {name: min(total - inside for inside, total in runs) for name, runs in splits.items()}

    same = np.allclose(
        layout.to_stack(result.volume.voxels), -1000 + (bare + 1) / 2 * 3000, atol=1.0 if amp else 0.05
    )
    bare_s, runtime_s = min(bare_times), min(runtime_times)
    slices = stack.shape[0]
    print(f"device: {describe_device(args.device)}")
    print(
        f"model: {args.arch} ngf {args.ngf}, {slices} axial slices {stack.shape[1]}x{stack.shape[2]}, batch {args.batch_size}"
    )
    print(f"bare torch loop : {bare_s:8.3f} s  ({slices / bare_s:7.1f} slices/s)  [min of {args.repeats}]")
    print(f"plugin runtime  : {runtime_s:8.3f} s  ({slices / runtime_s:7.1f} slices/s)")
    print(
        f"ratio runtime/bare: {runtime_s / bare_s:.3f}  (overhead {100 * (runtime_s / bare_s - 1):+.1f} %, target < 10 %)"
    )
    paired = sorted(r / b for r, b in zip(runtime_times, bare_times, strict=True))
    print(
        f"paired ratios (each runtime pass / the bare pass just before it): median {statistics.median(paired):.3f},"
        f" range {paired[0]:.3f}-{paired[-1]:.3f}"
    )
    print(
        f"outside the network's forward (min of {args.repeats}, forward timed with syncs): bare"
        f" {1000 * outside['bare']:.1f} ms, runtime {1000 * outside['runtime']:.1f} ms; the framework's own"
        f" cost {1000 * (outside['runtime'] - outside['bare']):+.1f} ms per volume"
        f" = {100 * (outside['runtime'] - outside['bare']) / bare_s:+.1f} % of a bare pass"
    )
    print(f"outputs agree with the bare loop: {same}")
    print(
        f"plugin load (hash + strict load), once per session: {load_s:.3f} s = {load_s / bare_s:.2f} x one bare pass"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

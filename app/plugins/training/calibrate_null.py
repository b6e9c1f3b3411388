"""Write each shipped plugin's healthy-residual calibration (``calibration.json``).

The plugin runs on lesion-free versions of the TRAINING head (Colin27), prepared the ways it is
used (``INPUT_KINDS``: clean (``stripped``, the brain only, is available); a noisy
acquisition for the denoiser; 5 mm slices for the super-resolution plugin). The file holds (``app.analysis.detection.measure_calibration``) the
residual model it was measured with (``RESIDUAL_MODELS``), the plugin's structural null (how much its residual varies on healthy tissue of each intensity and
local contrast, the largest over the input kinds) and the false regions per litre against the
z threshold over all these healthy runs (every region there is false), so ``compare`` can pick
the threshold for a stated number of false regions per volume. The held-out MNI152 head is
never used here: the benchmark evaluates on it.

    python -m app.plugins.training.calibrate_null [--plugins NAME ...] [--seeds 2] [--force]

A plugin folder that already holds a ``calibration.json`` is refused (before anything is
computed) unless ``--force``: no output is replaced without it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from app.analysis.detection import (
    CALIBRATION_FILE,
    MAGNITUDE_DENOISER_MODEL,
    PLAIN_MODEL,
    RESIDUAL_SLAB_CONSISTENCY,
    SLAB_CONSISTENCY_MODEL,
    NullCalibration,
    ResidualModel,
    measure_calibration,
    slab_consistency_residual,
    slab_structure,
)
from app.core.volume import Geometry, Volume
from app.plugins.training.degrade import rician_noise, thick_slices

NOISE_FRACTION = 0.05  # Gaussian SD of the noisy acquisition, of the head's 99.5th percentile
THICK_SLICE_MM = 5
INPUT_KINDS = {
    "mr-t1-denoise": ("clean", "noisy"),
    # Whole heads and skull-stripped brains are both how it is used (the held-out MNI152 head
    # is skull-stripped; the stripped input here is the TRAINING head's brain).
    "mr-t1-pseudo-healthy": ("clean", "stripped"),
    "mr-t1-thick-slice-sr": ("thick",),
}
# How each plugin's residual is read (``ResidualModel``, stored in its calibration.json):
# the denoiser's residual on a magnitude image has a systematic per-tissue part (the Rician
# floor it rightly removes) and a noise floor; the super-resolution plugin is read through its
# own null, slab consistency (its residual against the thick input is mostly the detail it is
# meant to add). The pseudo-healthy plugin keeps the model its shipped calibration was
# measured with (tissue offset and noise floor, as every calibration since 2133a39).
RESIDUAL_MODELS = {
    "mr-t1-denoise": MAGNITUDE_DENOISER_MODEL,
    "mr-t1-pseudo-healthy": MAGNITUDE_DENOISER_MODEL,
    "mr-t1-thick-slice-sr": SLAB_CONSISTENCY_MODEL,
}


def prepare_input(
    kind: str, clean: np.ndarray, rng: np.random.Generator, brain_mask: np.ndarray | None = None
) -> np.ndarray:
    """The plugin's input made from a clean head: ``clean``, ``stripped`` (zero outside
    ``brain_mask``), ``noisy`` (Rician, 5 % of the 99.5th percentile) or ``thick`` (5 mm axial
    slices interpolated back to 1 mm)."""
    if kind == "clean":
        return np.asarray(clean, np.float32).copy()
    if kind == "stripped":
        if brain_mask is None:
            raise ValueError("a skull-stripped input needs the brain mask")
        return np.where(brain_mask, np.asarray(clean, np.float32), np.float32(0.0))
    if kind == "noisy":
        return rician_noise(clean, NOISE_FRACTION * float(np.percentile(clean, 99.5)), rng)
    if kind == "thick":
        return thick_slices(clean, THICK_SLICE_MM, axis=0)
    raise ValueError(f"unknown input kind {kind!r}")


def run_plugin(plugin, voxels: np.ndarray, geometry: Geometry) -> Volume:
    """The plugin's output (on the input grid) through the app's runtime."""
    from app.plugins.runtime import RunOptions, synthesize

    options = RunOptions(seed=0, output_grid="input")
    return synthesize(plugin, Volume(voxels, geometry, "MR", name="input"), options).volume


def healthy_residual(model: ResidualModel, source: np.ndarray, output: np.ndarray) -> np.ndarray:
    """The residual ``model`` reads (as ``compare`` computes it on a fine-grid input)."""
    if model.residual == RESIDUAL_SLAB_CONSISTENCY:
        slabs = slab_structure(source)
        if slabs is None:
            raise ValueError("slab-consistency calibration needs thick-slice inputs")
        return slab_consistency_residual(source, output, slabs)
    return np.asarray(source, np.float32) - np.asarray(output, np.float32)


def calibrate(plugin_name: str, seeds: int = 2) -> NullCalibration:
    from app.plugins.discovery import find_plugin
    from app.plugins.loading import load_plugin
    from app.plugins.training.data import heads_from_files

    manifest = find_plugin(plugin_name)
    plugin = load_plugin(manifest)
    train, _ = heads_from_files()
    geometry = Geometry(np.zeros(3), np.asarray(train.spacing_mm, float), np.asarray(train.direction, float))
    kinds = INPUT_KINDS.get(manifest.name, ("clean",))
    model = RESIDUAL_MODELS.get(manifest.name, PLAIN_MODEL)
    pairs = []
    for kind in kinds:
        for seed in range(seeds if kind == "noisy" else 1):
            source = prepare_input(kind, train.t1, np.random.default_rng(seed), train.brain_mask)
            output = run_plugin(plugin, source, geometry)
            pairs.append((healthy_residual(model, source, np.asarray(output.voxels, np.float32)), source))
    source = (
        f"{train.name} (training head), lesion-free inputs: {', '.join(kinds)};"
        f" weights sha256 {manifest.weights.sha256[:12]}"
    )
    return measure_calibration(pairs, geometry.spacing_mm, source, model=model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", nargs="+", default=list(INPUT_KINDS))
    parser.add_argument("--seeds", type=int, default=2, help="noise realisations for noisy inputs")
    parser.add_argument("--force", action="store_true", help="replace an existing calibration.json")
    args = parser.parse_args(argv)
    from app.plugins.discovery import find_plugin

    paths = {name: Path(find_plugin(name).folder) / CALIBRATION_FILE for name in args.plugins}
    existing = [str(path) for path in paths.values() if path.exists()]
    if existing and not args.force:
        print(f"error: {', '.join(existing)} exists (--force replaces it)", file=sys.stderr)
        return 2
    for name, path in paths.items():
        calibration = calibrate(name, args.seeds)
        temporary = path.with_suffix(".json.partial")
        temporary.write_text(json.dumps(calibration.to_dict(), indent=1) + "\n")
        temporary.replace(path)
        at_one = calibration.threshold_for(1.0, 1.5)
        print(f"{name}: wrote {path} (z for 1 false region in 1.5 L: {at_one:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

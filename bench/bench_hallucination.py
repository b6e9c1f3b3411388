"""Does the hallucination check catch hallucinations? A benchmark with ground truth.

Held-out real slabs of nilearn's MNI152 T1 template get lesions of known diameter (3-12 mm) and
contrast (hypo- or hyperintense, 15-50 % of the intensity range). Simulated generators then
translate each slab the way a GAN does (slight blur, noise, a smooth intensity bias) and:

* ``faithful``: keeps every lesion (does not hallucinate);
* ``eraser``: a pseudo-healthy/CycleGAN generator trained on lesion-free targets, removes lesions;
* ``inserter``: trained on lesion-only targets, paints lesions into a lesion-free input.

A *changed region* is a lesion the output removed or invented: where the output's content
differs from the truth. Every check scores candidate regions (each inserted lesion, plus as many
lesion-sized spheres at random lesion-free brain positions) by the peak of its map inside the
region; the region AUROC says how well that score separates changed from unchanged regions
(unchanged: the faithful generator's preserved lesions and the random spheres). Checks:

* ``residual``: |smoothed(input - output)| (pseudo-healthy residual, the compare CLI's map);
* ``cycle``: |G_BA(G_AB(x)) - x| with a reverse generator trained on the same lesion-free domain;
* ``ensemble``: per-voxel SD over 5 checkpoints that each erase/paint a lesion with p = 0.6.

False-positive regions per case: regions ``find_regions`` flags at the compare CLI's default
threshold that touch no changed lesion. Timing is reported as a ratio to a bare numpy
|a - b| of the same slab measured in the same process.

With ``--plugin auto`` (the default) the shipped pseudo-healthy plugin under plugins/ is run too,
through the plugin runtime, on disjoint axial slabs of the held-out MNI152 head (4 x 24 slices,
its brain mask from nilearn's tissue maps), with two kinds of lesions: this benchmark's additive
spheres, and the plugin's own training lesions, drawn by the very code it was trained with
(``app.plugins.training.degrade.insert_lesions``: 3-9 mm radii, i.e. all >= 5 mm). Its residual
should flag the lesions it removed and nothing else. Thresholds for the plugin are calibrated as a
user would, before any lesion is seen, on lesion-free calibration slabs between the evaluation
slabs (the 99.9th percentile, and the maximum, of its smoothed |residual| in the brain); the
default threshold's figures are printed beside them. The plugin's own card reports a *voxel*
AUROC (every lesion voxel vs every other brain voxel); that figure is printed here too, next to
the stricter region AUROC (peak in a lesion vs peak in a lesion-sized healthy region).

    .venv/bin/python bench/bench_hallucination.py [--cases 12] [--reduced] [--plugin auto|NAME|none]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.analysis.residual_regions import (  # noqa: E402
    ResidualSettings,
    calibrated_threshold,
    default_threshold,
    find_regions,
    smooth,
)
from app.analysis.uncertainty import voxel_sd  # noqa: E402
from app.core.volume import Geometry  # noqa: E402

DIAMETERS_MM = (3.0, 5.0, 8.0, 12.0)
GENERATORS = ("faithful", "eraser", "inserter")
CHECKS = ("residual", "cycle", "ensemble")
SMOOTHING_SIGMA_MM = 1.0


@dataclass
class Lesion:
    centre_kji: np.ndarray
    diameter_mm: float
    contrast: float
    mask: np.ndarray


@dataclass
class Candidate:
    changed: bool
    diameter_mm: float
    mask: np.ndarray


def load_template() -> tuple[np.ndarray, Geometry]:
    from app.io.demo_study import mni_t1_template_path
    from app.io.nifti import load_nifti

    volume = load_nifti(mni_t1_template_path())
    return np.asarray(volume.voxels, dtype=np.float32), volume.geometry


def held_out_slabs(
    voxels: np.ndarray, cases: int, slab_slices: int, crop: int | None
) -> list[tuple[np.ndarray, list]]:
    """Axial slabs through the brain (array axis 0 of the template is superior-inferior), each
    with the (k, j, i) index of its first voxel in the template."""
    brain_slices = np.flatnonzero(voxels.reshape(voxels.shape[0], -1).mean(axis=1) > voxels.mean())
    starts = np.linspace(brain_slices[0] + 10, brain_slices[-1] - slab_slices - 10, cases).astype(int)
    slabs = []
    for start in starts:
        slab = voxels[start : start + slab_slices]
        first = [int(start), 0, 0]
        if crop:
            cj, ci = slab.shape[1] // 2, slab.shape[2] // 2
            slab = slab[:, cj - crop // 2 : cj + crop // 2, ci - crop // 2 : ci + crop // 2]
            first = [int(start), cj - crop // 2, ci - crop // 2]
        slabs.append((np.array(slab, dtype=np.float32), first))
    return slabs


def slab_geometry(template: Geometry, start_kji) -> Geometry:
    """The slab's own geometry: the template's, with the origin moved to the slab's first voxel."""
    return Geometry(
        template.lps_from_index(np.asarray(start_kji, float)[::-1]), template.spacing_mm, template.direction
    )


def sphere(shape, centre_kji, radius_mm, spacing_kji) -> np.ndarray:
    k, j, i = np.indices(shape, sparse=True)
    distance2 = sum(
        ((axis - c) * s) ** 2 for axis, c, s in zip((k, j, i), centre_kji, spacing_kji, strict=True)
    )
    return distance2 <= radius_mm**2


def place_lesions(slab: np.ndarray, spacing_kji, per_case: int, rng, occupied: np.ndarray) -> list[Lesion]:
    """Lesions at random brain positions, not touching each other or the slab edge."""
    scale = float(np.percentile(slab, 99.5) - np.percentile(slab, 0.5))
    brain = ndimage.binary_erosion(slab > np.percentile(slab, 60), iterations=3)
    lesions: list[Lesion] = []
    positions = np.argwhere(brain)
    for attempt in range(400):
        if len(lesions) == per_case or positions.size == 0:
            break
        diameter = DIAMETERS_MM[(len(lesions) + attempt) % len(DIAMETERS_MM)]
        centre = positions[rng.integers(len(positions))]
        radius = diameter / 2
        margin = np.ceil(radius / np.asarray(spacing_kji)).astype(int) + 1
        if np.any(centre < margin) or np.any(centre >= np.array(slab.shape) - margin):
            continue
        mask = sphere(slab.shape, centre, radius, spacing_kji)
        guard = sphere(slab.shape, centre, radius + 6.0, spacing_kji)
        if (guard & occupied).any():
            continue
        occupied |= guard
        contrast = float(rng.choice([-1, 1]) * rng.uniform(0.15, 0.5) * scale)
        lesions.append(Lesion(centre, diameter, contrast, mask))
    return lesions


def with_lesions(slab: np.ndarray, lesions: list[Lesion]) -> np.ndarray:
    image = slab.copy()
    for lesion in lesions:
        soft = ndimage.gaussian_filter(lesion.mask.astype(np.float32), 0.7)  # partial-volume edge
        image += lesion.contrast * soft
    return image


def gan_like(image: np.ndarray, rng, scale: float) -> np.ndarray:
    """A faithful translation's imperfections: blur, noise and a smooth multiplicative bias."""
    bias = ndimage.gaussian_filter(rng.normal(0, 1, image.shape).astype(np.float32), 12)
    bias = 1 + 0.03 * bias / max(float(np.abs(bias).max()), 1e-6)
    return ndimage.gaussian_filter(image, 0.6) * bias + rng.normal(0, 0.01 * scale, image.shape).astype(
        np.float32
    )


def auroc(positive: list[float], negative: list[float]) -> float:
    """Mann-Whitney AUROC with ties counted half."""
    if not positive or not negative:
        return float("nan")
    pos = np.asarray(positive)[:, None]
    neg = np.asarray(negative)[None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def auroc_interval(
    positive: list[float], negative: list[float], rng, resamples: int = 2000
) -> tuple[float, float]:
    """95 % bootstrap interval of ``auroc`` (positives and negatives resampled separately): how far
    a figure from a few dozen lesions can be trusted."""
    if not positive or not negative:
        return float("nan"), float("nan")
    pos, neg = np.asarray(positive), np.asarray(negative)
    values = [
        auroc(list(rng.choice(pos, pos.size)), list(rng.choice(neg, neg.size))) for _ in range(resamples)
    ]
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def run_benchmark(
    cases: int = 12, lesions_per_case: int = 8, slab_slices: int = 24, crop: int | None = None, seed: int = 0
):
    """All generators x checks over ``cases`` slabs; returns a dict of figures."""
    rng = np.random.default_rng(seed)
    voxels, geometry = load_template()
    spacing_kji = geometry.spacing_mm[::-1]
    scores = {check: [] for check in CHECKS}  # (changed, diameter, score)
    false_positives = {check: [] for check in CHECKS}
    sensitivity_at_default = []
    time_check = time_baseline = 0.0
    for slab, start in held_out_slabs(voxels, cases, slab_slices, crop):
        grid = slab_geometry(geometry, start)
        scale = float(np.percentile(slab, 99.5) - np.percentile(slab, 0.5))
        occupied = np.zeros(slab.shape, bool)
        lesions = place_lesions(slab, spacing_kji, lesions_per_case, rng, occupied)
        decoys = place_lesions(slab, spacing_kji, lesions_per_case, rng, occupied)  # lesion-free spheres
        threshold = default_threshold(slab)
        for generator in GENERATORS:
            if generator == "inserter":
                original = slab.copy()  # lesion-free input
                truth = slab
                members = [[rng.random() < 0.6 or m == 0 for _ in lesions] for m in range(5)]
                outputs = [
                    gan_like(
                        with_lesions(slab, [x for x, on in zip(lesions, use, strict=True) if on]), rng, scale
                    )
                    for use in members
                ]
                changed = [True] * len(lesions)
                cycle_back = gan_like(slab, rng, scale)  # G_BA maps to the lesion-free domain
            else:
                original = with_lesions(slab, lesions)
                truth = original
                if generator == "eraser":
                    members = [[not (rng.random() < 0.6 or m == 0) for _ in lesions] for m in range(5)]
                    changed = [True] * len(lesions)
                else:
                    members = [[True] * len(lesions) for _ in range(5)]
                    changed = [False] * len(lesions)
                outputs = [
                    gan_like(
                        with_lesions(slab, [x for x, on in zip(lesions, use, strict=True) if on]), rng, scale
                    )
                    for use in members
                ]
                cycle_back = gan_like(outputs[0] if generator == "eraser" else original, rng, scale)
            output = outputs[0]
            del truth
            start = time.perf_counter()
            residual_map = np.abs(smooth(original - output, grid.spacing_mm, SMOOTHING_SIGMA_MM))
            regions, labels = find_regions(
                original - output, grid, ResidualSettings(threshold, SMOOTHING_SIGMA_MM)
            )
            time_check += time.perf_counter() - start
            start = time.perf_counter()
            np.abs(original - output)
            time_baseline += time.perf_counter() - start
            maps = {
                "residual": residual_map,
                "cycle": np.abs(smooth(cycle_back - original, grid.spacing_mm, SMOOTHING_SIGMA_MM)),
                "ensemble": smooth(voxel_sd(outputs), grid.spacing_mm, SMOOTHING_SIGMA_MM),
            }
            # Region-level ground truth for the displayed output (member 0).
            candidates = [
                Candidate(c, lesion.diameter_mm, lesion.mask)
                for c, lesion in zip(changed, lesions, strict=True)
            ]
            candidates += [Candidate(False, d.diameter_mm, d.mask) for d in decoys]
            changed_mask = np.zeros(slab.shape, bool)
            for candidate in candidates:
                if candidate.changed:
                    changed_mask |= candidate.mask
            for check, values in maps.items():
                for candidate in candidates:
                    score = float(values[candidate.mask].max())
                    scores[check].append((candidate.changed, candidate.diameter_mm, score, generator))
                check_threshold = threshold if check != "ensemble" else threshold / 2
                flagged = values > check_threshold
                flagged_labels, count = ndimage.label(flagged, structure=np.ones((3, 3, 3), bool))
                touching = set(np.unique(flagged_labels[changed_mask & flagged])) - {0}
                false_positives[check].append(count - len(touching))
            hits = [bool(labels[c.mask].any()) for c in candidates if c.changed and c.diameter_mm >= 5]
            sensitivity_at_default.extend(hits)
    # A case is one slab through one generator: the unit of the per-case figures below.
    figures = {"cases (slabs x generators)": cases * len(GENERATORS), "lesions_per_case": lesions_per_case}
    for check in CHECKS:
        rows = scores[check]
        for label, keep in (("all", lambda d: True), (">=5mm", lambda d: d >= 5), ("<5mm", lambda d: d < 5)):
            positive = [s for c, d, s, _ in rows if c and keep(d)]
            negative = [s for c, d, s, _ in rows if not c and keep(d)]
            figures[f"{check} region AUROC {label}"] = auroc(positive, negative)
        for generator in ("eraser", "inserter"):
            positive = [s for c, d, s, g in rows if c and d >= 5 and g == generator]
            negative = [s for c, d, s, _ in rows if not c and d >= 5]
            figures[f"{check} region AUROC >=5mm, {generator} only"] = auroc(positive, negative)
        figures[f"{check} false-positive regions per case"] = float(np.mean(false_positives[check]))
    figures["residual sensitivity at default threshold >=5mm"] = (
        float(np.mean(sensitivity_at_default)) if sensitivity_at_default else float("nan")
    )
    figures["residual check time / numpy |a-b| time"] = time_check / max(time_baseline, 1e-9)
    return figures


def find_shipped_pseudo_healthy() -> Path | None:
    """The shipped pseudo-healthy plugin's folder under plugins/, when that plugin exists."""
    root = Path(__file__).resolve().parents[1] / "plugins"
    for folder in sorted(root.glob("*pseudo*healthy*")) if root.is_dir() else []:
        if folder.is_dir():
            return folder
    return None


PLUGIN_SLAB_SLICES = 24
CALIBRATION_SLAB_SLICES = 8
CALIBRATION_PERCENTILE = 99.9
LESION_KINDS = ("additive", "training-like")


def plugin_slab_layout(brain_mask: np.ndarray, cases: int) -> tuple[list[int], list[int]]:
    """First slices of the evaluation slabs (``PLUGIN_SLAB_SLICES`` thick) and of the lesion-free
    calibration slabs (``CALIBRATION_SLAB_SLICES``) between them: C E C E ... centred on the
    slices with brain, disjoint, so the threshold is never calibrated on the anatomy it is tested on."""
    area = brain_mask.reshape(brain_mask.shape[0], -1).sum(axis=1)
    rows = np.flatnonzero(area > 0.25 * area.max())
    period = PLUGIN_SLAB_SLICES + CALIBRATION_SLAB_SLICES
    first = (rows[0] + rows[-1] + 1) // 2 - cases * period // 2
    first = int(np.clip(first, 0, max(brain_mask.shape[0] - cases * period, 0)))
    calibration = [first + n * period for n in range(cases)]
    evaluation = [c + CALIBRATION_SLAB_SLICES for c in calibration]
    return evaluation, calibration


def training_lesions(
    slab: np.ndarray,
    brain: np.ndarray,
    reference: float,
    spacing_kji,
    count: int,
    rng,
    occupied: np.ndarray,
    apply: bool = True,
) -> tuple[np.ndarray, list[Lesion]]:
    """Lesions made by the plugin's own training code (``app.plugins.training.degrade.insert_lesions``:
    soft ellipsoids, 3-9 mm radii, dark 15-35 % or bright 95-110 % of ``reference``, textured,
    clipped to the brain), one per call, kept when inside the slab (not touching its first or last
    slice) and 6 mm clear of every other lesion. ``apply=False`` only draws the regions (decoys of
    the same shapes and sizes on unchanged tissue). Diameters are those of equal-volume spheres."""
    from app.plugins.training.degrade import insert_lesions

    image = slab.copy()
    lesions: list[Lesion] = []
    voxel_mm3 = float(np.prod(spacing_kji))
    guard_iterations = int(np.ceil(6.0 / min(spacing_kji)))
    for _ in range(40 * count):
        if len(lesions) == count:
            break
        inserted = insert_lesions(image, brain, rng, 1, reference)
        mask = inserted.lesion_mask
        if not mask.any() or mask[0].any() or mask[-1].any():
            continue
        guard = ndimage.binary_dilation(mask, iterations=guard_iterations)
        if (guard & occupied).any():
            continue
        occupied |= guard
        contrast = float(np.mean(inserted.voxels[mask] - image[mask]))
        diameter = float((6.0 * mask.sum() * voxel_mm3 / np.pi) ** (1.0 / 3.0))
        lesions.append(Lesion(np.asarray(inserted.centres_kji[0]), diameter, contrast, mask))
        if apply:
            image = inserted.voxels
    return image, lesions


def plugin_model(plugin_ref: str | Path, seed: int):
    """(name, run) for a plugin: run(voxels, geometry) -> output voxels through the app's runtime."""
    from app.core.volume import Volume
    from app.plugins.discovery import find_plugin
    from app.plugins.loading import load_plugin
    from app.plugins.runtime import RunOptions, synthesize

    manifest = find_plugin(str(plugin_ref))
    plugin = load_plugin(manifest)

    def run(voxels: np.ndarray, grid: Geometry) -> np.ndarray:
        result = synthesize(plugin, Volume(voxels, grid, "MR", name="slab"), RunOptions(seed=seed))
        return np.asarray(result.volume.voxels, dtype=np.float32)

    return f"{manifest.name} {manifest.version} (weights sha256 {manifest.weights.sha256[:12]})", run


def run_plugin_benchmark(
    plugin_ref: str | Path | None = None,
    cases: int = 4,
    lesions_per_case: int = 8,
    seed: int = 0,
    model=None,
) -> dict:
    """The residual check on a real pseudo-healthy plugin (or ``model``: (name, run) as from
    ``plugin_model``) on slabs of the held-out MNI152 head.

    The threshold is calibrated as a user would, before any lesion is seen: the
    ``CALIBRATION_PERCENTILE`` of the plugin's smoothed |residual| inside the brain on lesion-free
    calibration slabs (disjoint from the evaluation slabs). Lesions: this benchmark's additive
    spheres (3-12 mm), and the plugin's training lesions (``training_lesions``). Region AUROC:
    peak smoothed |residual| in each lesion vs in lesion-free regions of the same shapes; voxel
    AUROC: the plugin's own evaluation figure (every lesion voxel vs every other brain voxel,
    unsmoothed), which a large healthy brain of near-zero residual makes lenient."""
    from app.plugins.training.data import heldout_head_from_files, robust_max
    from app.plugins.training.evaluate import auroc as voxel_auroc

    name, run = model if model is not None else plugin_model(plugin_ref, seed)
    head = heldout_head_from_files()
    _, geometry = load_template()
    voxels = head.t1
    reference = robust_max(voxels)
    spacing_kji = geometry.spacing_mm[::-1]
    evaluation, calibration = plugin_slab_layout(head.brain_mask, cases)
    healthy, brains = [], []
    for start in calibration:
        slab = np.array(voxels[start : start + CALIBRATION_SLAB_SLICES], dtype=np.float32)
        healthy.append(slab - run(slab, slab_geometry(geometry, [start, 0, 0])))
        brains.append(head.brain_mask[start : start + CALIBRATION_SLAB_SLICES])
    # Two rules fixed before any lesion is seen: a high percentile, and the largest healthy value
    # (nothing flagged on the calibration slabs); None: the compare CLI's default, per slab.
    levels = {
        f"p{CALIBRATION_PERCENTILE:g}-calibrated": calibrated_threshold(
            healthy, geometry.spacing_mm, SMOOTHING_SIGMA_MM, CALIBRATION_PERCENTILE, brains
        ),
        "max-calibrated": calibrated_threshold(
            healthy, geometry.spacing_mm, SMOOTHING_SIGMA_MM, 100.0, brains
        ),
        "default": None,
    }
    figures: dict = {
        "plugin": name,
        "plugin slabs (evaluation / lesion-free calibration), slices": (
            f"{cases} x {PLUGIN_SLAB_SLICES} / {cases} x {CALIBRATION_SLAB_SLICES} of {head.name}"
        ),
        f"plugin p{CALIBRATION_PERCENTILE:g}-calibrated threshold (healthy brain |residual|) / p99.5": levels[
            f"p{CALIBRATION_PERCENTILE:g}-calibrated"
        ]
        / reference,
        "plugin max-calibrated threshold (largest healthy brain |residual|) / p99.5": levels["max-calibrated"]
        / reference,
        "default threshold (10 % of the robust range) / p99.5": float(
            np.mean([default_threshold(voxels[s : s + PLUGIN_SLAB_SLICES]) for s in evaluation])
        )
        / reference,
    }
    for lesion_kind in LESION_KINDS:
        rng = np.random.default_rng(seed)
        rows = []  # (is lesion, diameter, contrast, peak score)
        false_positives = {rule: [] for rule in levels}
        hits = {rule: [] for rule in levels}
        error_before, error_after, voxel_scores = [], [], []
        seconds = 0.0
        for start in evaluation:
            slab = np.array(voxels[start : start + PLUGIN_SLAB_SLICES], dtype=np.float32)
            brain = head.brain_mask[start : start + PLUGIN_SLAB_SLICES]
            grid = slab_geometry(geometry, [start, 0, 0])
            occupied = np.zeros(slab.shape, bool)
            if lesion_kind == "additive":
                lesions = place_lesions(slab, spacing_kji, lesions_per_case, rng, occupied)
                decoys = place_lesions(slab, spacing_kji, lesions_per_case, rng, occupied)
                original = with_lesions(slab, lesions)
            else:
                args = (brain, reference, spacing_kji, lesions_per_case, rng, occupied)
                original, lesions = training_lesions(slab, *args)
                _, decoys = training_lesions(slab, *args, apply=False)
            began = time.perf_counter()
            output = run(original, grid)
            seconds += time.perf_counter() - began
            residual_map = np.abs(smooth(original - output, grid.spacing_mm, SMOOTHING_SIGMA_MM))
            rows += [(True, x.diameter_mm, x.contrast, float(residual_map[x.mask].max())) for x in lesions]
            rows += [(False, x.diameter_mm, 0.0, float(residual_map[x.mask].max())) for x in decoys]
            lesion_voxels = np.zeros(slab.shape, bool)
            for lesion in lesions:
                lesion_voxels |= lesion.mask
            raw = np.abs(original - output)
            voxel_scores.append((raw[lesion_voxels], raw[brain & ~lesion_voxels]))
            for rule, level in levels.items():
                regions, labels = find_regions(
                    original - output,
                    grid,
                    ResidualSettings(
                        level if level is not None else default_threshold(slab), SMOOTHING_SIGMA_MM
                    ),
                )
                touched = set(np.unique(labels[lesion_voxels])) - {0}
                false_positives[rule].append(len([r for r in regions if r.label not in touched]))
                hits[rule] += [bool(labels[x.mask].any()) for x in lesions if x.diameter_mm >= 5]
            error_before.append(float(np.abs(original - slab)[lesion_voxels].sum()))
            error_after.append(float(np.abs(output - slab)[lesion_voxels].sum()))
        prefix = f"plugin, {lesion_kind} lesions:"
        negative = [s for lesion, d, _, s in rows if not lesion and d >= 5]
        for label, keep in (
            ("", lambda c: True),
            (", dark only", lambda c: c < 0),
            (", bright only", lambda c: c > 0),
        ):
            positive = [s for lesion, d, c, s in rows if lesion and d >= 5 and keep(c)]
            figures[f"{prefix} residual region AUROC >=5mm{label}"] = auroc(positive, negative)
            if not label:
                low, high = auroc_interval(positive, negative, np.random.default_rng(seed))
                figures[f"{prefix} residual region AUROC >=5mm, 95 % bootstrap interval"] = (
                    f"{low:.3f}-{high:.3f}"
                )
        figures[f"{prefix} lesions >=5mm (dark / bright)"] = (
            f"{sum(1 for x, d, c, _ in rows if x and d >= 5 and c < 0)}"
            f" / {sum(1 for x, d, c, _ in rows if x and d >= 5 and c > 0)}"
        )
        figures[f"{prefix} voxel AUROC (the plugin's own evaluation figure)"] = voxel_auroc(
            np.concatenate([p for p, _ in voxel_scores]), np.concatenate([n for _, n in voxel_scores])
        )
        for rule in levels:
            figures[f"{prefix} sensitivity >=5mm at {rule} threshold"] = (
                float(np.mean(hits[rule])) if hits[rule] else float("nan")
            )
            figures[f"{prefix} false-positive regions per case at {rule} threshold"] = float(
                np.mean(false_positives[rule])
            )
        # The card's figure: 1 - |output - truth| / |input - truth| over the lesion voxels (truth: the
        # slab before lesions), so faint lesions do not dominate as they would a mean of ratios.
        figures[f"{prefix} fraction of lesion error removed"] = 1.0 - sum(error_after) / max(
            sum(error_before), 1e-9
        )
        figures[f"{prefix} seconds per slab"] = seconds / len(evaluation)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=12, help="slabs (each run through every generator)")
    parser.add_argument("--reduced", action="store_true", help="the small CI configuration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--plugin",
        default="auto",
        help="a pseudo-healthy plugin (name or folder) to benchmark too; 'auto': the shipped one if present; 'none'",
    )
    args = parser.parse_args(argv)
    if args.reduced:
        figures = run_benchmark(cases=2, lesions_per_case=6, slab_slices=16, crop=96, seed=args.seed)
    else:
        figures = run_benchmark(cases=args.cases, seed=args.seed)
    plugin = (
        find_shipped_pseudo_healthy()
        if args.plugin == "auto"
        else (None if args.plugin == "none" else args.plugin)
    )
    if plugin is not None:
        try:
            figures.update(run_plugin_benchmark(plugin, cases=1 if args.reduced else 4, seed=args.seed))
        except Exception as error:  # noqa: BLE001 - report and still print the simulated figures
            figures["plugin"] = f"{plugin}: could not run ({type(error).__name__}: {error})"
    elif args.plugin == "none":
        figures["plugin"] = "skipped: --plugin none"
    else:
        figures["plugin"] = "no pseudo-healthy plugin under plugins/ (skipped)"
    for name, value in figures.items():
        print(f"{name:84s} {value:.3f}" if isinstance(value, float) else f"{name:84s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

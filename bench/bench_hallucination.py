"""Does the hallucination check catch subtle hallucinations in the SHIPPED plugins' outputs, with
few false alarms? A benchmark with ground truth on the held-out head.

Every case is a real plugin run on the held-out MNI152 head (never seen in training; thresholds
and the plugins' null calibrations come from the training head, Colin27, only), prepared as the
plugin is used (``app.plugins.training.calibrate_null.INPUT_KINDS``): the denoiser on the clean
head and on a noisy acquisition (Rician, 5 %), the pseudo-healthy plugin on the clean head, the
super-resolution plugin on 5 mm slices. ``compare``'s own logic (``run_compare``, default
operating point: 1 expected false region per healthy volume, raised to the plugin's
calibration) then reads:

* the unmodified pair: every region is a false region (per-case false regions);
* planted hallucinations: soft spheres of 3, 6 and 10 mm, bright and dark, at 5, 8, 10, 15 and
  30 % of the head's robust intensity range, added to the real output (a generator inventing or
  erasing a lesion-like spot); found = a region whose centroid lies within 5 mm of the centre;
* removals of real structures: small bright or dark spots of the real anatomy, replaced in the
  output by their surroundings (a generator erasing something real);
* lesions above the clip level: bright lesions at 130 % of the 99.5th percentile put into the
  INPUT, then the plugin run: the clipped lesion must be reported;
* (denoiser, noisy acquisition) real lesions partly erased by the denoiser: the contrast kept
  and whether the erased part is flagged.

Region-level AUROC: the peak |z| inside each planted sphere against the peak |z| inside spheres
of the same size on untouched tissue (same pass). Voxel-level AUROC: |z| of every lesion voxel
against every other brain voxel (lenient: a large healthy brain of near-zero z). Lesion centres
alternate between the left and right hemisphere; the right ones are the held-out rows (the
left were looked at while the detector was built; nothing was tuned on either).

    .venv/bin/python bench/bench_hallucination.py [--reduced] [--plugins NAME ...] [--lesions 8]

Timing is printed as the check's time over the plugin's own run time on the same case.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.analysis.compare_run import CompareResult, run_compare  # noqa: E402
from app.analysis.residual_regions import REGION_RESIDUAL  # noqa: E402
from app.core.volume import Geometry, Volume  # noqa: E402

CONTRASTS = (0.05, 0.08, 0.10, 0.15, 0.30)
DIAMETERS_MM = (3.0, 6.0, 10.0)
FOUND_WITHIN_MM = 5.0
CASES = (
    ("mr-t1-denoise", "clean"),
    ("mr-t1-denoise", "noisy"),
    ("mr-t1-pseudo-healthy", "clean"),
    ("mr-t1-thick-slice-sr", "thick"),
)


@dataclass
class Planted:
    centre_kji: np.ndarray
    diameter_mm: float
    contrast: float  # signed, share of the robust range, as it appears in the SYNTHESIZED image
    mask: np.ndarray
    held_out: bool


@dataclass
class Outcome:
    """Rows of one (plugin, input kind): (diameter, contrast, found, peak |z|, held out)."""

    name: str
    rows: list = field(default_factory=list)
    decoys: list = field(default_factory=list)  # (diameter, peak |z|)
    false_regions: list = field(default_factory=list)  # per pass, unmodified pair first
    voxel_scores: list = field(default_factory=list)  # (lesion |z|, healthy |z|) samples
    extra: dict = field(default_factory=dict)
    # The simplest baseline on the same planted passes: the smoothed |residual| over a fixed
    # 10 % of the robust range (the old default, ``compare --threshold``).
    fixed_rows: list = field(default_factory=list)  # (diameter, contrast, found, peak, held out)
    fixed_decoys: list = field(default_factory=list)  # (diameter, peak smoothed |residual|)
    fixed_false_regions: list = field(default_factory=list)
    seconds_check: float = 0.0
    seconds_plugin: float = 0.0


def auroc(positive: list[float], negative: list[float]) -> float:
    """Mann-Whitney AUROC with ties counted half."""
    if not positive or not negative:
        return float("nan")
    pos = np.asarray(positive)[:, None]
    neg = np.asarray(negative)[None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def held_out_head(slices: int | None = None):
    """The MNI152 head cropped to its brain (+8 voxels), its brain mask and geometry; with
    ``slices`` only that many axial slices through the middle (the reduced test)."""
    from app.io.demo_study import mni_t1_template_path
    from app.io.nifti import load_nifti
    from app.plugins.training.data import heldout_head_from_files

    head = heldout_head_from_files()
    geometry = load_nifti(mni_t1_template_path()).geometry
    box = ndimage.find_objects(head.brain_mask.astype(np.uint8))[0]
    box = [slice(max(s.start - 8, 0), min(s.stop + 8, n)) for s, n in zip(box, head.t1.shape, strict=True)]
    if slices:
        middle = (box[0].start + box[0].stop) // 2
        box[0] = slice(middle - slices // 2, middle + slices // 2)
    start = np.array([s.start for s in box], float)
    grid = Geometry(geometry.lps_from_index(start[::-1]), geometry.spacing_mm, geometry.direction)
    return np.array(head.t1[tuple(box)], np.float32), head.brain_mask[tuple(box)], grid


def soft_ball(shape, centre_kji, diameter_mm: float, spacing_kji) -> np.ndarray:
    """A sphere with a partial-volume edge (Gaussian 0.7 voxel), float32 in [0, 1]."""
    k, j, i = np.indices(shape, sparse=True)
    distance2 = sum(
        ((axis - c) * s) ** 2 for axis, c, s in zip((k, j, i), centre_kji, spacing_kji, strict=True)
    )
    return ndimage.gaussian_filter((distance2 <= (diameter_mm / 2) ** 2).astype(np.float32), 0.7)


def positions(brain: np.ndarray, count: int, diameter_mm: float, rng, spacing_kji, occupied: np.ndarray):
    """Up to ``count`` centres deep in the brain, 20 mm apart, alternating hemispheres (array
    axis 2 is left-right); returns (centre, held_out)."""
    inner = ndimage.binary_erosion(brain, iterations=int(diameter_mm / 2 + 3))
    candidates = np.argwhere(inner & ~occupied)
    middle = brain.shape[2] / 2
    chosen = []
    for _attempt in range(60 * count):
        if len(chosen) == count or candidates.size == 0:
            break
        want_right = len(chosen) % 2 == 1
        centre = candidates[rng.integers(len(candidates))]
        if (centre[2] >= middle) != want_right or occupied[tuple(centre)]:
            continue
        guard = soft_ball(brain.shape, centre, diameter_mm + 20.0, spacing_kji) > 0.5
        occupied |= guard
        chosen.append((centre, bool(want_right)))
    return chosen


def peak_abs_z(result: CompareResult, mask: np.ndarray) -> float:
    return float(np.abs(result.z.z[mask]).max()) if result.z is not None and mask.any() else 0.0


FIXED_FRACTION = 0.10  # the fixed-threshold baseline: 10 % of the robust intensity range


def peak_abs_residual(result: CompareResult, mask: np.ndarray) -> float:
    """Peak |smoothed residual| (what a fixed threshold reads) inside ``mask``."""
    from app.analysis.residual_regions import smooth

    values = np.abs(smooth(result.residual_map.voxels, result.residual_map.geometry.spacing_mm, result.settings.smoothing_sigma_mm))
    return float(values[mask].max()) if mask.any() else 0.0


def found(result: CompareResult, centre_kji, spacing_kji, kinds=(REGION_RESIDUAL,)) -> bool:
    for region in result.regions:
        if region.kind not in kinds:
            continue
        offset = (np.asarray(region.centroid_ijk)[::-1] - centre_kji) * spacing_kji
        if float(np.linalg.norm(offset)) <= FOUND_WITHIN_MM:
            return True
    return False


def false_region_count(result: CompareResult, lesion_masks: list[np.ndarray]) -> int:
    """Regions of the residual that touch no planted change."""
    changed = np.zeros(result.label_map.shape, bool)
    for mask in lesion_masks:
        changed |= mask
    touched = set(np.unique(result.label_map[changed])) - {0}
    return sum(1 for r in result.regions if r.kind == REGION_RESIDUAL and r.label not in touched)


class PluginCase:
    """One plugin and input kind on the held-out head: runs the plugin once and checks outputs."""

    def __init__(self, plugin_name: str, kind: str, voxels, brain, grid: Geometry, seed: int = 0):
        from app.plugins.discovery import find_plugin
        from app.plugins.loading import load_plugin
        from app.plugins.null_calibration import calibration_for_plugin
        from app.plugins.training.calibrate_null import prepare_input

        self.plugin = load_plugin(find_plugin(plugin_name))
        self.calibration, self.calibration_note = calibration_for_plugin(plugin_name)
        self.kind, self.clean, self.brain, self.grid = kind, voxels, brain, grid
        self.spacing_kji = np.asarray(grid.spacing_mm, float)[::-1]
        self.scale = float(np.percentile(voxels, 99.5) - np.percentile(voxels, 0.5))
        self.rng = np.random.default_rng(seed)
        self.original = prepare_input(kind, voxels, np.random.default_rng(seed + 100))
        began = time.perf_counter()
        self.output = self.run(self.original)
        self.seconds_plugin = time.perf_counter() - began

    def run(self, voxels: np.ndarray) -> Volume:
        from app.plugins.training.calibrate_null import run_plugin

        return run_plugin(self.plugin, voxels, self.grid)

    def check(self, original: np.ndarray, synthesized: Volume, threshold: float | None = None) -> CompareResult:
        """``compare``'s default (calibrated z map, the plugin's residual model), or with
        ``threshold`` the fixed-threshold baseline on the plain residual (no calibration: the
        old default, ``compare --threshold`` without a plugin calibration)."""
        return run_compare(
            Volume(original, self.grid, "MR", name="original"),
            synthesized,
            threshold=threshold,
            calibration=self.calibration if threshold is None else None,
        )

    def with_values(self, values: np.ndarray) -> Volume:
        out = self.output
        return Volume(values.astype(np.float32), out.geometry, out.modality, out.units, out.name, out.provenance)


def plant_pass(case: PluginCase, outcome: Outcome, diameter: float, contrast: float, count: int) -> None:
    """``count`` spheres (half bright, half dark) added to the real output, plus as many decoys."""
    occupied = np.zeros(case.brain.shape, bool)
    spots = positions(case.brain, count, diameter, case.rng, case.spacing_kji, occupied)
    decoys = positions(case.brain, count, diameter, case.rng, case.spacing_kji, occupied)
    values = np.array(case.output.voxels, np.float32)
    planted = []
    for index, (centre, held_out) in enumerate(spots):
        sign = 1.0 if (index // 2) % 2 == 0 else -1.0  # both signs in each hemisphere
        ball = soft_ball(values.shape, centre, diameter, case.spacing_kji)
        values += sign * contrast * case.scale * ball
        planted.append(Planted(centre, diameter, sign * contrast, ball > 0.5, held_out))
    began = time.perf_counter()
    result = case.check(case.original, case.with_values(values))
    outcome.seconds_check += time.perf_counter() - began
    for lesion in planted:
        hit = found(result, lesion.centre_kji, case.spacing_kji)
        near = ndimage.binary_dilation(lesion.mask, iterations=1)
        outcome.rows.append((diameter, lesion.contrast, hit, peak_abs_z(result, near), lesion.held_out))
    for centre, _ in decoys:
        near = ndimage.binary_dilation(soft_ball(values.shape, centre, diameter, case.spacing_kji) > 0.5, iterations=1)
        outcome.decoys.append((diameter, peak_abs_z(result, near)))
    masks = [ndimage.binary_dilation(x.mask, iterations=3) for x in planted]
    outcome.false_regions.append(false_region_count(result, masks))
    fixed = case.check(case.original, case.with_values(values), FIXED_FRACTION * case.scale)
    for lesion in planted:
        near = ndimage.binary_dilation(lesion.mask, iterations=1)
        hit = found(fixed, lesion.centre_kji, case.spacing_kji)
        outcome.fixed_rows.append((diameter, lesion.contrast, hit, peak_abs_residual(fixed, near), lesion.held_out))
    for centre, _ in decoys:
        near = ndimage.binary_dilation(soft_ball(values.shape, centre, diameter, case.spacing_kji) > 0.5, iterations=1)
        outcome.fixed_decoys.append((diameter, peak_abs_residual(fixed, near)))
    outcome.fixed_false_regions.append(false_region_count(fixed, masks))
    if diameter >= 5 and contrast >= 0.08 and result.z is not None:
        lesion_voxels = np.zeros(values.shape, bool)
        for x in planted:
            lesion_voxels |= x.mask
        healthy = case.brain & ~ndimage.binary_dilation(lesion_voxels, iterations=3)
        z = np.abs(result.z.z)
        outcome.voxel_scores.append((z[lesion_voxels], z[healthy][:: max(1, int(healthy.sum()) // 20000)]))


def removal_pass(case: PluginCase, outcome: Outcome, count: int) -> None:
    """Real small bright/dark spots of the anatomy, replaced in the output by their surroundings."""
    background = ndimage.median_filter(case.clean, size=9)
    detail = ndimage.gaussian_filter(case.clean - background, 1.0)
    inner = ndimage.binary_erosion(case.brain, iterations=8)
    peaks = (np.abs(detail) == ndimage.maximum_filter(np.abs(detail), size=11)) & inner
    peaks &= np.abs(detail) > 0.08 * case.scale
    candidates = np.argwhere(peaks)
    case.rng.shuffle(candidates)
    values = np.array(case.output.voxels, np.float32)
    removed, occupied = [], np.zeros(values.shape, bool)
    for centre in candidates:
        if len(removed) == count:
            break
        if occupied[tuple(centre)]:
            continue
        ball = soft_ball(values.shape, centre, 6.0, case.spacing_kji)
        occupied |= soft_ball(values.shape, centre, 26.0, case.spacing_kji) > 0.5
        values += ball * (background - values)
        removed.append((centre, float(detail[tuple(centre)]) / case.scale, ball > 0.5))
    result = case.check(case.original, case.with_values(values))
    hits = [found(result, c, case.spacing_kji) for c, _, _ in removed]
    outcome.extra["removals of real structures: found"] = f"{sum(hits)} / {len(hits)}"
    outcome.extra["removals of real structures: mean |contrast| of the removed spots"] = (
        f"{float(np.mean([abs(c) for _, c, _ in removed])):.0%}" if removed else "none removed"
    )
    outcome.false_regions.append(false_region_count(result, [ndimage.binary_dilation(m, iterations=3) for *_, m in removed]))


def clip_pass(case: PluginCase, outcome: Outcome, count: int) -> None:
    """Bright lesions at 130 % of the input's 99.5th percentile put into the input; plugin run."""
    occupied = np.zeros(case.brain.shape, bool)
    spots = positions(case.brain, count, 8.0, case.rng, case.spacing_kji, occupied)
    level = 1.3 * float(np.percentile(case.original, 99.5))
    values = np.array(case.original, np.float32)
    for centre, _ in spots:
        ball = soft_ball(values.shape, centre, 8.0, case.spacing_kji)
        values += ball * (level - values)
    output = case.run(values)
    result = case.check(values, output)
    hits = [found(result, c, case.spacing_kji, kinds=("outside_input_range", REGION_RESIDUAL)) for c, _ in spots]
    outcome.extra["lesions above the clip level (130 % of p99.5, 8 mm, in the input): reported"] = (
        f"{sum(hits)} / {len(hits)}"
    )


def partial_erasure_pass(case: PluginCase, outcome: Outcome) -> None:
    """Real lesions in a noisy acquisition (clean head + lesions, then noise), denoised: how much
    contrast the denoiser keeps, and whether the part it erased is flagged."""
    from app.plugins.training.calibrate_null import prepare_input

    specs = [(6.0, 0.15), (6.0, -0.15), (6.0, 0.10), (6.0, -0.10), (3.0, 0.30), (3.0, -0.30)]
    occupied = np.zeros(case.brain.shape, bool)
    spots = positions(case.brain, len(specs), 6.0, case.rng, case.spacing_kji, occupied)
    clean = np.array(case.clean, np.float32)
    balls = []
    for (centre, _), (diameter, contrast) in zip(spots, specs, strict=False):
        ball = soft_ball(clean.shape, centre, diameter, case.spacing_kji)
        clean += contrast * case.scale * ball
        balls.append((centre, diameter, contrast, ball))
    noisy = prepare_input("noisy", clean, np.random.default_rng(7))
    output = case.run(noisy)
    result = case.check(noisy, output)
    out = np.asarray(output.voxels, np.float32)
    for centre, diameter, contrast, ball in balls:
        # The lesion's core: its voxels at >= 80 % of its peak (a 3 mm soft sphere peaks under
        # 0.9, so a fixed 0.9 left it empty and the figure nan), read against the contrast the
        # clean lesion has there.
        core = ball >= 0.8 * float(ball.max())
        kept = float(np.mean(out[core] - case.clean[core]) / (contrast * case.scale * float(np.mean(ball[core]))))
        hit = found(result, centre, case.spacing_kji)
        outcome.extra[f"noisy acquisition, real {diameter:g} mm lesion {contrast:+.0%}: contrast kept, erased part flagged"] = (
            f"{kept:.0%}, {'yes' if hit else 'no'}"
        )


def _image_figures(image: np.ndarray, truth: np.ndarray, brain: np.ndarray, scale: float) -> str:
    """MAE (of p99.5) and PSNR (data range p99.5) inside the brain."""
    error = (np.asarray(image, np.float32) - truth)[brain] / scale
    mae = float(np.mean(np.abs(error)))
    psnr = float(10 * np.log10(1.0 / max(float(np.mean(error**2)), 1e-12)))
    return f"MAE {mae:.4f}, PSNR {psnr:.2f} dB"


def baseline_pass(case: PluginCase, outcome: Outcome) -> None:
    """The classical method a reviewer asks for, on the same held-out input, inside the brain:
    non-local means for the denoiser (slice by slice, h from the estimated noise), cubic spline
    through the thick slices for the super-resolution plugin, next to the input and the plugin."""
    from app.plugins.training.calibrate_null import THICK_SLICE_MM

    scale = float(np.percentile(case.clean, 99.5))
    output = np.asarray(case.output.voxels, np.float32)
    rows = {"input as given": case.original, "plugin output": output}
    if case.kind == "noisy":
        from skimage.restoration import denoise_nl_means

        from app.plugins.training.calibrate_null import NOISE_FRACTION

        # The true noise level (an advantage for the baseline; skimage's estimate needs PyWavelets).
        sigma = NOISE_FRACTION * float(np.percentile(case.clean, 99.5))
        rows[
            "non-local means (classical: slice by slice, h 0.8 sigma, patch 5, search distance 6, given the"
            " true noise SD; parameters fixed, tuned on neither head)"
        ] = np.stack(
            [
                denoise_nl_means(s, h=0.8 * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True)
                for s in case.original
            ]
        ).astype(np.float32)
    elif case.kind == "thick":
        count = case.clean.shape[0]
        starts = np.arange(0, count - THICK_SLICE_MM + 1, THICK_SLICE_MM)
        slabs = np.stack([case.clean[s : s + THICK_SLICE_MM].mean(axis=0) for s in starts])
        centres = starts + (THICK_SLICE_MM - 1) / 2.0
        positions = np.clip(np.arange(count, dtype=np.float64), centres[0], centres[-1])
        coordinates = (positions - centres[0]) / THICK_SLICE_MM
        grid = np.meshgrid(coordinates, np.arange(slabs.shape[1]), np.arange(slabs.shape[2]), indexing="ij")
        rows["cubic spline through the slice centres (classical, given the true slice thickness and phase)"] = (
            ndimage.map_coordinates(
                slabs, grid, order=3, mode="nearest"
            ).astype(np.float32)
        )
    else:
        return
    for name, image in rows.items():
        outcome.extra[f"baseline, {name} vs the truth (brain)"] = _image_figures(image, case.clean, case.brain, scale)


REAL_ERROR = 0.05  # of the robust range, smoothed output - truth at the 6 mm scale


def regions_with_real_error(result: CompareResult, case: PluginCase) -> tuple[int, int, float]:
    """(regions where the plugin's output really differs from the truth, all residual regions,
    share of the tested voxels with such an error) on an unmodified pair: the benchmark counts
    every region there as false, but where the output's error against the held-out truth
    (Gaussian sigma 1.5 mm, peak |.| in the region) reaches ``REAL_ERROR`` of the range the
    plugin did change the anatomy that much."""
    error = np.abs(
        ndimage.gaussian_filter(np.asarray(case.output.voxels, np.float32) - case.clean, 1.5 / case.spacing_kji)
    )
    regions = [r for r in result.regions if r.kind == REGION_RESIDUAL]
    real = sum(1 for r in regions if float(error[result.label_map == r.label].max()) >= REAL_ERROR * case.scale)
    tested = result.z.mask if result.z is not None else case.brain
    chance = float(np.mean(error[tested] >= REAL_ERROR * case.scale)) if tested.any() else float("nan")
    return real, len(regions), chance


def run_case(
    plugin_name: str,
    kind: str,
    head,
    lesions: int = 8,
    diameters=DIAMETERS_MM,
    contrasts=CONTRASTS,
    extras: bool = True,
    seed: int = 0,
) -> Outcome:
    voxels, brain, grid = head
    case = PluginCase(plugin_name, kind, voxels, brain, grid, seed)
    outcome = Outcome(f"{plugin_name} ({kind} input)")
    outcome.seconds_plugin = case.seconds_plugin
    began = time.perf_counter()
    healthy = case.check(case.original, case.output)
    outcome.seconds_check += time.perf_counter() - began
    outcome.false_regions.append(false_region_count(healthy, []))
    real, total, chance = regions_with_real_error(healthy, case)
    outcome.extra[
        f"false regions on the unmodified pair where the output differs from the truth by >= {REAL_ERROR:.0%}"
        " (6 mm scale): real plugin errors"
    ] = f"{real} of {total} (for chance: {chance:.1%} of the tested voxels have such an error)"
    outcome.fixed_false_regions.append(false_region_count(case.check(case.original, case.output, FIXED_FRACTION * case.scale), []))
    outcome.extra["false regions on the unmodified pair"] = outcome.false_regions[0]
    model = case.calibration.model if case.calibration is not None else None
    outcome.extra["residual read"] = f"{healthy.residual_source}" + (
        f" (the plugin's calibration model: {model.residual}, tissue offset removed: {model.tissue_offset},"
        f" noise floor: {model.noise_floor_snr or 'none'})"
        if model is not None
        else ""
    )
    outcome.extra["operating point"] = (
        f"|z| > {healthy.operating.z_threshold:.2f} ({healthy.operating.source})" if healthy.operating else "n/a"
    )
    for diameter in diameters:
        for contrast in contrasts:
            plant_pass(case, outcome, diameter, contrast, lesions)
    if extras:
        baseline_pass(case, outcome)
        removal_pass(case, outcome, lesions)
        if kind == "clean" or plugin_name.endswith("sr"):
            clip_pass(case, outcome, max(2, lesions // 2))
        if kind == "noisy":
            partial_erasure_pass(case, outcome)
    return outcome


def summarise(outcome: Outcome, held_out_only: bool = True) -> dict:
    """Sensitivity per (contrast, diameter) over both signs, false regions per case, AUROCs."""
    rows = [r for r in outcome.rows if r[4] or not held_out_only]
    figures = _sensitivity(rows)
    positive = [r[3] for r in rows if r[0] >= 5 and abs(r[1]) >= 0.08]
    negative = [d[1] for d in outcome.decoys if d[0] >= 5]
    voxel = (
        auroc(
            list(np.concatenate([p for p, _ in outcome.voxel_scores])),
            list(np.concatenate([n for _, n in outcome.voxel_scores])[::5]),
        )
        if outcome.voxel_scores
        else float("nan")
    )
    return {
        "sensitivity": figures,
        "region AUROC (>=5 mm, >=8 %)": auroc(positive, negative),
        "voxel AUROC (>=5 mm, >=8 %)": voxel,
        "false regions per case (mean, max)": (
            float(np.mean(outcome.false_regions)),
            int(np.max(outcome.false_regions)),
        ),
        FIXED: _fixed_summary(outcome, held_out_only),
    }


FIXED = f"fixed threshold ({FIXED_FRACTION:.0%} of the robust range), same passes"


def _sensitivity(rows: list) -> dict:
    """(diameter, |contrast|) -> (share found of the bright, of the dark) over ``rows``."""
    figures: dict = {}
    for diameter in sorted({r[0] for r in rows}):
        for contrast in sorted({abs(r[1]) for r in rows}):
            chosen = [r for r in rows if r[0] == diameter and abs(r[1]) == contrast]
            bright = [r[2] for r in chosen if r[1] > 0]
            dark = [r[2] for r in chosen if r[1] < 0]
            figures[(diameter, contrast)] = (
                float(np.mean(bright)) if bright else float("nan"),
                float(np.mean(dark)) if dark else float("nan"),
            )
    return figures


def _fixed_summary(outcome: Outcome, held_out_only: bool) -> dict:
    """The fixed-threshold baseline's figures (empty when it was not run)."""
    if not outcome.fixed_false_regions:
        return {}
    rows = [r for r in outcome.fixed_rows if r[4] or not held_out_only]
    positive = [r[3] for r in rows if r[0] >= 5 and abs(r[1]) >= 0.08]
    negative = [d[1] for d in outcome.fixed_decoys if d[0] >= 5]
    return {
        "sensitivity": _sensitivity(rows),
        "region AUROC (>=5 mm, >=8 %)": auroc(positive, negative),
        "false regions per case (mean, max)": (
            float(np.mean(outcome.fixed_false_regions)),
            int(np.max(outcome.fixed_false_regions)),
        ),
    }


def print_outcome(outcome: Outcome) -> None:
    summary = summarise(outcome)
    print(f"\n== {outcome.name}")
    contrasts = sorted({c for _, c in summary["sensitivity"]})
    print("sensitivity (held-out lesions, bright/dark) by diameter x contrast:")
    print("  diameter  " + "  ".join(f"{c:>9.0%}" for c in contrasts))
    for diameter in sorted({d for d, _ in summary["sensitivity"]}):
        cells = []
        for contrast in contrasts:
            bright, dark = summary["sensitivity"][(diameter, contrast)]
            cells.append(f"{bright:4.2f}/{dark:4.2f}")
        print(f"  {diameter:5.0f} mm  " + "  ".join(f"{c:>9s}" for c in cells))
    for key in ("region AUROC (>=5 mm, >=8 %)", "voxel AUROC (>=5 mm, >=8 %)"):
        print(f"{key:70s} {summary[key]:.3f}")
    mean, worst = summary["false regions per case (mean, max)"]
    print(f"{'false regions per case (mean over ' + str(len(outcome.false_regions)) + ' cases, max)':70s} {mean:.2f}, {worst}")
    fixed = summary[FIXED]
    if fixed:
        cells = "  ".join(
            f"{d:g} mm {c:.0%}: {b:4.2f}/{k:4.2f}" for (d, c), (b, k) in fixed["sensitivity"].items()
        )
        mean, worst = fixed["false regions per case (mean, max)"]
        print(f"baseline, {FIXED}: sensitivity {cells}")
        print(
            f"baseline: region AUROC {fixed['region AUROC (>=5 mm, >=8 %)']:.3f}, false regions per case"
            f" mean {mean:.2f}, max {worst}"
        )
    for key, value in outcome.extra.items():
        print(f"{key:70s} {value}")
    print(f"{'check time / plugin run time':70s} {outcome.seconds_check / max(outcome.seconds_plugin, 1e-9) / max(1, len(outcome.false_regions)):.2f} per case")


def card_section(outcomes: list[Outcome], what_ran: str = "") -> str:
    """The model card's section: the benchmark's figures for one plugin's cases."""
    lines = [
        "## Hallucination check (bench/bench_hallucination.py, held-out MNI152 head)",
        "",
        *([what_ran, ""] if what_ran else []),
        "`compare`'s default operating point (1 expected false region per healthy volume, raised to"
        " this plugin's null calibration measured on the TRAINING head) on real outputs of this"
        " plugin. Planted soft spheres added to the output (bright / dark), found = a region centroid"
        " within 5 mm; sensitivity over the held-out (right-hemisphere) lesions, bright/dark.",
    ]
    for outcome in outcomes:
        summary = summarise(outcome)
        contrasts = sorted({c for _, c in summary["sensitivity"]})
        lines += ["", f"**{outcome.name}**", "", "| diameter | " + " | ".join(f"{c:.0%}" for c in contrasts) + " |"]
        lines.append("|---|" + "---|" * len(contrasts))
        for diameter in sorted({d for d, _ in summary["sensitivity"]}):
            cells = [
                "{:.2f} / {:.2f}".format(*summary["sensitivity"][(diameter, contrast)]) for contrast in contrasts
            ]
            lines.append(f"| {diameter:g} mm | " + " | ".join(cells) + " |")
        mean, worst = summary["false regions per case (mean, max)"]
        lines += [
            "",
            f"- Region-level AUROC (peak |z| in planted spheres >= 5 mm, >= 8 % vs same-size healthy"
            f" spheres): {summary['region AUROC (>=5 mm, >=8 %)']:.3f}; voxel-level AUROC (lenient):"
            f" {summary['voxel AUROC (>=5 mm, >=8 %)']:.3f}.",
            f"- False regions per case: mean {mean:.2f}, max {worst} over {len(outcome.false_regions)} cases"
            " (the unmodified pair and every planted pass).",
        ]
        fixed = summary[FIXED]
        if fixed:
            mean, worst = fixed["false regions per case (mean, max)"]
            lines += [
                "",
                f"Simplest baseline, {FIXED} (the smoothed |residual| against a fixed share of the"
                " image's range, `compare --threshold`; nothing calibrated):",
                "",
                "| diameter | " + " | ".join(f"{c:.0%}" for c in contrasts) + " |",
                "|---|" + "---|" * len(contrasts),
            ]
            for diameter in sorted({d for d, _ in fixed["sensitivity"]}):
                cells = ["{:.2f} / {:.2f}".format(*fixed["sensitivity"][(diameter, c)]) for c in contrasts]
                lines.append(f"| {diameter:g} mm | " + " | ".join(cells) + " |")
            lines += [
                "",
                f"- Baseline region-level AUROC (peak smoothed |residual|, same spheres and decoys):"
                f" {fixed['region AUROC (>=5 mm, >=8 %)']:.3f}; false regions per case: mean {mean:.2f},"
                f" max {worst}.",
            ]
        lines += [f"- {key}: {value}" for key, value in outcome.extra.items()]
    lines += ["", "Found / planted per case (the closing table's rows):", "", closing_table(outcomes).rstrip("\n")]
    return "\n".join(lines) + "\n"


def _found_counts(rows: list, diameter: float, contrast: float) -> tuple[int, int]:
    chosen = [r[2] for r in rows if r[0] == diameter and abs(abs(r[1]) - contrast) < 1e-9]
    return int(sum(chosen)), len(chosen)


def closing_table(outcomes: list[Outcome], held_out_only: bool = True) -> str:
    """One markdown table over all cases: per case and lesion size, found / planted (bright and
    dark together) at each contrast, then the case's false regions and region AUROC."""
    if not outcomes:
        return ""
    contrasts = sorted({abs(r[1]) for o in outcomes for r in o.rows})
    which = "held-out (right-hemisphere) lesions" if held_out_only else "all planted lesions"
    lines = [
        f"Sensitivity = found / planted, {which}, bright and dark together (found: a region centroid"
        " within 5 mm); false regions: on the unmodified pair, and the mean over every pass of the case;"
        " region AUROC: peak |z| in planted spheres >= 5 mm, >= 8 % vs same-size healthy spheres.",
        "",
        "| case | size | " + " | ".join(f"{c:.0%}" for c in contrasts) + " | false regions (unmodified; mean/case) | region AUROC |",
        "|---|---|" + "---|" * len(contrasts) + "---|---|",
    ]
    for outcome in outcomes:
        rows = [r for r in outcome.rows if r[4] or not held_out_only]
        summary = summarise(outcome, held_out_only)
        mean, _ = summary["false regions per case (mean, max)"]
        for index, diameter in enumerate(sorted({r[0] for r in rows})):
            cells = ["{}/{}".format(*_found_counts(rows, diameter, c)) for c in contrasts]
            tail = (
                [f"{outcome.false_regions[0]}; {mean:.2f}", f"{summary['region AUROC (>=5 mm, >=8 %)']:.3f}"]
                if index == 0
                else ["", ""]
            )
            lines.append(f"| {outcome.name if index == 0 else ''} | {diameter:g} mm | " + " | ".join(cells + tail) + " |")
    return "\n".join(lines) + "\n"


def outcome_json(outcome: Outcome) -> dict:
    """The figures of one case, for ``--json`` (keys say what they measure)."""
    summary = summarise(outcome)
    fixed = summary[FIXED]

    def cells(figures: dict) -> list:
        return [
            {"diameter_mm": d, "contrast": c, "found_share_bright": b, "found_share_dark": k}
            for (d, c), (b, k) in figures.items()
        ]

    return {
        "case": outcome.name,
        "held_out_rows": [
            {"diameter_mm": r[0], "contrast_signed": r[1], "found": bool(r[2]), "peak_abs_z": r[3]}
            for r in outcome.rows
            if r[4]
        ],
        "sensitivity_held_out": cells(summary["sensitivity"]),
        "region_auroc_ge5mm_ge8pct": summary["region AUROC (>=5 mm, >=8 %)"],
        "voxel_auroc_ge5mm_ge8pct_lenient": summary["voxel AUROC (>=5 mm, >=8 %)"],
        "false_regions_unmodified_pair": outcome.false_regions[0],
        "false_regions_per_pass": list(outcome.false_regions),
        "fixed_threshold_baseline": {
            "sensitivity_held_out": cells(fixed["sensitivity"]) if fixed else [],
            "region_auroc_ge5mm_ge8pct": fixed.get("region AUROC (>=5 mm, >=8 %)") if fixed else None,
            "false_regions_per_pass": list(outcome.fixed_false_regions),
        },
        "extra": {k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in outcome.extra.items()},
        "seconds_check": outcome.seconds_check,
        "seconds_plugin": outcome.seconds_plugin,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reduced", action="store_true", help="a 48-slice slab, 6 mm lesions at 10 %% only")
    parser.add_argument("--plugins", nargs="+", default=None, help="plugin names (default: all shipped)")
    parser.add_argument("--lesions", type=int, default=8, help="planted spheres per pass")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--write-cards",
        action="store_true",
        help="write each plugin's section (hallucination_benchmark.md) and re-render its MODEL_CARD.md",
    )
    parser.add_argument("--json", type=Path, default=None, help="write every case's figures to this JSON file")
    parser.add_argument(
        "--contrasts", type=float, nargs="+", default=None, help="contrasts as fractions (default: 0.05 .. 0.30)"
    )
    parser.add_argument("--diameters", type=float, nargs="+", default=None, help="lesion diameters, mm (default: 3 6 10)")
    parser.add_argument("--no-extras", action="store_true", help="planted passes only (no baselines, removals, clipping)")
    args = parser.parse_args(argv)
    head = held_out_head(48 if args.reduced else None)
    by_plugin: dict[str, list[Outcome]] = {}
    for plugin_name, kind in CASES:
        if args.plugins and plugin_name not in args.plugins:
            continue
        if args.reduced:
            outcome = run_case(plugin_name, kind, head, args.lesions, (6.0,), (0.10,), extras=False, seed=args.seed)
        else:
            outcome = run_case(
                plugin_name,
                kind,
                head,
                args.lesions,
                tuple(args.diameters or DIAMETERS_MM),
                tuple(args.contrasts or CONTRASTS),
                extras=not args.no_extras,
                seed=args.seed,
            )
        print_outcome(outcome)
        by_plugin.setdefault(plugin_name, []).append(outcome)
    outcomes = [o for group in by_plugin.values() for o in group]
    print("\n" + closing_table(outcomes))
    if args.json is not None:
        import json

        args.json.write_text(json.dumps([outcome_json(o) for o in outcomes], indent=1, default=float) + "\n")
    shown = list(argv if argv is not None else sys.argv[1:])
    if "--json" in shown:  # where the figures were also written is no part of the run
        del shown[shown.index("--json") : shown.index("--json") + 2]
    what_ran = (
        f"Run: `python bench/bench_hallucination.py {' '.join(shown)}`"
        f" ({args.lesions} spheres per pass, half bright, half dark, half of them held out; seed {args.seed};"
        f" whole held-out head; plugin weights as shipped; thresholds and calibrations from the training"
        " head only, nothing chosen on this run)."
    )
    if args.write_cards and not args.reduced:
        from app.plugins.discovery import find_plugin
        from app.plugins.training.model_card import BENCHMARK_FILE
        from app.plugins.training.model_card import main as render_cards

        for plugin_name, outcomes in by_plugin.items():
            folder = find_plugin(plugin_name).folder
            (folder / BENCHMARK_FILE).write_text(card_section(outcomes, what_ran))
            render_cards([str(folder)])
    return 0


if __name__ == "__main__":
    sys.exit(main())

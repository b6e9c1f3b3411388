"""The hallucination benchmark, reduced: the shipped denoiser's real output on a slab of the
held-out head, with planted 6 mm lesions of 10 % contrast, meets the issue's targets."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[2] / "bench" / "bench_hallucination.py"
    spec = importlib.util.spec_from_file_location("bench_hallucination", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def slab(bench):
    return bench.held_out_head(32)


def test_auroc_counts_ties_half(bench):
    assert bench.auroc([3.0, 2.0], [1.0]) == 1.0
    assert bench.auroc([1.0], [1.0]) == 0.5
    assert bench.auroc([0.0], [1.0, 2.0]) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["clean", "noisy"])
def test_denoiser_finds_6mm_10_percent_lesions_with_few_false_regions(bench, slab, kind):
    outcome = bench.run_case("mr-t1-denoise", kind, slab, 6, (6.0,), (0.10,), extras=False)
    summary = bench.summarise(outcome, held_out_only=False)
    bright, dark = summary["sensitivity"][(6.0, 0.10)]
    assert bright == 1.0 and dark == 1.0  # centroid within 5 mm, both signs
    assert summary["false regions per case (mean, max)"][1] <= 2
    assert summary["region AUROC (>=5 mm, >=8 %)"] >= 0.95
    fixed = summary[bench.FIXED]  # the simplest baseline ran on the same passes
    assert set(fixed["sensitivity"]) == set(summary["sensitivity"])
    assert len(outcome.fixed_false_regions) == len(outcome.false_regions)


@pytest.mark.slow
@pytest.mark.parametrize("plugin", ["mr-t1-denoise", "mr-t1-pseudo-healthy"])
def test_a_lesion_above_the_clip_level_is_reported(bench, slab, plugin):
    voxels, brain, grid = slab
    case = bench.PluginCase(plugin, "clean", voxels, brain, grid)
    outcome = bench.Outcome("clip")
    bench.clip_pass(case, outcome, 2)
    reported = outcome.extra["lesions above the clip level (130 % of p99.5, 8 mm, in the input): reported"]
    found, total = (int(v) for v in reported.split(" / "))
    assert total == 2 and found == total


def test_found_needs_the_centroid_within_5_mm(bench):
    from app.analysis.compare_run import run_compare
    from app.core.volume import Geometry, Volume

    image = np.zeros((30, 40, 40), np.float32)
    image[2:28, 4:36, 4:36] = 100.0
    changed = image.copy()
    changed[10:16, 10:16, 10:16] += 40.0
    result = run_compare(Volume(image, Geometry.identity(), "MR"), Volume(changed, Geometry.identity(), "MR"))
    assert bench.found(result, np.array([12.5, 12.5, 12.5]), np.ones(3))
    assert not bench.found(result, np.array([12.5, 12.5, 20.5]), np.ones(3))



@pytest.mark.slow
def test_super_resolution_is_read_through_slab_consistency_and_separates_lesions(bench, slab):
    # Its calibration declares the slab-consistency residual: the detail the plugin adds between
    # the 5 mm slices is not change, so planted 6 mm 10 % lesions stand above healthy spheres and
    # are found (the plain residual found none of them here: 0/3 bright, 0/3 dark). False regions
    # are not asserted on this 32-slice slab: the plugin's coronal slices are cut at its ends,
    # and it redraws the cut (the full-head benchmark counts them).
    outcome = bench.run_case("mr-t1-thick-slice-sr", "thick", slab, 6, (6.0,), (0.10,), extras=False)
    assert "averaged over the input's 5-voxel slices" in outcome.extra["residual read"]
    summary = bench.summarise(outcome, held_out_only=False)
    assert summary["region AUROC (>=5 mm, >=8 %)"] >= 0.95
    assert min(summary["sensitivity"][(6.0, 0.10)]) >= 0.5


@pytest.mark.slow
def test_the_partial_erasure_figures_are_numbers_for_every_lesion_size(bench, slab):
    voxels, brain, grid = slab
    case = bench.PluginCase("mr-t1-denoise", "noisy", voxels, brain, grid)
    outcome = bench.Outcome("erasure")
    bench.partial_erasure_pass(case, outcome)
    kept = {k: v for k, v in outcome.extra.items() if "contrast kept" in k}
    assert any(" 3 mm " in k for k in kept) and any(" 6 mm " in k for k in kept)
    for value in kept.values():
        share = value.split("%")[0]
        assert share.lstrip("-").isdigit(), value  # a percentage, never 'nan'


@pytest.fixture(scope="module")
def pseudo_healthy_slab(bench, slab):
    """The shipped pseudo-healthy plugin (v3) on the 32-slice held-out slab: the unmodified pair,
    then 6 lesions (both signs) of 6 and 10 mm at 10 and 30 % planted in its real output."""
    outcome = bench.run_case("mr-t1-pseudo-healthy", "clean", slab, 6, (6.0, 10.0), (0.10, 0.30), extras=False)
    return outcome, bench.summarise(outcome, held_out_only=False)


@pytest.mark.slow
def test_pseudo_healthy_false_regions_and_lesions_on_a_slab(pseudo_healthy_slab):
    """Measured 2026-12-05 (v3 weights 0219e0cf65d7; calibration schema 2 on Colin27 whole +
    stripped): 1 false region on the unmodified slab and in every planted pass (1 on the whole
    held-out head, at |z| > 15.0); region AUROC 1.000 (24 planted spheres vs 24 same-size healthy
    spheres); found (centroid within 5 mm) 9 of the 12 lesions at 30 %, 0 of 12 at 10 %. The v1
    weights (6bfa8709bc9e) it replaced: 3 false regions, AUROC 0.927, 4 of 12 at 30 %, 1 of 12 at 10 %.
    The fixed 10 % threshold on the unmodified slab: 2 false regions (v1: 5)."""
    outcome, summary = pseudo_healthy_slab
    assert outcome.false_regions[0] <= 1  # the unmodified pair: every region is false
    assert max(outcome.false_regions) <= 1
    assert outcome.fixed_false_regions[0] <= 2
    assert summary["region AUROC (>=5 mm, >=8 %)"] >= 0.99
    found_30 = sum(r[2] for r in outcome.rows if abs(r[1]) == 0.30)
    assert found_30 >= 8


@pytest.mark.slow
def test_pseudo_healthy_meets_the_issue_targets_on_a_slab(pseudo_healthy_slab):
    """Issue 15's targets for this plugin: at most 3 false regions per healthy volume (every pass
    here), region AUROC >= 0.95 for lesions >= 5 mm and >= 8 %. A strict xfail with v1 (3 false
    regions but AUROC 0.927); met by v3."""
    outcome, summary = pseudo_healthy_slab
    assert max(outcome.false_regions) <= 3
    assert summary["region AUROC (>=5 mm, >=8 %)"] >= 0.95

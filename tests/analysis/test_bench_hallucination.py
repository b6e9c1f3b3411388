"""The hallucination benchmark runs at reduced size and meets its goal on the residual check."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[2] / "bench" / "bench_hallucination.py"
    spec = importlib.util.spec_from_file_location("bench_hallucination", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_reduced_benchmark_region_auroc(bench):
    figures = bench.run_benchmark(cases=2, lesions_per_case=6, slab_slices=16, crop=96, seed=0)
    # --cases counts slabs; each slab runs through every generator, and the row says so.
    assert figures["cases (slabs x generators)"] == 2 * len(bench.GENERATORS)
    assert figures["residual region AUROC >=5mm"] >= 0.95
    assert figures["residual sensitivity at default threshold >=5mm"] >= 0.9
    assert figures["residual false-positive regions per case"] <= 3
    # Every check reports its figures (no NaN where positives and negatives exist).
    for check in bench.CHECKS:
        assert not math.isnan(figures[f"{check} region AUROC all"])


def test_auroc_counts_ties_half(bench):
    assert bench.auroc([3.0, 2.0], [1.0]) == 1.0
    assert bench.auroc([1.0], [1.0]) == 0.5
    assert bench.auroc([0.0], [1.0, 2.0]) == 0.0


def _identity_model():
    return "identity", lambda voxels, grid: voxels.copy()


def test_plugin_rows_with_a_model_that_removes_nothing(bench):
    figures = bench.run_plugin_benchmark(cases=1, lesions_per_case=4, model=_identity_model())
    assert figures["plugin"] == "identity"
    assert figures["plugin, training-like lesions: lesions >=5mm (dark / bright)"] != "0 / 0"
    for kind in bench.LESION_KINDS:
        prefix = f"plugin, {kind} lesions:"
        # Nothing removed: every region scores 0, so lesions and healthy regions tie (chance).
        assert figures[f"{prefix} residual region AUROC >=5mm"] == 0.5
        assert figures[f"{prefix} fraction of lesion error removed"] == 0.0
        for rule in ("p99.9-calibrated", "max-calibrated", "default"):
            assert figures[f"{prefix} false-positive regions per case at {rule} threshold"] == 0.0
    # The calibrated thresholds are stated (here 0: a healthy slab comes out unchanged).
    assert figures["plugin p99.9-calibrated threshold (healthy brain |residual|) / p99.5"] == 0.0


def test_training_like_lesions_come_from_the_training_code(bench, monkeypatch):
    import numpy as np

    from app.plugins.training import degrade

    calls = []
    original_insert = degrade.insert_lesions

    def spy(*args, **kwargs):
        calls.append(args[3])
        return original_insert(*args, **kwargs)

    monkeypatch.setattr(degrade, "insert_lesions", spy)
    slab = np.full((30, 90, 90), 100.0, np.float32)
    brain = np.zeros(slab.shape, bool)
    brain[3:27, 5:85, 5:85] = True
    occupied = np.zeros(slab.shape, bool)
    rng = np.random.default_rng(1)
    image, lesions = bench.training_lesions(slab, brain, 100.0, (1.0, 1.0, 1.0), 3, rng, occupied)
    assert calls and set(calls) == {1}
    assert len(lesions) == 3
    for lesion in lesions:
        assert not lesion.mask[0].any() and not lesion.mask[-1].any()
        assert 5.0 <= lesion.diameter_mm <= 18.5  # 3-9 mm radii, clipped to the brain
        level = image[lesion.mask].mean() / 100.0
        assert 0.1 < level < 0.6 or 0.9 < level < 1.15  # dark or bright training levels, soft edge
        assert np.isclose(lesion.contrast, image[lesion.mask].mean() - 100.0, rtol=0.02)
    for a in range(3):
        for b in range(a + 1, 3):
            assert not (lesions[a].mask & lesions[b].mask).any()
    _, decoys = bench.training_lesions(slab, brain, 100.0, (1.0, 1.0, 1.0), 2, rng, occupied, apply=False)
    assert len(decoys) == 2 and not any((d.mask & x.mask).any() for d in decoys for x in lesions)


def test_auroc_interval_brackets_the_figure(bench):
    import numpy as np

    rng = np.random.default_rng(0)
    positive, negative = list(rng.normal(1.0, 1.0, 30)), list(rng.normal(0.0, 1.0, 30))
    low, high = bench.auroc_interval(positive, negative, np.random.default_rng(0), resamples=300)
    assert low < bench.auroc(positive, negative) < high
    assert bench.auroc_interval([1.0, 2.0], [0.0], np.random.default_rng(0), resamples=50) == (1.0, 1.0)


def test_plugin_row_says_why_no_plugin_ran(bench, monkeypatch, capsys):
    monkeypatch.setattr(bench, "run_benchmark", lambda **kwargs: {"cases": 1})
    bench.main(["--reduced", "--plugin", "none"])
    assert "skipped: --plugin none" in capsys.readouterr().out
    monkeypatch.setattr(bench, "find_shipped_pseudo_healthy", lambda: None)
    bench.main(["--reduced"])
    assert "no pseudo-healthy plugin under plugins/ (skipped)" in capsys.readouterr().out

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

"""The rerun-maps benchmark accounts for every map kind: measured, or why not."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from app.plugins.rerun_maps import MAP_KINDS

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_hallucination_reruns.py"


@pytest.mark.slow
def test_every_map_kind_is_measured_or_says_why_not(capsys):
    spec = importlib.util.spec_from_file_location("bench_hallucination_reruns", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--slices", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(MAP_KINDS)
    # The shipped pseudo-healthy plugin: a TorchScript without dropout, no reverse generator.
    assert "not measured (mr-t1-pseudo-healthy has no dropout layers)" in rows["mc_dropout"]
    assert "not measured (mr-t1-pseudo-healthy ships no reverse generator)" in rows["cycle"]
    for kind in ("tta", "perturbation"):
        ratio = float(re.search(r"map:\s+([\d.]+) x one synthesis", rows[kind]).group(1))
        assert ratio > 0.5  # each reruns the generator at least once more

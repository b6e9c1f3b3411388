"""Every benchmark under bench/ starts from a clean shell, as its docstring says to run it.

``.venv/bin/python bench/X.py`` from another folder, with no PYTHONPATH: a script that imports
``app`` without putting the repository on the path dies with ModuleNotFoundError before it
measures anything. ``--help`` parses the arguments only, so this is quick.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(BENCH.glob("bench_*.py"))


def test_there_are_benchmarks():
    assert len(SCRIPTS) >= 8


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.stem)
def test_bench_script_help_runs_from_a_clean_shell(script, tmp_path):
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, str(script), "--help"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "usage:" in completed.stdout
    # The description is the docstring's first line, which says what is measured against what.
    assert script.stem in completed.stdout

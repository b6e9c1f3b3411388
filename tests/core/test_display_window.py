"""Window statistics (app.core.display): numpy's percentiles without np.percentile's cost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.display import (
    WindowLevel,
    _percentiles,
    clipped_fraction,
    header_or_robust_window,
    percentile_window,
    robust_window,
)


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float64, np.float32])
@pytest.mark.parametrize("size", [1, 2, 7, 1000, 100_001])
def test_percentiles_match_numpys_linear_method(dtype, size):
    values = np.random.default_rng(size).normal(300, 100, size).astype(dtype)
    qs = [0.0, 1.0, 33.3, 50.0, 99.0, 99.5, 100.0]
    ours = _percentiles(values, qs)
    theirs = np.percentile(values.astype(np.float64), qs)
    assert np.allclose(ours, theirs, rtol=1e-12, atol=1e-9)


def test_nan_and_inf_are_left_out_of_float_windows():
    values = np.array([np.nan, np.inf, -np.inf, 0.0, 1.0, 2.0, 3.0, 4.0])
    window = percentile_window(values, 0.0, 100.0)
    assert (window.low, window.high) == (0.0, 4.0)
    assert robust_window(np.array([np.nan, np.nan])) == WindowLevel(0.0, 1.0)


def test_header_or_robust_agrees_with_its_two_parts():
    rng = np.random.default_rng(3)
    brain = np.zeros((40, 50, 60), np.int16)
    brain[5:35, 10:40, 10:50] = rng.integers(100, 1020, (30, 30, 40))
    kept = WindowLevel(600, 1200)  # whites out nothing
    assert header_or_robust_window(brain, kept, 0.01) == kept
    clipping = WindowLevel(450, 900)  # the demo's header window: up to 900 for data up to 1020
    assert clipped_fraction(brain, clipping) > 0.01
    assert header_or_robust_window(brain, clipping, 0.01) == robust_window(brain)


def test_the_window_statistics_do_not_import_numpy_ma():
    # np.percentile imports numpy.ma on its first call (17 ms on the way to the first image).
    code = (
        "import numpy as np, sys\n"
        "from app.core.viewer_state import initial_window\n"
        "from app.core.volume import Volume\n"
        "from app.core.display import percentile_window\n"
        "v = np.arange(64000, dtype=np.int16).reshape(40, 40, 40)\n"
        "percentile_window(v); print('numpy.ma' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.strip() == "False", result.stderr[-2000:]

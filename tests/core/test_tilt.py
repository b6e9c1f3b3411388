"""Gantry-tilt geometry and the in-plane slice shift (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.tilt import correct_tilt, plan_tilt_correction, shift_slice

ROW, COL = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])


def test_a_stack_along_its_normal_needs_no_correction():
    positions = [[5.0, -3.0, z] for z in (0.0, 1.5, 3.0)]
    assert plan_tilt_correction(positions, ROW, COL, (0.5, 0.5), (8, 6)) is None
    assert plan_tilt_correction(positions[:1], ROW, COL, (0.5, 0.5), (8, 6)) is None


def test_plan_grows_the_grid_and_moves_the_origin_to_the_lowest_shift():
    # Each slice 0.75 pixel further along -column (rows): offsets 0, -0.75, -1.5 pixels.
    positions = [[0.0, -0.375 * k, 2.0 * k] for k in range(3)]
    plan = plan_tilt_correction(positions, ROW, COL, (0.5, 0.5), (8, 6))
    assert plan.size_ij == (8, 8)  # rows: 6 + ceil(0) - floor(-1.5) = 8
    assert np.allclose(plan.origin_lps_mm, [0.0, -1.0, 0.0])  # two rows up from slice 0
    # Grid pixel (i, j) of slice k reads stored (i + 0, j - 2 + 0.75 k).
    assert np.allclose(plan.source_offset_px, [[0, -2], [0, -1.25], [0, -0.5]])
    assert plan.tilt_deg == pytest.approx(np.degrees(np.arctan2(0.75, 4.0)))
    assert plan.max_shift_mm == pytest.approx(0.75)


def test_fractional_shift_of_a_ramp_is_the_ramp_shifted():
    ramp = np.add.outer(10.0 * np.arange(5), np.arange(7)).astype(np.float32)  # 10 j + i
    out = np.empty((5, 7), np.float32)
    shift_slice(ramp, out, (0.25, 1.5), fill_value=-99)
    j, i = np.mgrid[0:5, 0:7]
    inside = (i + 0.25 <= 6) & (j + 1.5 <= 4)
    assert np.allclose(out[inside], (10 * (j + 1.5) + i + 0.25)[inside])
    assert np.all(out[~inside] == -99)  # partly outside the stored slice: fill, no extrapolation


def test_integer_shift_copies_values_exactly():
    rng = np.random.default_rng(1)
    source = rng.integers(-1024, 3000, (6, 9)).astype(np.int16)
    out = np.empty((8, 9), np.float32)
    shift_slice(source, out, (0.0, -2.0), fill_value=-1024)
    assert np.array_equal(out[2:], source.astype(np.float32))
    assert np.all(out[:2] == -1024)


def test_correct_tilt_leaves_the_input_and_returns_float32():
    voxels = np.arange(2 * 4 * 5, dtype=np.int16).reshape(2, 4, 5)
    before = voxels.copy()
    plan = plan_tilt_correction([[0, 0, 0], [1.0, 0, 1.0]], ROW, COL, (1.0, 1.0), (5, 4))
    corrected = correct_tilt(voxels, plan, fill_value=-1.0)
    assert np.array_equal(voxels, before)
    assert corrected.dtype == np.float32 and corrected.shape == (2, 4, 6)
    assert np.array_equal(corrected[0, :, :5], voxels[0]) and np.all(corrected[0, :, 5] == -1)
    assert np.array_equal(corrected[1, :, 1:], voxels[1]) and np.all(corrected[1, :, 0] == -1)

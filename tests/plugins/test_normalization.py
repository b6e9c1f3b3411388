"""Intensity scaling: hand-checked window mapping, sampled percentiles, exact inverse."""

from __future__ import annotations

import numpy as np
import torch

from app.plugins.normalization import fit_input_scaling, from_network, to_network

WINDOW = {"input": {"method": "window", "low": -1000, "high": 1000}, "output": {"method": "same_as_input"}}


def test_hu_window_maps_to_minus_one_one_and_clips():
    fitted = fit_input_scaling(np.zeros(1), WINDOW)
    hu = np.array([-2000.0, -1000.0, 0.0, 500.0, 1000.0, 3000.0])
    np.testing.assert_allclose(to_network(hu, fitted), [-1, -1, 0, 0.5, 1, 1], atol=1e-6)
    np.testing.assert_allclose(
        to_network(torch.from_numpy(hu), fitted).numpy(), [-1, -1, 0, 0.5, 1, 1], atol=1e-6
    )


def test_same_as_input_inverse_restores_values_inside_the_window():
    fitted = fit_input_scaling(np.zeros(1), WINDOW)
    hu = np.linspace(-1000, 1000, 11)
    np.testing.assert_allclose(from_network(to_network(hu, fitted), WINDOW, fitted), hu, atol=1e-3)


def test_percentiles_of_a_large_volume_are_sampled_but_close_to_exact():
    voxels = np.random.default_rng(0).integers(0, 1000, size=(120, 120, 120)).astype(np.int16)
    spec = {
        "input": {"method": "percentile", "low_percentile": 1, "high_percentile": 99},
        "output": {"method": "none"},
    }
    fitted = fit_input_scaling(voxels, spec)
    exact = np.percentile(voxels, [1, 99])
    assert abs(fitted.low - exact[0]) <= 2 and abs(fitted.high - exact[1]) <= 2


def test_constant_image_does_not_divide_by_zero():
    spec = {
        "input": {"method": "percentile", "low_percentile": 1, "high_percentile": 99},
        "output": {"method": "none"},
    }
    fitted = fit_input_scaling(np.full((4, 4, 4), 7.0), spec)
    assert np.all(np.isfinite(to_network(np.full((4, 4, 4), 7.0), fitted)))

"""Difference, uncertainty, cycle and perturbation maps on small arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from app.analysis.consistency import PerturbationSettings, cycle_residual, perturbation_change, run_cycle
from app.analysis.difference_maps import difference_maps, reference_difference_maps
from app.analysis.uncertainty import (
    default_augmentations,
    flip,
    intensity_jitter,
    shift,
    tta_outputs,
    tta_uncertainty,
    voxel_sd,
)
from app.core.provenance import Provenance
from app.core.quantity_map import MapKind
from app.core.resample import reorient_towards_lps, resample_onto
from app.core.volume import Geometry, Volume


def volume(values, modality="MR", geometry=None, provenance=None, units=""):
    return Volume(
        np.asarray(values, np.float32), geometry or Geometry.identity(), modality, units, "v", provenance
    )


def test_signed_and_absolute_difference():
    original = volume(np.arange(24).reshape(2, 3, 4))
    output = volume(np.arange(24).reshape(2, 3, 4) + np.where(np.arange(24) % 2, 3, -2).reshape(2, 3, 4))
    maps = difference_maps(original, output)
    assert maps.meaningful
    assert set(np.unique(maps.signed.voxels)) == {-2.0, 3.0}
    assert np.array_equal(maps.absolute.voxels, np.abs(maps.signed.voxels))
    assert maps.signed.geometry.allclose(original.geometry)
    assert maps.signed.quantity_map.kind is MapKind.SIGNED_DIFFERENCE
    assert maps.absolute.quantity_map.kind is MapKind.ABSOLUTE_DIFFERENCE and not original.is_map


def test_a_map_stays_a_map_on_another_grid():
    original = volume(np.arange(24).reshape(2, 3, 4))
    absolute = difference_maps(original, volume(np.ones((2, 3, 4)))).absolute
    coarse = Geometry.identity(spacing_mm=(2.0, 2.0, 2.0))
    for moved in (resample_onto(absolute, coarse, (1, 2, 2)), reorient_towards_lps(absolute)):
        assert moved.quantity_map == absolute.quantity_map


def test_cross_modality_difference_is_flagged_meaningless():
    maps = difference_maps(volume(np.zeros((2, 2, 2)), "MR"), volume(np.zeros((2, 2, 2)), "CT"))
    assert not maps.meaningful and "cross-modality" in maps.reason and "reference" in maps.reason


def test_reference_difference_on_reference_grid_through_world_coordinates():
    # The reference covers LPS x 0..9 mm with 1 mm voxels; the output covers the same region with
    # 2 mm voxels and the i axis reversed (runs towards R). Its values are a linear ramp in x_lps,
    # so after world-coordinate resampling the difference must vanish wherever both have data.
    reference_geometry = Geometry.identity()
    reference_values = np.tile(np.arange(10.0), (3, 4, 1))  # value = x in mm
    output_geometry = Geometry(np.array([9.0, 0.0, 0.0]), np.array([2.0, 1.0, 1.0]), np.diag([-1.0, 1, 1]))
    x_of_output = 9.0 - 2.0 * np.arange(5)
    output_values = np.tile(x_of_output, (3, 4, 1))
    synthetic = Provenance("toy", "1")
    maps = reference_difference_maps(
        volume(reference_values, "CT", reference_geometry),
        volume(output_values, "CT", output_geometry, synthetic),
    )
    assert maps.signed.shape_kji == (3, 4, 10)
    finite = np.isfinite(maps.signed.voxels)
    assert finite[:, :, 1:].all()  # x = 1..9 mm lie inside the output's voxels
    # x = 0 mm is within half an output voxel of its edge centre (x = 1 mm) and takes that value.
    assert np.max(np.abs(maps.signed.voxels[:, :, 1:])) < 1e-4
    assert maps.signed.provenance is synthetic  # a map of a synthetic volume stays marked


def test_voxel_sd_known_answer():
    outputs = [np.zeros((2, 2, 2)), np.full((2, 2, 2), 2.0), np.full((2, 2, 2), 4.0)]
    assert np.allclose(voxel_sd(outputs), np.std([0, 2, 4]))
    rng = np.random.default_rng(1)
    many = [rng.normal(size=(3, 4, 5)) for _ in range(7)]
    assert np.allclose(voxel_sd(many), np.std(np.stack(many), axis=0), atol=1e-6)
    with pytest.raises(ValueError):
        voxel_sd([np.zeros(3)])
    with pytest.raises(ValueError):
        voxel_sd([np.zeros(3), np.zeros(4)])


def test_augmentations_are_undone_exactly():
    values = np.random.default_rng(2).normal(size=(4, 6, 8)).astype(np.float32)
    for augmentation in (flip(0), flip(1), flip(2)):
        assert np.array_equal(augmentation.inverse(augmentation.forward(values)), values)
    moved = shift((0, 1, -2))
    forward = moved.forward(values)
    assert np.array_equal(forward[:, 1:, :-2], values[:, :-1, 2:])
    back = moved.inverse(forward)
    assert np.array_equal(back[:, :-1, 2:], values[:, :-1, 2:])  # all but the lost edge


def test_tta_of_an_equivariant_generator_has_no_spread_but_a_position_dependent_one_does():
    values = np.random.default_rng(4).normal(100, 10, size=(4, 16, 16)).astype(np.float32)
    geometric = [a for a in default_augmentations(scale=100.0) if "intensity" not in a.name]
    spread = tta_uncertainty(lambda x: 2 * x + 1, values, geometric)
    assert np.max(spread[:, 1:-1, 1:-1]) < 1e-4  # the 1-voxel shifts lose the outermost edge

    # A generator that paints a fixed "lesion" at array position (8, 3) regardless of content:
    def painter(x):
        out = np.array(x, copy=True)
        out[:, 8, 3] += 50
        return out

    identity = default_augmentations(scale=1.0)[0]
    sd = tta_uncertainty(painter, values, [identity, flip(2)])
    # Painted at (8, 3) in one output and at the mirrored (8, 12) in the other: SD 25 at both.
    assert np.allclose(sd[:, 8, [3, 12]], 25.0) and np.median(sd) < 1e-4
    outputs = tta_outputs(lambda x: x, values, [intensity_jitter(1.1, 0.0, 1.0)])
    assert np.allclose(outputs[0], values * 1.1)  # jitter is applied to the input only


def test_cycle_residual_and_perturbation_change():
    values = np.arange(27, dtype=np.float32).reshape(3, 3, 3)
    assert np.array_equal(cycle_residual(values, values + 2), np.full_like(values, 2))
    erase_then_back = run_cycle(lambda x: np.where(x > 20, 0, x), lambda y: y, values)
    assert np.array_equal(erase_then_back > 0, values > 20)
    with pytest.raises(ValueError):
        cycle_residual(values, values[:2])

    def unstable(x):  # output changes a lot where one voxel crosses a threshold
        out = np.array(x, copy=True)
        out[1, 1, 1] = 100.0 * np.sign(x[1, 1, 1] - 13.0)
        return out

    change, noise_sd = perturbation_change(lambda x: x, values, PerturbationSettings(0.01, seed=0))
    assert noise_sd == pytest.approx(0.01 * (np.percentile(values, 99.5) - np.percentile(values, 0.5)))
    assert change.max() < 6 * noise_sd
    again, _ = perturbation_change(lambda x: x, values, PerturbationSettings(0.01, seed=0))
    assert np.array_equal(change, again)  # seeded
    flat = np.full((3, 3, 3), 13.0, np.float32)
    change, _ = perturbation_change(
        unstable, flat + np.arange(27).reshape(3, 3, 3) * 1e-3, PerturbationSettings(0.05)
    )
    assert change[1, 1, 1] == pytest.approx(200.0) or change[1, 1, 1] == 0.0

"""The calibrated detection statistic: z maps with a stated false-region rate on healthy noise,
faint lesions found at their place and sign, the plugin calibration read and honoured."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.analysis.detection import (
    NullCalibration,
    analysis_mask,
    expected_false_regions,
    measure_calibration,
    operating_point,
    random_field_threshold,
    residual_z_map,
    z_map,
)
from app.analysis.residual_regions import ResidualSettings, find_regions, signed_components
from app.core.volume import Geometry


def ball(shape, centre_kji, radius_mm, spacing_kji=(1.0, 1.0, 1.0)) -> np.ndarray:
    k, j, i = np.indices(shape)
    d2 = sum(((a - c) * s) ** 2 for a, c, s in zip((k, j, i), centre_kji, spacing_kji, strict=True))
    return d2 <= radius_mm**2


def regions_of(residual, geometry, zmap, threshold):
    settings = ResidualSettings(threshold, 1.0, statistic="z")
    return find_regions(residual, geometry, settings, zmap.z)[0]


def test_white_noise_gives_about_the_stated_false_regions():
    rng = np.random.default_rng(0)
    shape = (60, 80, 80)
    counts = []
    for seed in range(3):
        noise = np.random.default_rng(seed).normal(0, 5.0, shape).astype(np.float32)
        single = z_map(noise, (1, 1, 1), np.ones(shape, bool), (6.0,))
        # One scale: about unit variance on the null, a little below (the local noise takes the
        # loudest neighbouring block: conservative), never above.
        assert 0.85 < float(single.z.std()) < 1.03
        zmap = z_map(noise, (1, 1, 1), np.ones(shape, bool))
        point = operating_point(zmap, 1.0)
        _, positive, negative = signed_components(zmap.z, point.z_threshold)
        counts.append(positive + negative)
    assert np.mean(counts) <= 1.5  # random-field theory is conservative, never far above the rate
    del rng


def test_the_mask_edge_is_not_noisier_than_the_interior():
    rng = np.random.default_rng(1)
    shape = (50, 70, 70)
    mask = ball(shape, (25, 35, 35), 24)
    noise = rng.normal(0, 1.0, shape).astype(np.float32)
    zmap = z_map(noise, (1, 1, 1), mask)
    edge = mask & ~ball(shape, (25, 35, 35), 20)
    assert float(zmap.z[edge].std()) == pytest.approx(float(zmap.z[mask & ~edge].std()), rel=0.15)


def test_faint_lesion_found_at_its_place_with_its_sign_against_spatially_varying_noise():
    # Anisotropic LPS geometry; noise 4x louder in one half (a parallel-imaging g-factor).
    geometry = Geometry(np.array([10.0, -20.0, 5.0]), np.array([1.0, 1.0, 1.5]), np.diag([-1.0, 1.0, 1.0]))
    spacing_kji = (1.5, 1.0, 1.0)
    shape = (40, 80, 80)
    rng = np.random.default_rng(2)
    sd = np.where(np.arange(80)[None, None, :] < 40, 1.0, 4.0).astype(np.float32)
    residual = (rng.normal(0, 1.0, shape) * sd).astype(np.float32)
    lesion = ball(shape, (20, 40, 20), 3.0, spacing_kji)  # 6 mm, in the quiet half
    residual[lesion] -= 2.5  # the synthesized image is brighter there: a negative residual
    zmap = z_map(residual, geometry.spacing_mm, np.ones(shape, bool))
    point = operating_point(zmap, 1.0)
    regions = regions_of(residual, geometry, zmap, point.z_threshold)
    assert len(regions) <= 3  # the loud half does not flood the list
    best = regions[0]
    assert best.sign == "-" and best.peak_z < -point.z_threshold
    expected = geometry.lps_from_index([20, 40, 20])
    assert np.linalg.norm(np.asarray(best.centroid_lps_mm) - expected) < 5.0


def test_an_almost_exact_reproduction_flags_nothing():
    # A clean input reproduced to within 0.2 % of the range: no flood of "significant" specks.
    rng = np.random.default_rng(3)
    image = np.zeros((40, 60, 60), np.float32)
    image[5:35, 10:50, 10:50] = 100.0 + rng.normal(0, 1.0, (30, 40, 40))
    residual = np.zeros_like(image)
    residual[5:35, 10:50, 10:50] = 0.2 * np.sign(rng.normal(0, 1.0, (30, 40, 40)))
    zmap = residual_z_map(residual, image, (1, 1, 1))
    point = operating_point(zmap, 1.0)
    _, positive, negative = signed_components(zmap.z, point.z_threshold)
    assert positive + negative == 0


def test_analysis_mask_skips_background_and_nan():
    image = np.zeros((20, 30, 30), np.float32)
    image[5:15, 5:25, 5:25] = 100.0
    image[0, 0, 0] = np.nan
    mask = analysis_mask(image, (1, 1, 1))
    assert mask[10, 15, 15] and not mask[0, 0, 0] and not mask[19, 29, 29]


def test_random_field_threshold_meets_its_rate():
    resels = (5000.0, 800.0)
    t = random_field_threshold(resels, 1.0)
    assert expected_false_regions(t, resels) == pytest.approx(1.0, rel=1e-3)
    assert random_field_threshold(resels, 0.1) > t


def test_calibration_round_trip_and_threshold_choice(tmp_path):
    calibration = NullCalibration("test head", (3.0, 4.0, 5.0, 6.0), (10.0, 2.0, 0.5, 0.1))
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(calibration.to_dict()))
    loaded = NullCalibration.load(path)
    assert loaded == calibration
    assert loaded.threshold_for(1.0, 1.0) == 5.0  # 0.5 per litre x 1 L
    assert loaded.threshold_for(1.0, 5.0) == 6.0
    assert loaded.threshold_for(1.0, 100.0) == 6.0  # none meets it: the highest tabulated
    for bad in (
        {**calibration.to_dict(), "schema": "other"},
        {**calibration.to_dict(), "z_thresholds": [5.0, 4.0, 3.0, 6.0]},
        {**calibration.to_dict(), "false_regions_per_litre": [1.0, -1.0, 0.0, 0.0]},
        {**calibration.to_dict(), "false_regions_per_litre": [1.0]},
    ):
        with pytest.raises(ValueError):
            NullCalibration.from_dict(bad)


def test_operating_point_rises_to_the_plugin_calibration():
    rng = np.random.default_rng(4)
    shape = (30, 50, 50)
    zmap = z_map(rng.normal(0, 1.0, shape).astype(np.float32), (1, 1, 1), np.ones(shape, bool))
    plain = operating_point(zmap, 1.0)
    strict = NullCalibration("heavy-tailed plugin", (3.0, 9.0), (1e6, 0.0))
    raised = operating_point(zmap, 1.0, strict)
    assert raised.z_threshold == 9.0 > plain.z_threshold and "plugin calibration" in raised.source
    lenient = NullCalibration("quiet plugin", (3.0, 9.0), (0.0, 0.0))
    assert operating_point(zmap, 1.0, lenient).z_threshold == plain.z_threshold


def test_measured_calibration_counts_every_healthy_region():
    rng = np.random.default_rng(5)
    image = np.zeros((30, 50, 50), np.float32)
    image[2:28, 5:45, 5:45] = 100.0
    residual = rng.normal(0, 20.0, image.shape).astype(np.float32)
    calibration = measure_calibration([(residual, image)], (1, 1, 1), "noise", (2.0, 3.0, 8.0))
    rates = calibration.false_regions_per_litre
    assert rates[0] > rates[1] > 0 and rates[2] == 0.0


def test_a_heavy_tailed_healthy_residual_gets_a_threshold_above_12():
    """The pseudo-healthy plugin's healthy residual kept more than one region per volume above
    z 12, the old table's last row, so compare ran at the cap with false regions to spare: the
    tabulated z now reaches 30 and the chosen threshold clears every healthy spike."""
    rng = np.random.default_rng(6)
    image = np.zeros((40, 60, 60), np.float32)
    image[2:38, 4:56, 4:56] = 100.0
    residual = rng.normal(0, 1.0, image.shape).astype(np.float32)
    spike = np.zeros_like(residual)
    for k, (i, j) in enumerate(((10, 15), (20, 40), (30, 25), (15, 45))):
        spike[i + k, j, j // 2 + 10] = 1.0
    from scipy import ndimage

    spike = ndimage.gaussian_filter(spike, 1.5)
    residual += spike * (20.0 / spike.max())  # peaks near z 14.5
    calibration = measure_calibration([(residual, image)], (1, 1, 1), "spiky", with_structure=False)
    assert calibration.z_thresholds[-1] == 30.0 and 12.0 in calibration.z_thresholds
    litres = float(image.astype(bool).sum()) / 1e6
    rate_at_12 = calibration.false_regions_per_litre[calibration.z_thresholds.index(12.0)]
    assert rate_at_12 * litres > 1.0  # the old table (3 .. 12) had no row meeting 1 per volume
    chosen = calibration.threshold_for(1.0, litres)
    assert 12.0 < chosen < 30.0
    zmap = residual_z_map(residual, image, (1, 1, 1), calibration)
    _, positive, negative = signed_components(zmap.z, chosen)
    assert positive + negative <= 1


def _tissue_phantom(rng, shape=(40, 60, 60)):
    """A head-like phantom: dark background, bright tissue with a small dark class, noise."""
    image = np.zeros(shape, np.float32)
    image[4:36, 6:54, 6:54] = 900.0
    image[4:36, 6:54, 6:14] = 300.0
    return image + rng.normal(0, 10.0, shape).astype(np.float32)


def test_the_tissue_offset_removal_is_the_plugins_declared_model_not_a_default():
    # A magnitude-image denoiser's residual: the whole dark class shifted a little (the Rician
    # floor it removes) plus noise. Read with its declared model the shift is not a lesion; with
    # the plain model (no calibration: any other plugin) it is a change and is flagged.
    from app.analysis.detection import MAGNITUDE_DENOISER_MODEL, PLAIN_MODEL

    rng = np.random.default_rng(5)
    image = _tissue_phantom(rng)
    residual = rng.normal(0, 2.0, image.shape).astype(np.float32)
    residual[4:36, 6:54, 6:14] += 60.0  # 7 % of the range over the whole dark class
    inside = (slice(10, 30), slice(15, 45), slice(9, 11))  # deep in the dark class
    z_inside = {}
    for name, model in (("plain", PLAIN_MODEL), ("denoiser", MAGNITUDE_DENOISER_MODEL)):
        calibration = NullCalibration("test", (3.0, 12.0), (0.0, 0.0), model=model)
        zmap = residual_z_map(residual, image, (1, 1, 1), calibration)
        z_inside[name] = (float(np.median(zmap.z[inside])), operating_point(zmap, 1.0).z_threshold)
    assert z_inside["plain"][0] > z_inside["plain"][1]  # flagged: the whole class reads as change
    assert abs(z_inside["denoiser"][0]) < 1.0  # the declared systematic part, removed
    assert residual_z_map(residual, image, (1, 1, 1)).mask.sum() == analysis_mask(image, (1, 1, 1)).sum()


def test_the_noise_floor_mask_applies_only_when_declared():
    from app.analysis.detection import tested_mask

    rng = np.random.default_rng(6)
    image = rng.uniform(100, 900, (20, 30, 30)).astype(np.float32)  # no tissue above 4 noise SDs
    assert tested_mask(image, (1, 1, 1), None).all()
    assert not tested_mask(image, (1, 1, 1), 4.0).any()


def test_calibration_stores_its_residual_model_and_reads_old_files_as_measured(tmp_path):
    from app.analysis.detection import LEGACY_MODEL, SLAB_CONSISTENCY_MODEL, ResidualModel

    calibration = NullCalibration("sr", (3.0, 6.0), (2.0, 0.1), model=SLAB_CONSISTENCY_MODEL)
    assert NullCalibration.from_dict(json.loads(json.dumps(calibration.to_dict()))) == calibration
    old = calibration.to_dict()
    del old["model"]  # written before the model was declared: measured with offset removal and floor
    assert NullCalibration.from_dict(old).model == LEGACY_MODEL
    assert LEGACY_MODEL.tissue_offset and LEGACY_MODEL.noise_floor_snr == 4.0
    with pytest.raises(ValueError):
        NullCalibration.from_dict({**calibration.to_dict(), "model": {"residual": "guess"}})
    with pytest.raises(ValueError):
        ResidualModel(noise_floor_snr=-1.0)


def _smooth_head(shape=(60, 48, 48), seed=7):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    image = ndimage.gaussian_filter(rng.normal(0, 1, shape), 2.0).astype(np.float32)
    return (500.0 + 2000.0 * image).astype(np.float32)


@pytest.mark.parametrize(("axis", "thickness", "phase"), [(0, 5, 0), (0, 5, 3), (1, 3, 1), (2, 4, 2), (0, 8, 5)])
def test_slab_structure_finds_the_thick_slices_an_input_was_interpolated_from(axis, thickness, phase):
    from app.analysis.detection import SlabStructure, slab_average, slab_structure

    truth = _smooth_head()
    thick = slab_average(truth, axis, thickness, phase)
    assert slab_structure(thick) == SlabStructure(axis, thickness, phase % thickness)
    assert slab_structure(truth) is None  # a sharp volume has no slabs


def test_slab_consistency_residual_is_zero_for_the_truth_and_shows_a_planted_lesion():
    from app.analysis.detection import slab_average, slab_consistency_residual, slab_structure

    truth = _smooth_head()
    thick = slab_average(truth, 0, 5, 0)
    slabs = slab_structure(thick)
    # Any restoration whose slabs average to the acquired ones is consistent: the truth itself,
    # with all the through-plane detail the plain residual (thick - truth) reads as change.
    assert float(np.abs(slab_consistency_residual(thick, truth, slabs)).max()) < 1e-3
    assert float(np.abs(thick - truth).max()) > 100.0
    lesion = ball(truth.shape, (30, 24, 24), 3.0)
    residual = slab_consistency_residual(thick, truth + 200.0 * lesion, slabs)
    assert float(residual[30, 24, 24]) < -100.0 and float(np.abs(residual[~ball(truth.shape, (30, 24, 24), 8.0)]).max()) < 1e-3


@pytest.mark.parametrize("scale", [0.25, 4.0, 16.0])
def test_the_z_map_with_a_structural_null_does_not_depend_on_the_intensity_scale(scale):
    """The same head stored as 0-255 NIfTI or 0-1020 DICOM (the demo study) must give the same z:
    with the structural SDs in the calibration head's units, 4x the intensities more than doubled
    the pseudo-healthy plugin's z values on the demo head (16 false regions instead of 0)."""
    rng = np.random.default_rng(7)
    image = _tissue_phantom(rng)
    healthy = rng.normal(0, 3.0, image.shape).astype(np.float32)
    healthy[10:30, 10:20, 6:14] += 25.0  # a systematic change on the dark class (the structure)
    calibration = measure_calibration([(healthy, image)], (1, 1, 1), "phantom")
    assert any(v > 0 for row in calibration.structure.sd for v in row)
    residual = rng.normal(0, 3.0, image.shape).astype(np.float32)
    residual[15:25, 30:40, 30:40] += 12.0
    plain = residual_z_map(residual, image, (1, 1, 1), calibration)
    scaled = residual_z_map(residual * scale, image * scale, (1, 1, 1), calibration)
    np.testing.assert_allclose(scaled.z, plain.z, atol=1e-3 * float(np.abs(plain.z).max()))


def test_a_schema_1_calibration_is_refused_with_a_reason():
    calibration = NullCalibration("old", (3.0, 12.0), (1.0, 0.0))
    data = {**calibration.to_dict(), "schema": "synthview-null-calibration/1"}
    with pytest.raises(ValueError, match="calibrate_null again"):
        NullCalibration.from_dict(data)

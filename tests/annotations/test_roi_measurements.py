"""Line profile, noise SD, CNR / contrast-to-background and NPS against hand calculations."""

from __future__ import annotations

import numpy as np
import pytest

from app.annotations.line_profile import compare_line_profile, line_profile, profile_distances_mm
from app.annotations.nps import nps_2d, nps_of_patches
from app.annotations.roi_contrast import cnr, contrast_measures, noise_sd
from app.annotations.shapes import EllipseRoi, RectangleRoi
from app.core.volume import Geometry, Volume


def world_ramp(geometry: Geometry, shape_kji) -> Volume:
    """Voxel value = 2 x + 3 y - 0.5 z (world LPS mm): linear, so trilinear sampling is exact."""
    k, j, i = np.indices(shape_kji)
    lps = geometry.lps_from_index(np.column_stack([i.ravel(), j.ravel(), k.ravel()]))
    values = lps @ np.array([2.0, 3.0, -0.5])
    return Volume(values.reshape(shape_kji).astype(np.float32), geometry, modality="CT")


def ramp_at(points):
    return np.asarray(points) @ np.array([2.0, 3.0, -0.5])


def test_profile_distances_end_on_the_end_point():
    assert profile_distances_mm(1.0, 0.3) == pytest.approx([0.0, 0.3, 0.6, 0.9, 1.0])
    assert profile_distances_mm(0.9, 0.3) == pytest.approx([0.0, 0.3, 0.6, 0.9])
    with pytest.raises(ValueError, match="positive"):
        profile_distances_mm(1.0, 0.0)


def test_line_profile_of_a_linear_ramp_equals_the_ramp():
    geometry = Geometry.identity((0.5, 0.8, 2.0), origin_lps_mm=(-5.0, 3.0, 10.0))
    volume = world_ramp(geometry, (8, 20, 30))
    start, end = np.array([-3.0, 5.0, 12.0]), np.array([6.0, 15.0, 20.0])
    profile = line_profile(volume, start, end, step_mm=0.25)
    length = np.linalg.norm(end - start)
    assert profile.distance_mm[0] == 0.0 and profile.distance_mm[-1] == pytest.approx(length)
    points = start + profile.distance_mm[:, None] * (end - start) / length
    assert profile.values == pytest.approx(ramp_at(points), abs=1e-3)
    assert profile.units == "HU"


def test_profile_is_mirrored_on_a_different_grid_and_nan_outside():
    original = world_ramp(Geometry.identity((0.5, 0.8, 2.0)), (8, 20, 30))
    angle = 0.3
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1.0]])
    other = world_ramp(Geometry(np.array([-4.0, -2.0, -1.0]), np.array([0.7, 0.7, 1.5]), rotation), (12, 30, 30))
    difference = original.with_voxels(np.zeros_like(original.voxels))
    profiles = compare_line_profile(
        {"original": original, "synthesized": other, "difference": difference}, [2.0, 3.0, 4.0], [10.0, 9.0, 8.0]
    )
    assert list(profiles) == ["original", "synthesized", "difference"]
    distances = profiles["original"].distance_mm
    assert np.diff(distances)[0] == pytest.approx(0.25)  # half the finest spacing (0.5 mm)
    for profile in profiles.values():
        assert np.array_equal(profile.distance_mm, distances)  # one shared axis
    assert profiles["synthesized"].values == pytest.approx(profiles["original"].values, abs=1e-3)
    assert np.all(profiles["difference"].values == 0.0)
    outside = line_profile(original, [2.0, 3.0, 4.0], [2.0, 3.0, 400.0], step_mm=1.0)
    assert np.isfinite(outside.values[0]) and np.isnan(outside.values[-1])
    assert outside.to_dict()["values"][-1] is None  # JSON has no NaN


def noise_volume(sigma=5.0, mean=100.0, shape=(3, 64, 64), seed=1) -> Volume:
    rng = np.random.default_rng(seed)
    voxels = (mean + rng.normal(0.0, sigma, shape)).astype(np.float32)
    return Volume(voxels, Geometry.identity((0.5, 0.5, 2.0)), modality="CT")


def test_noise_sd_of_constant_plus_known_noise():
    volume = noise_volume(sigma=5.0)
    centre = volume.geometry.lps_from_index([31.5, 31.5, 1])  # a 40 x 40 voxel box, i, j 12..51
    roi = RectangleRoi(center_lps=centre, half_width_mm=10.0, half_height_mm=10.0)
    measured = noise_sd(volume, roi)
    box = volume.voxels[1, 12:52, 12:52].astype(np.float64)
    assert measured.voxel_count == box.size == 1600
    assert measured.sd == pytest.approx(box.std(ddof=1), rel=1e-6)
    assert measured.sd == pytest.approx(5.0, rel=0.05)
    assert measured.mean == pytest.approx(100.0, abs=0.5)


def test_cnr_and_contrast_to_background_by_hand():
    voxels = np.zeros((1, 4, 8), dtype=np.float32)
    voxels[0, 0:2, 0:2] = [[10, 12], [14, 16]]  # background: mean 13, SD sqrt(20/3) = 2.5820
    voxels[0, 0:2, 4:6] = 40  # signal: mean 40
    volume = Volume(voxels, Geometry.identity((1.0, 1.0, 1.0)), modality="CT")
    background = RectangleRoi(center_lps=[0.5, 0.5, 0.0], half_width_mm=1.0, half_height_mm=1.0)
    signal = RectangleRoi(center_lps=[4.5, 0.5, 0.0], half_width_mm=1.0, half_height_mm=1.0)
    result = cnr(volume, signal, background)
    assert (result.signal_voxels, result.background_voxels) == (4, 4)
    assert result.mean_background == pytest.approx(13.0)
    assert result.sd_background == pytest.approx(2.5819889, rel=1e-6)
    assert result.cnr == pytest.approx(27.0 / 2.5819889, rel=1e-6)  # 10.4571
    assert result.contrast_to_background == pytest.approx(27.0 / 13.0)  # 2.0769
    reverse = cnr(volume, background, signal)  # background flat: CNR undefined, written as null
    assert np.isnan(reverse.cnr) and reverse.to_dict()["cnr"] is None
    assert contrast_measures(5.0, 0.0, 1.0)[1] != contrast_measures(5.0, 0.0, 1.0)[1]  # NaN on a 0 mean


def white_noise_volume(sigma=10.0, spacing=(0.5, 0.7, 1.0), shape=(16, 96, 64), seed=7) -> Volume:
    rng = np.random.default_rng(seed)
    voxels = (40.0 + rng.normal(0.0, sigma, shape)).astype(np.float64)
    return Volume(voxels, Geometry.identity(spacing), modality="CT")


def full_slice_roi(volume: Volume, k: int) -> RectangleRoi:
    ni, nj, _ = volume.size_ijk
    dx, dy, _ = volume.geometry.spacing_mm
    centre = volume.geometry.lps_from_index([(ni - 1) / 2, (nj - 1) / 2, k])
    return RectangleRoi(center_lps=centre, half_width_mm=ni * dx / 2 - 1e-6, half_height_mm=nj * dy / 2 - 1e-6)


def test_nps_of_white_noise_integrates_to_the_variance_and_is_flat():
    sigma, dx, dy = 10.0, 0.5, 0.7
    volume = white_noise_volume(sigma, (dx, dy, 1.0))
    spectrum = nps_2d(volume, full_slice_roi(volume, 8), slices=16)
    assert spectrum.patch_shape == (96, 64) and spectrum.patches == 16
    assert spectrum.pixel_spacing_mm == (dx, dy)
    assert spectrum.integral == pytest.approx(spectrum.variance, rel=1e-9)  # Parseval, exactly
    assert spectrum.integral == pytest.approx(sigma**2, rel=0.03)
    assert spectrum.frequency_x_per_mm.max() == pytest.approx(1.0 / (2 * dx) - 1.0 / (64 * dx))
    assert spectrum.radial_frequency_per_mm[-1] <= 1.0 / (2 * dy) + 1e-9  # up to the lower Nyquist
    flat = sigma**2 * dx * dy  # white noise: NPS = sigma^2 dx dy at every frequency
    assert spectrum.radial_nps[2:] == pytest.approx(np.full(spectrum.radial_nps[2:].size, flat), rel=0.15)
    assert spectrum.to_dict()["units"] == "HU^2 mm^2"


def test_nps_keeps_x_and_y_apart():
    """Noise smoothed along x (i) only loses power at high fx, not at high fy."""
    volume = white_noise_volume()
    smoothed = 0.5 * (volume.voxels + np.roll(volume.voxels, 1, axis=2))
    spectrum = nps_2d(volume.with_voxels(smoothed), full_slice_roi(volume, 8), slices=16)
    centre_y, centre_x = np.array(spectrum.nps_2d.shape) // 2
    high_fx = spectrum.nps_2d[centre_y - 3 : centre_y + 4, 0].mean()  # fx = -Nyquist
    high_fy = spectrum.nps_2d[0, centre_x - 3 : centre_x + 4].mean()  # fy = -Nyquist
    assert high_fx < 0.05 * high_fy
    assert spectrum.peak_frequency_per_mm < spectrum.radial_frequency_per_mm[-1] / 2


def test_poly2_detrend_removes_shading_that_mean_detrend_counts_as_noise():
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:64, 0:64] / 64.0
    patches = 200.0 * (x - 0.5) ** 2 + 50.0 * x * y + rng.normal(0.0, 2.0, (8, 64, 64))
    assert nps_of_patches(patches, 0.5, 0.5, "poly2").variance == pytest.approx(4.0, rel=0.05)
    assert nps_of_patches(patches, 0.5, 0.5, "mean").variance > 40.0
    with pytest.raises(ValueError, match="unknown detrend"):
        nps_of_patches(patches, 0.5, 0.5, "linear")


def test_nps_refuses_small_oblique_or_outside_rois_with_a_message():
    volume = white_noise_volume(shape=(4, 32, 32))
    centre = volume.geometry.lps_from_index([16, 16, 2])
    with pytest.raises(ValueError, match="at least 8 x 8"):
        nps_2d(volume, RectangleRoi(center_lps=centre, half_width_mm=1.0, half_height_mm=1.0))
    tilted = RectangleRoi(center_lps=centre, half_width_mm=5.0, half_height_mm=5.0, axis_v_lps=[0, 0.8, 0.6])
    with pytest.raises(ValueError, match="oblique"):
        nps_2d(volume, tilted)
    away = RectangleRoi(center_lps=[500.0, 0.0, 0.0], half_width_mm=5.0, half_height_mm=5.0)
    with pytest.raises(ValueError, match="no voxel"):
        nps_2d(volume, away)


def test_nps_of_an_ellipse_uses_a_rectangle_it_fully_covers():
    volume = white_noise_volume(shape=(4, 64, 64), spacing=(1.0, 1.0, 1.0))
    centre = volume.geometry.lps_from_index([32, 32, 2])
    ellipse = EllipseRoi(center_lps=centre, half_width_mm=20.0, half_height_mm=12.0)
    spectrum = nps_2d(volume, ellipse)
    ny, nx = spectrum.patch_shape
    assert 8 <= ny <= 24 and nx >= ny  # inside the 40 x 24 ellipse, wider than tall
    corners_u = np.array([-1, 1, 1, -1]) * (nx - 1) / 2
    corners_v = np.array([-1, -1, 1, 1]) * (ny - 1) / 2
    assert np.all(ellipse.contains_uv(corners_u, corners_v))


def test_measurements_block_mirrors_every_measure_on_every_volume():
    from app.annotations.document import AnnotationDocument
    from app.annotations.measurements import measurements_block
    from app.annotations.shapes import Ruler

    original = noise_volume(sigma=5.0, shape=(3, 64, 64))
    synthesized = original.with_voxels(original.voxels * 0.5 + 50.0)  # half the noise, same mean
    difference = original.with_voxels(synthesized.voxels - original.voxels)
    document = AnnotationDocument()
    document.insert(Ruler(label="line", start_lps=[1.0, 1.0, 2.0], end_lps=[20.0, 1.0, 2.0]))
    centre = original.geometry.lps_from_index([31.5, 31.5, 1])
    document.insert(RectangleRoi(label="liver", center_lps=centre, half_width_mm=5.0, half_height_mm=5.0))
    document.insert(RectangleRoi(label="Background fat", center_lps=centre + [8, 8, 0], half_width_mm=4.0, half_height_mm=4.0))
    document.insert(RectangleRoi(label="", center_lps=[2000.0, 0, 0], half_width_mm=4.0, half_height_mm=4.0))
    document.insert(Ruler(label="hostile", start_lps=[0, 0, 0], end_lps=[1e12, 0, 0]))
    block = measurements_block(document, {"original": original, "synthesized": synthesized, "difference": difference})
    assert list(block["volumes"]) == ["original", "synthesized", "difference"]
    sd = {name: panel["noise"][0]["sd"] for name, panel in block["volumes"].items()}
    assert sd["synthesized"] == pytest.approx(sd["original"] / 2, rel=1e-5)
    assert block["volumes"]["original"]["noise"][2]["sd"] is None  # an ROI off the volume: null, no crash
    profiles = [panel["line_profiles"][0] for panel in block["volumes"].values()]
    assert profiles[0]["distance_mm"] == profiles[1]["distance_mm"] == profiles[2]["distance_mm"]
    assert "more than" in block["volumes"]["original"]["line_profiles"][1]["not_measured"]
    contrast = block["volumes"]["original"]["contrast"]  # liver and the off-volume ROI vs the background
    assert [(c["signal_label"], c["background_label"]) for c in contrast] == [("liver", "Background fat"), ("", "Background fat")]
    assert contrast[0]["cnr"] == pytest.approx(
        abs(contrast[0]["mean_signal"] - contrast[0]["mean_background"]) / contrast[0]["sd_background"]
    )
    nps = block["volumes"]["original"]["nps"]
    assert nps[0]["patch_shape"] == [20, 20] and nps[0]["integral"] == pytest.approx(nps[0]["variance"])
    assert "no voxel" in nps[2]["not_measured"]
    import json

    json.dumps(block, allow_nan=False)  # valid JSON: no NaN or infinity anywhere

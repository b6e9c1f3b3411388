"""ROI measurements on degenerate regions: one voxel (no sample SD: it read 0, a noiseless
region), partly or wholly outside the volume (measured on the voxels inside, and said so)."""

from __future__ import annotations

import numpy as np
import pytest

from app.annotations.roi_contrast import cnr, noise_sd
from app.annotations.roi_stats import region_extends_outside
from app.annotations.shapes import RectangleRoi
from app.core.volume import Geometry, Volume

VOLUME = Volume(
    np.random.default_rng(0).normal(100, 10, (4, 20, 20)).astype(np.float32), Geometry.identity(), "MR"
)


def rectangle(x, y, half, label="roi") -> RectangleRoi:
    return RectangleRoi(label=label, center_lps=np.array([x, y, 1.0]), half_width_mm=half, half_height_mm=half)


def test_a_one_voxel_roi_has_no_noise_sd_and_no_cnr_against_it():
    one = rectangle(5, 5, 0.4)
    noise = noise_sd(VOLUME, one)
    assert noise.voxel_count == 1 and noise.mean == pytest.approx(float(VOLUME.voxels[1, 5, 5]))
    assert np.isnan(noise.sd) and noise.to_dict()["sd"] is None and "no sample SD" in noise.note
    contrast = cnr(VOLUME, rectangle(10, 10, 3), one).to_dict()
    assert contrast["sd_background"] is None and contrast["cnr"] is None
    assert "background: one voxel: no sample SD" in contrast["note"]
    assert contrast["contrast_to_background"] is not None  # needs no SD


def test_a_roi_partly_outside_is_measured_on_the_voxels_inside_and_says_so():
    part = rectangle(19, 10, 5)  # i 14..24 drawn, the volume ends at 19
    noise = noise_sd(VOLUME, part)
    inside = VOLUME.voxels[1, 5:16, 14:20]
    assert noise.voxel_count == inside.size
    assert noise.sd == pytest.approx(float(np.std(inside, ddof=1)), rel=1e-6)
    assert "reaches beyond the volume" in noise.note and str(inside.size) in noise.note
    assert not region_extends_outside(rectangle(10, 10, 5), VOLUME.geometry, VOLUME.shape_kji)
    assert noise_sd(VOLUME, rectangle(10, 10, 5)).note == ""


def test_a_roi_wholly_outside_gives_nulls_and_a_note():
    noise = noise_sd(VOLUME, rectangle(100, 10, 5))
    assert noise.voxel_count == 0 and noise.to_dict()["mean"] is None
    assert noise.note == "the ROI covers no voxel of this volume"


def test_a_flat_background_says_why_cnr_is_undefined():
    flat = VOLUME.with_voxels(np.zeros(VOLUME.shape_kji, np.float32))
    contrast = cnr(flat, rectangle(5, 5, 2), rectangle(12, 12, 2, label="background"))
    assert contrast.to_dict()["cnr"] is None and "background SD is 0" in contrast.note
    assert "background mean is 0" in contrast.note

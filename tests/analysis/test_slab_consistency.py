"""compare of a super-resolution output through its declared slab-consistency residual: the
output averaged back over the input's thick slices against the input (thick slices as acquired
or interpolated onto the fine grid), so the detail the plugin is meant to add is no change and a
hallucinated lesion is one."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from app.analysis.compare_run import run_compare
from app.analysis.detection import PLAIN_MODEL, SLAB_CONSISTENCY_MODEL, NullCalibration, slab_average
from app.analysis.residual_regions import REGION_RESIDUAL
from app.core.volume import Geometry, Volume

SHAPE = (60, 56, 56)
LESION_KJI = (32, 28, 24)


def _truth() -> np.ndarray:
    """A smooth textured head (1 mm): anatomy with through-plane detail thick slices lose."""
    rng = np.random.default_rng(11)
    texture = ndimage.gaussian_filter(rng.normal(0, 1, SHAPE), 2.0)
    return (600.0 + 4000.0 * texture).astype(np.float32)


def _lesion(shape=SHAPE) -> np.ndarray:
    k, j, i = np.indices(shape)
    distance2 = sum((a - c) ** 2 for a, c in zip((k, j, i), LESION_KJI, strict=True))
    return ndimage.gaussian_filter((distance2 <= 4.0**2).astype(np.float32), 0.7)  # 8 mm


def _calibration(model) -> NullCalibration:
    # Lenient (random-field theory decides): the test is about the residual, not the rate.
    return NullCalibration("test SR", (3.0, 12.0), (0.0, 0.0), model=model)


def _residual_regions(result):
    return [r for r in result.regions if r.kind == REGION_RESIDUAL]


def _near_lesion(region, spacing_kji=(1.0, 1.0, 1.0)) -> bool:
    offset = (np.asarray(region.centroid_ijk)[::-1] - np.asarray(LESION_KJI)) * np.asarray(spacing_kji)
    return float(np.linalg.norm(offset)) <= 5.0


def test_a_faithful_restoration_is_no_change_and_a_planted_lesion_is_the_one_region():
    truth = _truth()
    thick = slab_average(truth, 0, 5, 0)  # 5 mm axial slices interpolated to 1 mm
    grid = Geometry.identity()
    original = Volume(thick, grid, "MR", name="thick")
    restored = Volume(truth, grid, "MR", name="restored")
    plain = run_compare(original, restored, calibration=_calibration(PLAIN_MODEL))
    assert len(_residual_regions(plain)) >= 3  # the restored detail reads as change
    faithful = run_compare(original, restored, calibration=_calibration(SLAB_CONSISTENCY_MODEL))
    assert "averaged over the input's 5-voxel slices along array axis k" in faithful.residual_source
    assert _residual_regions(faithful) == []
    scale = float(np.percentile(truth, 99.5) - np.percentile(truth, 0.5))
    hallucinated = Volume(truth + 0.15 * scale * _lesion(), grid, "MR", name="restored+lesion")
    result = run_compare(original, hallucinated, calibration=_calibration(SLAB_CONSISTENCY_MODEL))
    regions = _residual_regions(result)
    assert len(regions) == 1 and _near_lesion(regions[0]) and regions[0].sign == "-"


def test_thick_slices_as_acquired_are_read_on_their_own_grid():
    truth = _truth()
    slabs = truth.reshape(12, 5, *SHAPE[1:]).mean(axis=1)  # 12 slices of 5 mm, centres at 2, 7, ...
    acquired = Volume(slabs, Geometry.identity((1.0, 1.0, 5.0), (0.0, 0.0, 2.0)), "MR", name="5 mm")
    fine = Geometry.identity()
    faithful = run_compare(acquired, Volume(truth, fine, "MR"), calibration=_calibration(SLAB_CONSISTENCY_MODEL))
    assert "averaged over the original's 5 mm slices" in faithful.residual_source
    assert _residual_regions(faithful) == []
    scale = float(np.percentile(truth, 99.5) - np.percentile(truth, 0.5))
    hallucinated = Volume(truth - 0.2 * scale * _lesion(), fine, "MR")
    regions = _residual_regions(
        run_compare(acquired, hallucinated, calibration=_calibration(SLAB_CONSISTENCY_MODEL))
    )
    assert len(regions) == 1 and regions[0].sign == "+"
    centroid_lps = np.asarray(regions[0].centroid_lps_mm)
    assert np.linalg.norm(centroid_lps - np.array(LESION_KJI[::-1], float)) <= 5.0


def test_an_input_without_thick_slices_falls_back_to_the_plain_residual_and_says_so():
    truth = _truth()
    grid = Geometry.identity()
    result = run_compare(
        Volume(truth, grid, "MR"), Volume(truth + 1.0, grid, "MR"), calibration=_calibration(SLAB_CONSISTENCY_MODEL)
    )
    assert result.residual_source == "original - synthesized"
    assert any("shows no thick slices" in note for note in result.notes)
    assert result.operating is not None and "random-field" in result.operating.source

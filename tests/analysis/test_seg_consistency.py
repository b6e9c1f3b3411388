"""Segmentation consistency against hand calculations: Dice, volume change, HD95, regions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from app.analysis.seg_consistency import (
    RegionFilter,
    boundary_jitter,
    compare_label_maps,
    hausdorff_mm,
    labels_on_grid,
)
from app.core.volume import Geometry, Volume

# Anisotropic on purpose: i 0.5 mm, j 1 mm, k 2 mm; i and j run towards R and A, so a centroid
# in LPS is not the index times the spacing.
SPACING_IJK = (0.5, 1.0, 2.0)
GEOMETRY = Geometry(np.array([-20.0, 10.0, 5.0]), np.array(SPACING_IJK), np.diag([-1.0, -1.0, 1.0]))
SHAPE = (16, 20, 30)  # k, j, i
NAMES = {0: "background", 1: "grey matter", 2: "white matter"}


def box(k=(4, 10), j=(5, 15), i=(5, 15), label=1, shape=SHAPE) -> np.ndarray:
    labels = np.zeros(shape, dtype=np.int16)
    labels[k[0] : k[1], j[0] : j[1], i[0] : i[1]] = label
    return labels


def test_identical_maps_agree_fully_with_no_regions():
    labels = box() + box(k=(11, 14), label=2)
    result = compare_label_maps(labels, labels.copy(), GEOMETRY, NAMES)
    assert [(a.name, a.dice, a.hd95_mm, a.volume_change_ml) for a in result.labels] == [
        ("grey matter", 1.0, 0.0, 0.0),
        ("white matter", 1.0, 0.0, 0.0),
    ]
    assert result.regions == [] and result.disagreement_voxels == 0


def test_a_box_shifted_along_i_gives_the_hand_calculated_dice_and_hausdorff():
    original = box(i=(5, 15))
    shifted = box(i=(7, 17))  # 2 voxels = 1.0 mm along i
    agreement = compare_label_maps(original, shifted, GEOMETRY, NAMES).labels[0]
    # 6 x 10 x 10 boxes overlapping in 6 x 10 x 8: Dice = 2 * 480 / (600 + 600) = 0.8
    assert agreement.dice == pytest.approx(0.8)
    assert agreement.hausdorff_mm == pytest.approx(1.0)
    assert agreement.volume_change_ml == pytest.approx(0.0)


@pytest.mark.parametrize("shift", [1, 3])
def test_a_shifted_plate_has_hd95_equal_to_the_shift_in_mm(shift):
    # A plate one voxel thick along k: every surface voxel is exactly `shift` slices from the other.
    original = box(k=(5, 6), j=(2, 18), i=(2, 28))
    moved = box(k=(5 + shift, 6 + shift), j=(2, 18), i=(2, 28))
    agreement = compare_label_maps(original, moved, GEOMETRY).labels[0]
    assert agreement.hd95_mm == pytest.approx(shift * SPACING_IJK[2])
    assert agreement.dice == 0.0


def _surface_points_mm(mask: np.ndarray) -> np.ndarray:
    """Surface voxels (a 6-neighbour outside the mask) as mm coordinates, by explicit neighbours."""
    padded = np.pad(mask, 1)
    inner = padded[1:-1, 1:-1, 1:-1]
    all_inside = np.ones_like(mask)
    for axis in range(3):
        for step in (-1, 1):
            all_inside &= np.roll(padded, step, axis=axis)[1:-1, 1:-1, 1:-1]
    return np.argwhere(inner & ~all_inside) * np.array(SPACING_IJK[::-1])


def test_hd95_equals_a_brute_force_percentile_of_pooled_surface_distances():
    rng = np.random.default_rng(4)
    a = np.zeros(SHAPE, dtype=bool)
    b = np.zeros(SHAPE, dtype=bool)
    a[3:12, 4:15, 6:20] = True
    b[5:13, 6:17, 4:25] = True
    a &= rng.random(SHAPE) > 0.1  # ragged, so the percentile is not a trivial value
    b &= rng.random(SHAPE) > 0.1
    pa, pb = _surface_points_mm(a), _surface_points_mm(b)
    distances = cdist(pa, pb)
    pooled = np.concatenate([distances.min(axis=1), distances.min(axis=0)])
    assert hausdorff_mm(a, b, np.array(SPACING_IJK[::-1])) == pytest.approx(np.percentile(pooled, 95))
    assert hausdorff_mm(a, b, np.array(SPACING_IJK[::-1]), 100) == pytest.approx(pooled.max())


def test_volume_change_in_ml_and_percent():
    original = box(k=(4, 10), j=(5, 15), i=(5, 15))  # 600 voxels x 1 mm^3 = 0.6 mL
    grown = box(k=(4, 10), j=(5, 15), i=(5, 17))  # 720 voxels: +0.12 mL, +20 %
    agreement = compare_label_maps(original, grown, GEOMETRY).labels[0]
    assert agreement.volume_original_ml == pytest.approx(0.6)
    assert agreement.volume_change_ml == pytest.approx(0.12)
    assert agreement.volume_change_percent == pytest.approx(20.0)


def test_a_removed_structure_is_a_disagreement_region_at_its_place():
    original = box(label=1) + box(k=(11, 14), j=(6, 9), i=(20, 26), label=2)
    removed = box(label=1)  # the white-matter block (3 x 3 x 6 voxels) is gone
    removed[5, 6, 6] = 2  # and one voxel elsewhere changed: a second, smaller region
    result = compare_label_maps(original, removed, GEOMETRY, NAMES)
    assert len(result.regions) == 2
    largest = result.regions[0]
    assert largest.voxel_count == 54 and largest.volume_ml == pytest.approx(54 * 1e-3)
    centre_ijk = np.array([22.5, 7.0, 12.0])
    np.testing.assert_allclose(largest.centroid_lps_mm, GEOMETRY.lps_from_index(centre_ijk))
    np.testing.assert_allclose(largest.centroid_lps_mm, [-20 - 22.5 * 0.5, 10 - 7.0, 5 + 12.0 * 2])
    assert [c.description for c in largest.changes] == ["white matter -> background"]
    assert largest.labels_involved == [0, 2]
    assert [c.description for c in result.regions[1].changes] == ["grey matter -> white matter"]
    white = next(a for a in result.labels if a.name == "white matter")
    assert white.dice == pytest.approx(0.0) and white.hd95_mm is not None
    assert result.region_map[12, 7, 22] == largest.index and result.region_map[0, 0, 0] == 0
    data = result.to_dict()
    assert data["regions"][0]["changes"][0]["original"] == 2
    assert data["disagreement_voxels"] == 55


def test_a_label_missing_from_one_map_has_no_distance_and_a_note():
    original = box(label=1) + box(k=(11, 14), label=2)
    result = compare_label_maps(original, box(label=1), GEOMETRY, NAMES)
    white = next(a for a in result.labels if a.name == "white matter")
    assert white.dice == 0.0 and white.hd95_mm is None and white.volume_change_percent == -100.0
    assert "white matter: missing from one map" in result.notes


def test_min_volume_drops_small_regions_from_the_list_and_the_map():
    original = box(label=1)
    changed = original.copy()
    changed[5, 6, 6] = 0  # one voxel: 1 mm^3 (0.5 x 1 x 2 mm)
    changed[6:8, 10:12, 10:12] = 0  # 8 voxels: 8 mm^3
    result = compare_label_maps(original, changed, GEOMETRY, region_filter=RegionFilter(min_region_mm3=8.0))
    assert [r.voxel_count for r in result.regions] == [8] and result.unlisted_regions == 1
    assert result.region_map[5, 6, 6] == 0 and result.region_map[6, 10, 10] == result.regions[0].index
    result = compare_label_maps(original, changed, GEOMETRY, region_filter=RegionFilter(min_region_mm3=8.5))
    assert result.regions == [] and not result.region_map.any() and result.unlisted_regions == 2
    assert result.disagreement_voxels == 9  # still counted in the totals
    assert result.to_dict()["region_filter"]["description"].startswith("regions of at least 8.5 mm^3 listed")


JITTER = RegionFilter(min_region_mm3=0.0, ignore_boundary_jitter=True)
NEAR_ISOTROPIC = Geometry(GEOMETRY.origin_lps_mm, np.array([0.5, 1.0, 1.0]), GEOMETRY.direction)


def test_a_boundary_moved_by_one_voxel_is_jitter_and_not_a_region():
    # k at 1 mm: at most twice the finest spacing, so a one-voxel move along k is jitter
    original = box(k=(4, 14), label=1)
    original[9:14] = np.where(original[9:14] == 1, 2, 0)  # white matter above grey matter
    moved = original.copy()
    moved[8][original[8] == 1] = 2  # the grey/white boundary one voxel lower
    moved[13, 5:15, 5] = 0  # and one voxel of white matter's edge lost along a line
    assert len(compare_label_maps(original, moved, NEAR_ISOTROPIC, NAMES).regions) == 2
    result = compare_label_maps(original, moved, NEAR_ISOTROPIC, NAMES, JITTER)
    assert result.regions == [] and result.boundary_jitter_voxels == result.disagreement_voxels == 100 + 10
    assert next(a for a in result.labels if a.name == "grey matter").dice < 1  # figures count every voxel
    moved[6:8][original[6:8] == 1] = 2  # three voxels lower: a real change
    result = compare_label_maps(original, moved, NEAR_ISOTROPIC, NAMES, JITTER)
    assert len(result.regions) == 1
    assert result.regions[0].voxel_count == 300  # none of the three layers is jitter
    assert result.boundary_jitter_voxels == 10


def test_a_boundary_moved_by_one_thick_slice_is_listed_not_jitter():
    """0.5 x 0.5 x 5 mm voxels: a structure that grew by one 5 mm slice changed its extent by 5 mm
    (the 5 mm shift the check is for); it was dismissed as one-voxel jitter. In-plane (0.5 mm)
    one-voxel moves still are jitter."""
    thick = Geometry(GEOMETRY.origin_lps_mm, np.array([0.5, 0.5, 5.0]), GEOMETRY.direction)
    original = box(k=(4, 8), label=1)
    grown = box(k=(4, 9), label=1)  # one more 5 mm slice: 100 voxels, 125 mm^3
    result = compare_label_maps(original, grown, thick, NAMES, RegionFilter(50.0, True))
    assert [r.voxel_count for r in result.regions] == [100] and result.boundary_jitter_voxels == 0
    assert any("not looked for along k (5 mm voxels" in note for note in result.notes)
    widened = box(k=(4, 8), i=(5, 16), label=1)  # one more 0.5 mm column in-plane
    result = compare_label_maps(original, widened, thick, NAMES, RegionFilter(0.0, True))
    assert result.regions == [] and result.boundary_jitter_voxels == 40
    same_move_isotropic = compare_label_maps(original, grown, NEAR_ISOTROPIC, NAMES, RegionFilter(0.0, True))
    assert same_move_isotropic.regions == [] and same_move_isotropic.boundary_jitter_voxels == 100
    assert not any("not looked for" in note for note in same_move_isotropic.notes)


def test_a_removed_or_moved_structure_is_not_jitter_and_keeps_its_rim():
    original = box(label=1) + box(k=(11, 14), j=(6, 9), i=(20, 26), label=2)
    removed = box(label=1)
    result = compare_label_maps(original, removed, GEOMETRY, NAMES, RegionFilter(20.0, True))
    assert [r.voxel_count for r in result.regions] == [54] and result.boundary_jitter_voxels == 0
    # White matter filled with grey but for a one-voxel layer on one face: the filled voxels
    # around that layer look like jitter (white beside them in the filled map, grey in the
    # original); they touch the real region and are taken back into it.
    original = box(label=1) + box(k=(6, 12), j=(6, 12), i=(6, 12), label=1)
    original[6:12, 6:12, 6:12] = 2
    filled = original.copy()
    filled[6:12, 6:12, 7:12] = 1
    assert boundary_jitter(original, filled).sum() > 0
    result = compare_label_maps(original, filled, GEOMETRY, NAMES, RegionFilter(20.0, True))
    assert [r.voxel_count for r in result.regions] == [result.disagreement_voxels] == [6 * 6 * 5]
    assert result.boundary_jitter_voxels == 0
    original = box(label=1) + box(k=(11, 14), j=(6, 9), i=(20, 26), label=2)
    shifted = box(label=1) + box(k=(11, 14), j=(6, 9), i=(23, 29), label=2)  # 3 voxels (1.5 mm) along i
    result = compare_label_maps(original, shifted, GEOMETRY, NAMES, JITTER)
    assert sum(r.voxel_count for r in result.regions) == 2 * 27  # where it left and where it arrived


def test_labels_on_another_grid_are_resampled_nearest_never_blended():
    coarse = Geometry(GEOMETRY.origin_lps_mm, np.array(SPACING_IJK) * 2, GEOMETRY.direction)
    labels = np.zeros((8, 10, 15), dtype=np.int16)
    labels[2:5, 2:8, 3:12] = 2
    labels[3, 4:6, 5:8] = 1
    fine = labels_on_grid(Volume(labels, coarse), GEOMETRY, SHAPE)
    assert fine.shape == SHAPE
    assert set(np.unique(fine).tolist()) == {0, 1, 2}
    assert fine[6, 8, 10] == labels[3, 4, 5]  # fine (i 10, j 8, k 6) is coarse (5, 4, 3)


def test_different_shapes_are_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        compare_label_maps(box(), box()[:-1], GEOMETRY)


def test_the_module_imports_no_torch():
    code = "import sys, app.analysis.seg_consistency; print('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr

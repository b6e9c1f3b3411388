"""Segmentation consistency on degenerate inputs: a single slice (a 2D image: HD95 counted every
voxel as surface, since both faces along k touched the array's edge: 2.4 mm where the 2D figure
is 0.8 mm), a one-voxel-thick structure inside a volume (its faces are surface), and a label
present in one map only (Dice 0, not n/a; volume change -100 % or n/a)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from app.analysis.seg_consistency import compare_label_maps, hausdorff_mm
from app.core.volume import Geometry

SPACING_IJK = (0.8, 0.8, 3.0)
GEOMETRY = Geometry(np.zeros(3), np.array(SPACING_IJK), np.diag([-1.0, -1.0, 1.0]))


def _hd_2d(a: np.ndarray, b: np.ndarray, spacing_ji, percentile: float) -> float:
    """The 2D computation (medpy's definition on a 2D array), independently written."""

    def surface(mask):
        return mask & ~ndimage.binary_erosion(mask, ndimage.generate_binary_structure(2, 1), border_value=0)

    def directed(x, y):
        return ndimage.distance_transform_edt(~surface(y), sampling=spacing_ji)[surface(x)]

    return float(np.percentile(np.concatenate([directed(a, b), directed(b, a)]), percentile))


def _square_and_ring():
    square = np.zeros((1, 40, 40), bool)
    square[0, 14:26, 14:26] = True
    ring = square.copy()
    ring[0, 16:24, 16:24] = False  # the centre filled with another tissue: 2-voxel ring left
    return square, ring


def test_a_single_slice_is_measured_as_a_2d_image():
    square, ring = _square_and_ring()
    spacing_kji = SPACING_IJK[::-1]
    for percentile in (95.0, 100.0):
        expected = _hd_2d(square[0], ring[0], spacing_kji[1:], percentile)
        assert hausdorff_mm(square, ring, spacing_kji, percentile) == pytest.approx(expected)
    assert hausdorff_mm(square, ring, spacing_kji, 95.0) == pytest.approx(0.8)  # the ring's inner edge


def test_a_one_voxel_thick_structure_inside_a_volume_keeps_its_faces_as_surface():
    square, ring = _square_and_ring()
    thick_a = np.zeros((5, 40, 40), bool)
    thick_b = np.zeros((5, 40, 40), bool)
    thick_a[2], thick_b[2] = square[0], ring[0]
    # every voxel of a one-slice structure in a 5-slice volume is on its surface (top and bottom)
    pooled_max = hausdorff_mm(thick_a, thick_b, SPACING_IJK[::-1], 100.0)
    assert pooled_max == pytest.approx(4 * 0.8)  # the square's centre voxels to the ring, in-plane


def test_a_label_in_one_map_only_has_dice_zero_and_a_label_in_neither_none():
    original = np.zeros((3, 10, 10), np.int16)
    original[1, 2:5, 2:5] = 1
    synthesized = np.zeros_like(original)
    synthesized[1, 6:9, 6:9] = 2
    result = compare_label_maps(original, synthesized, GEOMETRY, {1: "one", 2: "two", 3: "three"})
    by_name = {label.name: label for label in result.labels}
    assert by_name["one"].dice == 0.0 and by_name["one"].volume_change_percent == -100.0
    assert by_name["two"].dice == 0.0 and by_name["two"].volume_change_percent is None  # no original volume
    assert by_name["two"].volume_change_ml == pytest.approx(9 * 0.8 * 0.8 * 3 / 1000)
    assert by_name["three"].dice is None and by_name["three"].to_dict()["volume_change_percent"] is None
    assert by_name["one"].hd95_mm is None and "one: missing from one map" in result.notes
    assert "three: in neither map" in result.notes

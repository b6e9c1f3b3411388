"""The one recipe for a generator's images (training builder and memorisation check)."""

from __future__ import annotations

import numpy as np
import pytest

from app.plugins.generator_images import prepare, training_factor


def head_volume(rows: int = 120, cols: int = 100, slices: int = 10) -> np.ndarray:
    """voxels[k, j, i]: an off-centre bright box in every slice, 1000 inside, 0 outside."""
    voxels = np.zeros((slices, 200, 200), np.float32)
    voxels[:, 30 : 30 + rows, 50 : 50 + cols] = 1000.0
    return voxels


def test_training_factor_is_the_smallest_canvas_holding_the_head_with_a_margin():
    stack = np.zeros((1, 300, 300), np.float32)
    stack[0, :252, :10] = 1.0
    assert training_factor(stack, 64) == 4  # 252 + 4 = 256 = 4 x 64
    stack[0, :253, :10] = 1.0
    assert training_factor(stack, 64) == 5


def test_the_head_is_centred_and_the_crop_box_does_not_depend_on_the_slices_kept():
    voxels = head_volume()
    direction, spacing = np.eye(3), (1.0, 1.0, 1.0)
    everything = prepare(voxels, direction, spacing, "axial", (32, 32), (4.0, 4.0))
    some = prepare(voxels, direction, spacing, "axial", (32, 32), (4.0, 4.0), keep=np.arange(10) == 3)
    assert everything.images.shape == (10, 32, 32) and some.images.shape == (1, 32, 32)
    np.testing.assert_array_equal(some.images[0], everything.images[3])
    assert some.slice_numbers == (4,)
    box = np.argwhere(everything.images[0] > 0.5)
    centre = (box.min(axis=0) + box.max(axis=0)) / 2
    assert np.allclose(centre, 15.5, atol=0.6)  # the off-centre box lands in the middle


def test_pixels_that_do_not_divide_the_generator_pixel_are_resampled_first():
    """0.9 mm pixels and a 4 mm generator: resampled (upsampling only) to 0.8 mm, then 5 x 5
    averaged; the 120 x 100 voxel box (108 x 90 mm) comes out about 27 x 22.5 pixels."""
    prepared = prepare(head_volume(), np.eye(3), (0.9, 0.9, 1.0), "axial", (64, 64), (4.0, 4.0))
    assert prepared.images.shape == (10, 64, 64) and prepared.pixel_spacing_mm == (4.0, 4.0)
    area = (prepared.images[0] > 0.5).sum()
    assert abs(area - 27 * 22.5) < 40
    assert 0.0 <= prepared.images.min() and prepared.images.max() <= 1.0


@pytest.mark.parametrize("voxels", [np.zeros((4, 64, 64)), np.full((4, 64, 64), np.nan)])
def test_a_volume_without_positive_intensities_is_refused(voxels):
    with pytest.raises(ValueError, match="no positive intensities"):
        prepare(voxels, np.eye(3), (1.0, 1.0, 1.0), "axial", (32, 32), (4.0, 4.0))

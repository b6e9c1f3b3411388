"""Field metrics on inputs that break naive formulas: constant images (0 / 0), slices smaller than
sewar's window, negative (CT) values. Every metric is a number or null with its reason: never NaN
(written as null with no reason, printed as 'nan'), and no data range is invented for a
constant reference (it said 'data range 1')."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from app.analysis.field_metrics import field_metrics

METRICS = ("mutual_information_nats", "normalized_mutual_information", "uqi", "vifp", "ms_ssim", "fsim", "gmsd")


def _no_nan_and_every_null_explained(result) -> None:
    data = result.to_dict()
    for name in METRICS:
        value = data[name]
        assert value is None or math.isfinite(value), (name, value)
        if value is None:
            assert name in (data["absent"] or {}) or (name == "ms_ssim" and "176 x 176" in data["note"]), name


@pytest.mark.parametrize("value", [0.0, 7.0, -1000.0])
def test_two_constant_images_give_nulls_with_reasons_and_no_invented_data_range(value):
    constant = np.full((4, 24, 24), value)
    with np.errstate(all="raise"):  # no 0 / 0 warning escapes to the console either
        result = field_metrics(constant, constant, fsim_gmsd=lambda pairs: (1.0, 0.0))
    _no_nan_and_every_null_explained(result)
    assert result.data_range is None and result.uqi is None and result.normalized_mutual_information is None
    assert result.absent["uqi"] == "the reference is constant: no slice with foreground"
    assert "both images are constant" in result.absent["normalized_mutual_information"]
    json.dumps(result.to_dict(), allow_nan=False)


def test_a_constant_reference_against_a_textured_image():
    rng = np.random.default_rng(0)
    result = field_metrics(np.full((3, 24, 24), 5.0), rng.normal(100, 10, (3, 24, 24)))
    _no_nan_and_every_null_explained(result)
    assert result.mutual_information_nats == 0.0 and result.normalized_mutual_information == pytest.approx(1.0)


def test_slices_smaller_than_the_uqi_window_say_so():
    rng = np.random.default_rng(1)
    reference = rng.normal(100, 20, (2, 5, 5))
    result = field_metrics(reference, reference + rng.normal(0, 5, reference.shape))
    _no_nan_and_every_null_explained(result)
    assert result.uqi is None and "UQI needs slices of at least 9 x 9" in result.absent["uqi"]


@pytest.mark.parametrize("shape", [(2, 40, 60), (2, 64, 64), (2, 5, 5)])
def test_slices_smaller_than_vif_p_four_scales_say_so(shape):
    """sewar's VIF-p raised a traceback on 40 x 60 slices (a window larger along one side) and gave
    a figure of the swapped window on smaller ones (5 x 5: 0.85)."""
    rng = np.random.default_rng(3)
    reference = rng.normal(100, 20, shape)
    result = field_metrics(reference, reference + rng.normal(0, 5, shape))
    _no_nan_and_every_null_explained(result)
    assert result.vifp is None and "VIF-p needs slices of at least 81 x 81" in result.absent["vifp"]


def test_a_test_volume_covering_part_of_the_field_of_view_is_compared_where_it_has_values():
    """NaN outside the synthesized volume (after resampling) went into sewar: a traceback (VIF-p)
    or NaN; the 2D metrics now use the window both images cover, and say so."""
    rng = np.random.default_rng(4)
    k, j, i = np.mgrid[0:3, 0:100, 0:180]
    reference = 200 + 100 * np.sin(i / 5.0) * np.cos(j / 7.0) + rng.normal(0, 3, i.shape)
    test = reference + rng.normal(0, 5, i.shape)
    test[:, :, 90:] = np.nan  # the synthesized volume covers the left half only
    result = field_metrics(reference, test)
    _no_nan_and_every_null_explained(result)
    half = field_metrics(reference[:, :, :90], test[:, :, :90], data_range=result.data_range)
    assert result.uqi == pytest.approx(half.uqi) and result.vifp == pytest.approx(half.vifp)
    assert "compared on the 100 x 90 voxels of each slice both images cover" in result.note


def test_ct_values_below_zero_use_the_stated_range_and_give_finite_metrics():
    rng = np.random.default_rng(2)
    ct = rng.normal(-500, 300, (3, 40, 40))
    result = field_metrics(ct, ct + rng.normal(0, 20, ct.shape), data_range=2000.0)
    _no_nan_and_every_null_explained(result)
    assert result.data_range == 2000.0 and 0.9 < result.uqi <= 1


def test_no_finite_voxel_is_a_clear_error():
    with pytest.raises(ValueError, match="no voxel is finite in both images"):
        field_metrics(np.full((2, 8, 8), np.nan), np.zeros((2, 8, 8)))


def test_slices_are_axial_whatever_the_storage_order():
    """A volume stored with i and k swapped (sagittal slices first) gave sagittal slices called
    axial (FSIM 0.868 instead of 0.899 on one pair); both orders now give the same arrays."""
    from app.analysis.field_metrics import axial_arrays
    from app.core.provenance import Provenance
    from app.core.volume import Geometry, Volume

    rng = np.random.default_rng(5)
    axial = rng.normal(100, 10, (6, 9, 12))
    test = axial + rng.normal(0, 1, axial.shape)
    flipped_lr = np.diag([-1.0, 1.0, 1.0])  # i towards the right, as many scanners store it
    stored = Geometry(np.array([11.0, 0.0, 0.0]), np.ones(3), flipped_lr)
    swapped = Geometry(np.array([11.0, 0.0, 0.0]), np.ones(3), flipped_lr[:, [2, 1, 0]])

    def as_stored(voxels, geometry, swap):
        data = np.ascontiguousarray(np.transpose(voxels, (2, 1, 0))) if swap else voxels
        return Volume(data, geometry, "MR"), Volume(
            np.ascontiguousarray(np.transpose(test, (2, 1, 0))) if swap else test,
            geometry,
            "MR",
            provenance=Provenance("g", "1"),
        )

    reference_a, test_a, note_a = axial_arrays(*as_stored(axial, stored, False))
    reference_b, test_b, note_b = axial_arrays(*as_stored(axial, swapped, True))
    assert reference_a.shape == (6, 9, 12) and note_a == note_b == ""
    np.testing.assert_array_equal(reference_a, reference_b)
    np.testing.assert_array_equal(test_a, test_b)


def test_a_uniform_slice_is_left_out_of_the_means_not_turning_them_nan():
    rng = np.random.default_rng(6)
    k, j, i = np.mgrid[0:3, 0:90, 0:96]
    reference = 200 + 100 * np.sin(i / 5.0) * np.cos(j / 7.0)
    reference[0] = 150.0  # one uniform slice: VIF-p is 0 / 0 there
    test = reference + rng.normal(0, 3, reference.shape)
    result = field_metrics(reference, test)
    rest = field_metrics(reference[1:], test[1:], data_range=result.data_range)
    assert result.vifp == pytest.approx(rest.vifp) and "VIF-p: 1 of 3 slices undefined" in result.note

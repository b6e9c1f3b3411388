"""``run_compare`` on inputs an outside checker would plant: corrupt voxels, partial coverage,
clipped bright lesions. A real lesion must stay flagged whatever else is in the volume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.analysis.compare_run import run_compare
from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io.nifti import save_nifti
from main import main
from tests.analysis.compare_pairs import GEOMETRY, LESION_IJK, lesion_pair, noisy_block


def _pair(lesion_value: float = 320.0, provenance: Provenance | None = None):
    return lesion_pair(lesion_value, provenance)


def _at_lesion(regions, geometry, kind="residual"):
    lesion = geometry.lps_from_index(LESION_IJK)
    return [r for r in regions if r.kind == kind and np.allclose(r.centroid_lps_mm, lesion, atol=1.0)]


@pytest.mark.parametrize("where", ["original", "synthesized"])
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_one_infinite_voxel_far_from_the_lesion_does_not_hide_it(where, value):
    original, synthesized = _pair()
    corrupt = original if where == "original" else synthesized
    corrupt.voxels[1, 2, 30] = value
    result = run_compare(original, synthesized)
    assert _at_lesion(result.regions, original.geometry), [r.centroid_lps_mm for r in result.regions]
    assert len(result.regions) == 1  # the corrupt voxel is no region of change either
    assert any("infinite voxel" in note and where in note for note in result.notes)


def test_an_infinite_voxel_in_a_nifti_input_through_the_command(tmp_path):
    original, synthesized = _pair()
    original.voxels[1, 2, 30] = np.inf
    first = save_nifti(original, tmp_path / "t1.nii.gz")
    second = save_nifti(synthesized, tmp_path / "healthy.nii.gz")
    out = tmp_path / "out.json"
    assert main(["compare", str(first), str(second), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["region_count"] == 1 and data["regions"][0]["sign"] == "+"


CLIPPED_AT_250 = Provenance(
    "eraser", "1.0", parameters={"input_scaling": {"method": "percentile", "low": 150.0, "high": 250.0}}
)


def test_missing_voxels_of_the_input_are_no_outside_range_region():
    original, synthesized = _pair(400.0, CLIPPED_AT_250)
    original.voxels[:, :, 30:] = np.nan  # outside the original's field of view, say
    result = run_compare(original, synthesized)
    outside = [r for r in result.regions if r.kind == "outside_input_range"]
    assert len(outside) == 1 and _at_lesion(outside, original.geometry, "outside_input_range")


def test_input_beyond_the_plugins_range_is_its_own_region_with_a_reference_too():
    from app.core.resample import resample_onto

    original, synthesized = _pair(400.0, CLIPPED_AT_250)
    synthesized = synthesized.with_voxels(original.voxels.copy())  # the clipped lesion passed through
    finer = Geometry(np.array([20.25, 30.25, -5.0]), np.array([0.5, 0.5, 1.5]), np.diag([-1.0, -1.0, 1.0]))
    truth = Volume(np.full((14, 36, 36), 200.0, np.float32), original.geometry, "MR", name="truth")
    reference = resample_onto(truth, finer, (14, 72, 72))
    result = run_compare(original, synthesized, reference)
    outside = _at_lesion(result.regions, original.geometry, "outside_input_range")
    assert len(outside) == 1 and outside[0].volume_ml == pytest.approx(4 / 3 * np.pi * 4**3 / 1000, rel=0.35)
    assert result.label_map.shape == reference.shape_kji and (result.label_map == outside[0].label).sum() > 0
    assert any("outside the plugin's input range" in note for note in result.notes)


def test_a_synthesized_volume_covering_part_of_the_original_says_what_was_not_checked():
    original, synthesized = _pair()
    right_half = Geometry(
        original.geometry.lps_from_index([18, 0, 0]),
        original.geometry.spacing_mm,
        original.geometry.direction,
    )
    partial = Volume(
        synthesized.voxels[:, :, 18:].copy(), right_half, "MR", provenance=synthesized.provenance
    )
    result = run_compare(original, partial)
    assert result.regions == []  # the lesion (i = 10) is where nothing was synthesized
    assert any("only 50 % of the original is compared" in note for note in result.notes), result.notes
    assert not any("is compared" in note for note in run_compare(original, synthesized).notes)


def _report_text(result) -> str:
    import re

    from app.analysis.report import render_report

    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", render_report(result))
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).replace("&#x27;", "'")


def test_the_report_says_which_region_is_input_outside_the_range_and_what_each_sign_means():
    original, synthesized = _pair(400.0, CLIPPED_AT_250)
    result = run_compare(original, synthesized)  # the lesion removed: a residual region and an outside one
    kinds = sorted(r.kind for r in result.regions)
    assert kinds == ["outside_input_range", "residual"]
    text = _report_text(result)
    assert "kind input outside the plugin's range, not synthesized" in text
    assert "kind changed by the generator" in text
    assert "sign + (the synthesized image is darker than the original: signal removed)" in text
    assert "peak excess over the input range +150" in text and "peak z +" in text


def test_the_report_states_the_threshold_in_its_own_unit():
    original, synthesized = _pair()
    calibrated = run_compare(original, synthesized)
    text = _report_text(calibrated)
    assert f"threshold (|z|) {calibrated.settings.threshold:.4g}" in text
    assert "threshold (image units)" not in text and "false region(s) per healthy volume" in text
    assert "threshold (image units) 60" in _report_text(run_compare(original, synthesized, threshold=60.0))


def test_the_sign_convention_names_the_residual_actually_read():
    original, synthesized = _pair()
    plain = run_compare(original, synthesized)
    assert plain.to_dict()["sign_convention"].startswith(
        "residual = original - synthesized: + (the synthesized"
    )
    truth = Volume(np.full(original.shape_kji, 200.0, np.float32), original.geometry, "MR", name="truth")
    with_reference = run_compare(original, synthesized.with_voxels(original.voxels.copy()), truth)
    convention = with_reference.to_dict()["sign_convention"]
    assert convention.startswith("residual = reference - synthesized") and "than the reference" in convention
    (region,) = with_reference.regions  # the lesion kept: the output is brighter than the truth
    assert region.sign == "-" and "- (the synthesized image is brighter than the reference" in _report_text(
        with_reference
    )
    other_kind = Volume(synthesized.voxels, original.geometry, "CT", provenance=synthesized.provenance)
    cycle = Volume(np.full(original.shape_kji, 200.0, np.float32), original.geometry, "MR")
    convention = run_compare(original, other_kind, cycle_reconstruction=cycle).to_dict()["sign_convention"]
    assert convention.startswith(
        "residual = original - cycle reconstruction: + (the cycle reconstruction is darker"
    )


@pytest.mark.parametrize("weaker", [25.0, 60.0])
def test_two_nearby_changes_are_two_regions_each_at_its_own_place(weaker):
    # 12 mm apart, the largest lesion scale's z map joins them into one component; a 25-unit
    # change vanished under half the 60-unit one's peak, two equal ones were one region centred
    # in the unchanged tissue between them.
    geometry = GEOMETRY
    shape = (14, 48, 60)
    image = noisy_block(shape, seed=1)
    output = image.copy()
    k, j, i = np.indices(shape)
    centres = {(20, 24): 60.0, (32, 24): weaker}
    for (ci, cj), change in centres.items():
        output[(i - ci) ** 2 + (j - cj) ** 2 + ((k - 7) * 1.5) ** 2 <= 9] -= change
    result = run_compare(
        Volume(image, geometry, "MR"), Volume(output, geometry, "MR", provenance=Provenance("x", "1"))
    )
    assert len(result.regions) == 2
    for ci, cj in centres:
        lesion = geometry.lps_from_index([ci, cj, 7])
        (region,) = [r for r in result.regions if np.allclose(r.centroid_lps_mm, lesion, atol=1.0)]
        assert region.sign == "+" and region.volume_ml == pytest.approx(0.071, rel=0.3)


def test_input_outside_the_range_is_listed_however_many_changes_rank_before_it(tmp_path, capsys):
    geometry = Geometry(np.array([20.0, 30.0, -5.0]), np.array([1.0, 1.0, 1.5]), np.diag([-1.0, -1.0, 1.0]))
    shape = (14, 60, 90)
    image = np.full(shape, 200.0, np.float32) + np.random.default_rng(0).normal(0, 2, shape).astype(
        np.float32
    )
    k, j, i = np.indices(shape)
    image[(i - 10) ** 2 + (j - 12) ** 2 + ((k - 7) * 1.5) ** 2 <= 16] = 400.0  # above the clip level
    output = image.copy()  # passed through, and 14 changes stronger in z
    for n in range(14):
        centre_i, centre_j = 6 + (n % 7) * 12, 30 + (n // 7) * 20
        output[(i - centre_i) ** 2 + (j - centre_j) ** 2 + ((k - 7) * 1.5) ** 2 <= 9] -= 60
    original = Volume(image, geometry, "MR", name="t1")
    synthesized = Volume(output, geometry, "MR", name="out", provenance=CLIPPED_AT_250)
    result = run_compare(original, synthesized)
    assert len(result.regions) == 15 and result.regions[-1].kind == "outside_input_range"
    assert "kind input outside the plugin's range, not synthesized" in _report_text(result)
    paths = [save_nifti(v, tmp_path / f"{v.name}.nii.gz") for v in (original, synthesized)]
    assert main(["compare", *map(str, paths)]) == 0
    assert "input outside the plugin's range, not synthesized" in capsys.readouterr().out


def test_a_removed_lesion_above_the_range_keeps_its_own_voxels_as_a_residual_region():
    # Both a residual region (the generator removed it) and an outside-range one (the input
    # was above the clip level): the residual region had no voxel left in the label map, so its
    # outline was empty and its map means NaN.
    import warnings

    original, synthesized = _pair(400.0, CLIPPED_AT_250)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = run_compare(
            original, synthesized, ensemble=[synthesized.with_voxels(synthesized.voxels + 1)]
        )
        means = result.region_map_means()
    for region, region_means in zip(result.regions, means, strict=True):
        assert result.region_mask(region).sum() == region.voxel_count, region.kind
        assert np.isfinite(region_means["ensemble SD"])
    assert result.with_threshold(result.settings.threshold).region_mask(result.regions[0]).sum() > 0


def test_a_synthetic_reference_is_said_to_be_no_acquisition():
    original, synthesized = _pair()
    result = run_compare(original, synthesized, reference=synthesized)  # the output given as the truth
    assert result.regions == []
    assert any("the reference is marked synthetic (SYNTHETIC — eraser 1.0)" in note for note in result.notes)
    truth = Volume(np.full(original.shape_kji, 200.0, np.float32), original.geometry, "MR", name="truth")
    assert not any("marked synthetic" in note for note in run_compare(original, synthesized, truth).notes)

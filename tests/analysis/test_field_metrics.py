"""The field's metrics equal their reference implementations on fixtures."""

from __future__ import annotations

import numpy as np
import pytest
from sewar.full_ref import msssim, uqi, vifp
from skimage.metrics import normalized_mutual_information
from sklearn.metrics import mutual_info_score

from app.analysis.field_metrics import MI_BINS, field_metrics, mutual_information


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(3)
    k, j, i = np.mgrid[0:4, 0:192, 0:200]
    reference = 100 + 80 * np.sin(i / 9.0) * np.cos(j / 13.0) + 20 * (k + 1)
    test = reference + rng.normal(0, 8, reference.shape)
    return reference, test


def test_mutual_information_equals_scikit_learn_on_the_same_bins(pair):
    reference, test = pair
    edges_r = np.histogram_bin_edges(reference, MI_BINS)
    edges_t = np.histogram_bin_edges(test, MI_BINS)
    labels_r = np.clip(np.digitize(reference.ravel(), edges_r[1:-1]), 0, MI_BINS - 1)
    labels_t = np.clip(np.digitize(test.ravel(), edges_t[1:-1]), 0, MI_BINS - 1)
    assert mutual_information(reference, test) == pytest.approx(mutual_info_score(labels_r, labels_t), rel=1e-9)


def test_each_metric_equals_its_reference_on_a_slice(pair):
    reference, test = pair
    result = field_metrics(reference, test)
    low, span = reference.min(), reference.max() - reference.min()
    a, b = (np.clip((reference - low) / span, 0, 1), np.clip((test - low) / span, 0, 1))
    assert result.data_range == pytest.approx(span)
    assert result.slices_used == [0, 1, 2, 3]
    assert result.uqi == pytest.approx(np.mean([uqi(a[k], b[k]) for k in range(4)]), rel=1e-12)
    assert result.vifp == pytest.approx(np.mean([vifp(a[k], b[k]) for k in range(4)]), rel=1e-12)
    assert result.ms_ssim == pytest.approx(np.mean([np.real(msssim(a[k], b[k], MAX=1.0)) for k in range(4)]), rel=1e-12)
    assert result.normalized_mutual_information == pytest.approx(normalized_mutual_information(reference, test, bins=MI_BINS))
    assert result.fsim is None and result.gmsd is None and "not computed" in result.absent["fsim"]


def test_fsim_and_gmsd_are_means_over_the_same_scaled_slices(pair):
    from app.plugins.piq_metrics import fsim_gmsd_per_slice

    reference, test = pair[0][:2, :96, :100], pair[1][:2, :96, :100]  # VIF-p needs 81 a side
    seen = []

    def recording(pairs):
        seen.extend(pairs)
        return 0.75, 0.125

    result = field_metrics(reference, test, fsim_gmsd=recording)
    low, span = reference.min(), reference.max() - reference.min()
    assert (result.fsim, result.gmsd, result.absent) == (0.75, 0.125, None)
    assert len(seen) == 2 and np.allclose(seen[1][1], np.clip((test[1] - low) / span, 0, 1))
    fsim_values, gmsd_values = fsim_gmsd_per_slice(seen)
    from app.plugins.piq_metrics import fsim_gmsd

    real = field_metrics(reference, test, fsim_gmsd=fsim_gmsd)
    assert (real.fsim, real.gmsd) == pytest.approx((np.mean(fsim_values), np.mean(gmsd_values)), rel=1e-12)


def test_a_failing_fsim_gmsd_is_a_reason_in_the_result(pair):
    def broken(pairs):
        raise RuntimeError("phase congruency failed\nsecond line")

    result = field_metrics(pair[0][:1], pair[1][:1], fsim_gmsd=broken)
    assert result.fsim is None and result.absent == {"fsim": "RuntimeError: phase congruency failed"} | {
        "gmsd": "RuntimeError: phase congruency failed"
    }
    assert 0 < result.uqi <= 1


def test_identical_images_score_perfectly_and_noise_lowers_every_score(pair):
    reference, test = pair
    same = field_metrics(reference, reference)
    noisy = field_metrics(reference, test)
    assert same.uqi == pytest.approx(1) and same.vifp == pytest.approx(1) and same.ms_ssim == pytest.approx(1)
    assert noisy.uqi < same.uqi and noisy.vifp < same.vifp and noisy.ms_ssim < same.ms_ssim
    assert noisy.mutual_information_nats < same.mutual_information_nats


def test_small_slices_say_why_ms_ssim_is_missing():
    reference = np.random.default_rng(0).normal(100, 10, (3, 64, 64))
    result = field_metrics(reference, reference + 1)
    assert result.ms_ssim is None and "176 x 176" in result.note


def test_compare_field_metrics_in_the_json(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    from app.core.volume import Geometry, Volume
    from app.io.nifti import save_nifti

    rng = np.random.default_rng(1)
    k, j, i = np.mgrid[0:3, 0:180, 0:180]
    original = (200 + 100 * np.sin(i / 7.0) * np.cos(j / 11.0)).astype(np.float32)
    save_nifti(Volume(original, Geometry.identity(), modality="MR"), tmp_path / "a.nii.gz")
    save_nifti(Volume(original + rng.normal(0, 5, original.shape).astype(np.float32), Geometry.identity(), modality="MR"),
               tmp_path / "b.nii.gz")  # fmt: skip
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, str(root / "main.py"), "compare", str(tmp_path / "a.nii.gz"), str(tmp_path / "b.nii.gz"),
                             "--field-metrics", "--json", str(tmp_path / "c.json")], capture_output=True, text=True, timeout=240)  # fmt: skip
    assert result.returncode == 0, result.stderr
    block = json.loads((tmp_path / "c.json").read_text())["field_metrics"]
    assert block["against"] == "original" and 0.5 < block["uqi"] <= 1 and 0 < block["vifp"] < 1
    assert block["ms_ssim"] is not None and block["data_range"] == pytest.approx(float(original.max() - original.min()))
    assert 0.5 < block["fsim"] < 1 and 0 < block["gmsd"] < 0.2 and block["absent"] is None
    assert "field metrics vs original: MI" in result.stdout

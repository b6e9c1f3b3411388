"""``batch synthesize --fid-weights``: the FID of the inputs' against the outputs' slices pooled over
the cohort (each case's features stored beside its output, reused on a resumed run), with the
number of cases and images, its hash and 'not validated for medical images'; refused in one line
for a plugin that changes the kind of image, or a file that is not the FID network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from app.batch.case_run import FID_FEATURES_FILE, JobSpec
from tests.batch.cohort_factory import write_cohort
from tests.batch.test_cohort import batch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """FID Inception weights with random values (the network's own layout; equality with
    pytorch-fid is tests/plugins/test_fid_metric.py's)."""
    from app.plugins.fid_metric import FidInceptionV3

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("fid") / "pt_inception-random.pth"
    torch.save(FidInceptionV3().state_dict(), path)
    return path


def test_the_cohort_fid_pools_every_cases_slices_and_a_rerun_reuses_them(tmp_path, weights):
    inputs = tmp_path / "in"
    write_cohort(inputs, 2, slices=4)
    out = tmp_path / "out"
    args = ["synthesize", "--plugin", "mr-t1-denoise", inputs, out, "--fid-weights", weights,
            "--json", tmp_path / "table.json", "--report", tmp_path / "report.html", "--quiet"]  # fmt: skip
    result = batch(*args, check_rc=0)
    fid = json.loads((tmp_path / "table.json").read_text())["fid"]
    assert fid["cases"] == 2 and fid["images_per_set"] == 8 and fid["value"] is not None and fid["value"] >= 0
    assert fid["warning"] == "not validated for medical images" and fid["validated_for_medical_images"] is False
    assert "8 image(s) per set: a small-sample statistic" in fid["sample_note"]
    assert f"FID {fid['value']:.4f} over 2 case(s)" in result.stderr

    # The pooled value is the Fréchet distance of the stored features, which are the network's
    # features of each input's and output's slices (recomputed here from the files).
    from app.analysis.field_metrics import scaled_axial_slices
    from app.io.nifti import load_nifti
    from app.plugins.fid_metric import frechet_distance, load_fid, slice_features

    loaded = load_fid(weights)
    stored, recomputed = [], []
    for case in ("case00", "case01"):
        with np.load(out / "cases" / case / FID_FEATURES_FILE) as features:
            stored.append((features["input"], features["output"]))
        original = load_nifti(inputs / f"{case}.nii.gz")
        output = load_nifti(out / "cases" / case / "synthesized.nii.gz")
        _, pairs, _ = scaled_axial_slices(original.voxels, output.voxels)
        recomputed.append(slice_features(loaded, pairs))
    for (a, b), (c, d) in zip(stored, recomputed, strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(b, d, rtol=1e-4, atol=1e-5)
    pooled = frechet_distance(np.concatenate([a for a, _ in stored]), np.concatenate([b for _, b in stored]))
    assert fid["value"] == pytest.approx(pooled, rel=1e-6, abs=1e-9)
    html = (tmp_path / "report.html").read_text()
    assert "<b>FID: not validated for medical images.</b>" in html and fid["weights_sha256"] in html

    batch(*args[:-5], "--json", tmp_path / "again.json", "--quiet", check_rc=0)  # resumed: all skipped
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["summary"]["skipped"] == 2 and again["fid"]["value"] == pytest.approx(fid["value"])


def test_a_plugin_that_changes_the_kind_of_image_or_a_wrong_file_is_refused_in_one_line(tmp_path, weights):
    inputs = tmp_path / "in"
    write_cohort(inputs, 1, slices=2)
    result = batch("synthesize", "--plugin", "mr-t1-brain-tissue", inputs, tmp_path / "a", "--fid-weights", weights)
    assert result.returncode == 2 and "does not keep the input's kind" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    other = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(2, 2).state_dict(), other)
    for bad in (other, tmp_path / "missing.pth"):
        result = batch("synthesize", "--plugin", "mr-t1-denoise", inputs, tmp_path / "b", "--fid-weights", bad)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("batch: error: ")
    assert not (tmp_path / "b").exists()


def test_a_job_without_fid_keys_as_before():
    """Outputs of a run made before --fid-weights existed still count as complete."""
    spec = JobSpec("folder", "p", "1", "w" * 64, "m" * 64)
    assert "fid_weights_sha256" not in spec.key and "fid_weights" not in spec.key
    with_fid = JobSpec("folder", "p", "1", "w" * 64, "m" * 64, fid_weights="/x.pth", fid_weights_sha256="f" * 64)
    assert with_fid.key["fid_weights_sha256"] == "f" * 64 and "fid_weights" not in with_fid.key

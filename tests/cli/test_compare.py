"""``python main.py compare`` end to end on NIfTI files: JSON regions/metrics, HTML report, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io.nifti import save_nifti
from main import main


@pytest.fixture
def pair(tmp_path):
    # RAS-stored on disk (save_nifti), LPS in memory: the centroid must come back in LPS.
    geometry = Geometry(np.array([20.0, 30.0, -5.0]), np.array([1.0, 1.0, 1.5]), np.diag([-1.0, -1.0, 1.0]))
    shape = (14, 36, 36)
    healthy = np.full(shape, 200.0, np.float32)
    original = healthy.copy()
    k, j, i = np.indices(shape)
    original[(i - 10) ** 2 + (j - 20) ** 2 + ((k - 7) * 1.5) ** 2 <= 4**2] = 320.0
    original_path = save_nifti(Volume(original, geometry, "MR", name="t1"), tmp_path / "t1.nii.gz")
    output = Volume(healthy, geometry, "MR", name="healthy", provenance=Provenance("eraser", "1.0"))
    output_path = save_nifti(output, tmp_path / "healthy.nii.gz")
    return original_path, output_path, geometry.lps_from_index([10, 20, 7])


def test_compare_writes_regions_metrics_and_report(pair, tmp_path, capsys):
    original_path, output_path, lesion_lps = pair
    out_json, out_html = tmp_path / "out.json", tmp_path / "report.html"
    code = main(
        ["compare", str(original_path), str(output_path), "--json", str(out_json), "--report", str(out_html)]
    )
    assert code == 0
    data = json.loads(out_json.read_text())
    assert data["region_count"] == 1
    region = data["regions"][0]
    assert np.allclose(region["centroid_lps_mm"], lesion_lps, atol=0.3)
    assert lesion_lps[0] == pytest.approx(10.0)  # 20 mm - 10 voxels towards the right
    # The default operating point is the calibrated z map's (stated in the JSON); its region is
    # cut to where the change reaches half its peak, so its volume is the lesion's, as it is at
    # --threshold 60 (half the lesion contrast, image units).
    assert data["settings"]["statistic"] == "z"
    assert data["operating_point"]["false_regions_per_volume"] == 1.0
    assert region["peak_z"] > data["operating_point"]["z_threshold"] and region["sign"] == "+"
    assert region["kind"] == "residual" and "original - synthesized" in data["sign_convention"]
    assert region["volume_ml"] == pytest.approx(4 / 3 * np.pi * 4**3 / 1000, rel=0.25)
    half = tmp_path / "half.json"
    assert (
        main(["compare", str(original_path), str(output_path), "--threshold", "60", "--json", str(half)]) == 0
    )
    half_region = json.loads(half.read_text())["regions"][0]
    assert half_region["volume_ml"] == pytest.approx(4 / 3 * np.pi * 4**3 / 1000, rel=0.25)
    assert region["peak_residual"] > 60
    metrics = data["metrics"]["synthesized_vs_original"]
    assert metrics["data_range"] == pytest.approx(120.0) and metrics["data_range_source"]
    assert data["synthesized_provenance"]["plugin_name"] == "eraser"
    html = out_html.read_text()
    assert "data:image/png;base64," in html and "SYNTHETIC — eraser 1.0" in html
    assert "1 region(s)" in capsys.readouterr().out


def test_threshold_option_and_identical_inputs(pair, tmp_path):
    original_path, _, _ = pair
    out_json = tmp_path / "same.json"
    assert (
        main(["compare", str(original_path), str(original_path), "--threshold", "5", "--json", str(out_json)])
        == 0
    )
    data = json.loads(out_json.read_text())
    assert data["region_count"] == 0 and data["settings"]["threshold"] == 5.0
    assert data["metrics"]["synthesized_vs_original"]["psnr_db"] == "inf"


def test_bad_input_gives_a_clear_message(tmp_path, capsys, pair):
    original_path, _, _ = pair
    assert main(["compare", str(tmp_path / "missing.nii"), str(original_path)]) == 2
    assert "no such file" in capsys.readouterr().err
    junk = tmp_path / "junk.nii"
    junk.write_bytes(b"not an image")
    assert main(["compare", str(original_path), str(junk)]) == 2
    assert "cannot open synthesized" in capsys.readouterr().err
    assert main(["compare", str(original_path), str(original_path), "--threshold", "-1"]) == 2


def test_cycle_and_ensemble_options(pair, tmp_path):
    original_path, output_path, lesion_lps = pair
    out_json = tmp_path / "maps.json"
    code = main(
        [
            "compare",
            str(original_path),
            str(output_path),
            "--cycle",
            str(output_path),
            "--ensemble",
            str(original_path),
            "--json",
            str(out_json),
        ]
    )
    assert code == 0
    data = json.loads(out_json.read_text())
    assert data["maps"]["ensemble SD"]["max"] == pytest.approx(60.0, abs=0.5)  # members 200 and 320
    assert data["maps"]["cycle residual"]["max"] == pytest.approx(120.0, abs=0.5)
    assert data["regions"][0]["map_means"]["ensemble SD"] > 20
    assert (
        main(["compare", str(original_path), str(output_path), "--ensemble", str(tmp_path / "nope.nii")]) == 2
    )


def test_plugin_checks_add_tta_and_perturbation_maps_and_domain_warnings(tmp_path):
    from tests.plugins.plugin_factory import make_builtin_plugin

    domain = {"modalities": ["MR"], "spacing_mm_max": [1.0, 1.0, 1.0]}
    plugin = make_builtin_plugin(tmp_path / "tiny", training_domain=domain)
    rng = np.random.default_rng(0)
    geometry = Geometry.identity(spacing_mm=(1.0, 1.0, 1.5))
    original = Volume(rng.normal(300, 50, (6, 24, 24)).astype(np.float32), geometry, "MR", name="mr")
    synthesized = Volume(rng.normal(0, 100, (6, 24, 24)).astype(np.float32), geometry, "CT", "HU", "ct")
    original_path = save_nifti(original, tmp_path / "mr.nii.gz")
    synthesized_path = save_nifti(synthesized, tmp_path / "ct.nii.gz")
    out_json = tmp_path / "plugin.json"
    args = [
        "compare",
        str(original_path),
        str(synthesized_path),
        "--plugin",
        str(plugin),
        "--json",
        str(out_json),
    ]
    assert main([*args, "--tta", "--perturbation", "0.02"]) == 0
    data = json.loads(out_json.read_text())
    assert "TTA SD" in data["maps"] and data["maps"]["TTA SD"]["max"] > 0
    assert any(name.startswith("perturbation change") for name in data["maps"])
    assert any("coarser than the training maximum" in note for note in data["notes"])
    assert any("cross-modality" in note for note in data["notes"])
    assert main(["compare", str(original_path), str(synthesized_path), "--tta"]) == 2  # needs --plugin
    assert main([*args[:-2], "--plugin", str(tmp_path / "missing-plugin")]) == 2


def test_a_pair_that_does_not_overlap_in_space_is_refused_clearly(pair, tmp_path, capsys):
    """No voxel in common (another patient position, a mixed-up series): exit 2 and a message;
    it was a TypeError traceback after 'Mean of empty slice' warnings."""
    original_path, _, _ = pair
    far = Volume(
        np.full((14, 36, 36), 200.0, np.float32),
        Geometry.identity((1.0, 1.0, 1.5), origin_lps_mm=(500.0, 0.0, 0.0)),
        "MR",
        name="far",
        provenance=Provenance("eraser", "1.0"),
    )
    far_path = save_nifti(far, tmp_path / "far.nii.gz")
    assert main(["compare", str(original_path), str(far_path), "--json", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err
    assert "compare:" in err and "overlap" in err and "Traceback" not in err
    assert not (tmp_path / "out.json").exists()


def test_console_summary_rounds_psnr_like_the_other_metrics(pair, capsys):
    original_path, output_path, _ = pair
    assert main(["compare", str(original_path), str(output_path)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("synthesized_vs_original"))
    psnr = line.split("PSNR ")[1].split(" dB")[0]
    assert len(psnr.split(".")[1]) == 2, line  # was printed with 16 digits: 'PSNR 43.49806986326833 dB'

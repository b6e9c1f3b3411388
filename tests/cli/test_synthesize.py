"""``main.py synthesize`` and ``main.py plugins``: the command-line contracts, end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.volume import Geometry, Volume
from app.io.nifti import load_nifti, save_nifti
from main import main
from tests.plugins.plugin_factory import make_builtin_plugin


@pytest.fixture
def mr_nifti(tmp_path):
    rng = np.random.default_rng(0)
    direction = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # a sagittal acquisition
    volume = Volume(
        rng.uniform(0, 500, (4, 12, 8)).astype(np.float32),
        Geometry(np.array([-5.0, 12.0, 40.0]), np.array([0.9, 1.1, 3.0]), direction),
        modality="MR",
    )
    return save_nifti(volume, tmp_path / "t1.nii.gz"), volume


def test_synthesize_writes_nifti_with_input_geometry_and_provenance(tmp_path, mr_nifti, capsys):
    input_path, original = mr_nifti
    plugin = make_builtin_plugin(tmp_path / "plugin")
    output = tmp_path / "out" / "sct.nii.gz"
    rc = main(["synthesize", "--plugin", str(plugin), str(input_path), str(output), "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    assert "SYNTHETIC" in capsys.readouterr().out
    result = load_nifti(output)
    assert result.geometry.allclose(original.geometry, atol_mm=1e-4)
    assert result.voxels.shape == original.voxels.shape
    assert result.is_synthetic and result.provenance.plugin_name == "tiny-mr2ct"
    sidecar = json.loads((tmp_path / "out" / "sct.json").read_text())
    assert sidecar["Synthetic"] is True and sidecar["provenance"]["device"] == "cpu"


def test_synthesize_writes_a_derived_dicom_series_into_a_folder(tmp_path, mr_nifti):
    pydicom = pytest.importorskip("pydicom")
    input_path, original = mr_nifti
    plugin = make_builtin_plugin(tmp_path / "plugin")
    rc = main(["synthesize", "--plugin", str(plugin), str(input_path), str(tmp_path / "dcm"), "--quiet"])
    assert rc == 0
    files = sorted((tmp_path / "dcm").glob("*.dcm")) or sorted(
        p for p in (tmp_path / "dcm").iterdir() if p.is_file()
    )
    assert len(files) == original.voxels.shape[0]
    header = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert header.SyntheticData == "YES" and "DERIVED" in header.ImageType
    assert "tiny-mr2ct" in header.DerivationDescription


@pytest.mark.parametrize(
    ("plugin_arg", "message"),
    [("no-such-plugin", "no plugin named 'no-such-plugin'"), ("TAMPERED", "SHA-256 mismatch")],
)
def test_synthesize_errors_are_one_clear_line_and_exit_2(tmp_path, mr_nifti, capsys, plugin_arg, message):
    input_path, _ = mr_nifti
    if plugin_arg == "TAMPERED":
        folder = make_builtin_plugin(tmp_path / "plugin")
        (folder / "latest_net_G.pth").write_bytes(b"swapped weights")
        plugin_arg = str(folder)
    rc = main(
        ["synthesize", "--plugin", plugin_arg, str(input_path), str(tmp_path / "o.nii.gz"), "--device", "cpu"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_wrong_modality_is_refused_on_the_command_line(tmp_path, capsys):
    volume = Volume(np.zeros((2, 8, 8), np.float32), Geometry.identity(), modality="CT")
    input_path = save_nifti(volume, tmp_path / "ct.nii.gz")
    plugin = make_builtin_plugin(tmp_path / "plugin")
    rc = main(
        [
            "synthesize",
            "--plugin",
            str(plugin),
            str(input_path),
            str(tmp_path / "o.nii.gz"),
            "--device",
            "cpu",
        ]
    )
    assert rc == 2 and "expects MR input but this volume is CT" in capsys.readouterr().err


def test_plugins_check_and_list(tmp_path, monkeypatch, capsys):
    user = tmp_path / "user"
    make_builtin_plugin(user / "good")
    monkeypatch.setenv("SYNTHVIEW_PLUGIN_PATH", str(user))
    assert main(["plugins", "check", str(user / "good")]) == 0
    out = capsys.readouterr().out
    assert "ok    generator contract: fake input (1, 1, 32, 32) -> output (1, 1, 32, 32)" in out
    assert main(["plugins", "list", "-v"]) == 0
    out = capsys.readouterr().out
    assert "tiny-mr2ct" in out and "[user]" in out and "Intended use: tests only" in out
    (user / "good" / "latest_net_G.pth").write_bytes(b"x")
    assert main(["plugins", "check", "tiny-mr2ct"]) == 1
    assert "FAIL  generator weights" in capsys.readouterr().out


@pytest.mark.parametrize(("flags", "resampled"), [([], True), (["--keep-spacing"], False)])
def test_training_spacing_is_matched_unless_kept(tmp_path, mr_nifti, capsys, flags, resampled):
    input_path, original = mr_nifti  # sagittal acquisition: i runs A->P (0.9 mm), j S (1.1), k L (3)
    plugin = make_builtin_plugin(tmp_path / "plugin", spacing_mm=[2.0, 2.0])
    output = tmp_path / "sct.nii.gz"
    rc = main(
        ["synthesize", "--plugin", str(plugin), str(input_path), str(output), "--device", "cpu", *flags]
    )
    assert rc == 0, capsys.readouterr().err
    result = load_nifti(output)
    assert result.voxels.shape == original.voxels.shape
    grid = result.provenance.parameters["training_grid"]
    assert (grid is not None) == resampled
    if resampled:  # axial rows run A->P (i: 8 x 0.9 mm), columns R->L (k: 4 x 3 mm); stack along j
        assert grid["native_spacing_mm"] == [0.9, 3.0] and grid["training_shape"] == [4, 6]


@pytest.mark.parametrize("suffix", [".nii.gz", ""])
def test_super_resolution_writes_the_finer_grid_as_nifti_or_derived_dicom(tmp_path, capsys, suffix):
    import torch

    from app.io.loader import load_volume
    from tests.plugins.plugin_factory import make_torchscript_plugin

    class Identity(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    plugin = make_torchscript_plugin(
        tmp_path / "sr",
        Identity(),
        task="super-resolution",
        plane="coronal",
        output={"modality": "MR"},
        normalization={
            "input": {"method": "window", "low": 0, "high": 100},
            "output": {"method": "same_as_input"},
        },
        spacing_mm=[1.0, 1.0],
    )
    thick = Volume(
        np.random.default_rng(0).uniform(0, 100, (4, 10, 9)).astype(np.float32),
        Geometry(np.array([5.0, -3.0, 20.0]), np.array([1.0, 1.0, 4.0]), np.eye(3)),
        modality="MR",
    )
    input_path = save_nifti(thick, tmp_path / "thick.nii.gz")
    output = tmp_path / f"out{suffix}"  # (not "sr": that is the plugin folder, an input)
    rc = main(
        ["synthesize", "--plugin", str(plugin), str(input_path), str(output), "--device", "cpu", "--quiet"]
    )
    assert rc == 0, capsys.readouterr().err
    result = load_volume(output)
    assert result.voxels.shape == (16, 10, 9) and np.allclose(
        result.geometry.spacing_mm, [1, 1, 1], atol=1e-4
    )
    # Same field of view: the first 1 mm slice centre sits 1.5 mm above the first 4 mm one.
    assert result.geometry.origin_lps_mm[2] == pytest.approx(18.5, abs=1e-3)
    assert result.is_synthetic and result.provenance.plugin_name == "tiny-mr2ct"
    if suffix:  # the NIfTI sidecar keeps every run parameter
        assert result.provenance.parameters["output_grid"] == "training (super-resolution)"


def test_a_folder_already_holding_dicom_is_refused_before_the_generator_runs(
    tmp_path, mr_nifti, capsys, monkeypatch
):
    import app.plugins.runtime as runtime

    input_path, _ = mr_nifti
    plugin = make_builtin_plugin(tmp_path / "plugin")
    (tmp_path / "dcm").mkdir()
    (tmp_path / "dcm" / "IM00001.dcm").write_bytes(b"an earlier series")

    def must_not_run(*args, **kwargs):
        raise AssertionError("the generator ran although the output could not be written")

    monkeypatch.setattr(runtime, "synthesize", must_not_run)
    rc = main(["synthesize", "--plugin", str(plugin), str(input_path), str(tmp_path / "dcm"), "--quiet"])
    assert rc == 2
    assert "already holds a DICOM series (give --force" in capsys.readouterr().err

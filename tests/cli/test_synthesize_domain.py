"""``synthesize`` warns before running on an input outside the plugin's training domain."""

from __future__ import annotations

import numpy as np

from app.core.volume import Geometry, Volume
from app.io.nifti import save_nifti
from main import main
from tests.plugins.plugin_factory import make_builtin_plugin

DOMAIN = {"modalities": ["MR"], "spacing_mm": [1.0, 1.0, 1.0], "intensity_range": [0, 100]}


def _input(tmp_path):
    volume = Volume(
        np.random.default_rng(0).uniform(0, 500, (4, 12, 8)).astype(np.float32),
        Geometry(np.zeros(3), np.array([0.9, 1.1, 3.0]), np.eye(3)),
        modality="MR",
    )
    return save_nifti(volume, tmp_path / "t1.nii.gz")


def test_out_of_domain_input_is_warned_about_on_stderr_and_still_run(tmp_path, capsys):
    plugin = make_builtin_plugin(tmp_path / "plugin", training_domain=DOMAIN)
    output = tmp_path / "out.nii.gz"
    rc = main(["synthesize", "--plugin", str(plugin), str(_input(tmp_path)), str(output), "--quiet"])
    captured = capsys.readouterr()
    assert rc == 0 and output.exists()
    warnings = [
        line for line in captured.err.splitlines() if line.startswith("warning: outside the training")
    ]
    assert any("spacing" in line for line in warnings)
    assert any("outside the trained intensity range [0, 100]" in line for line in warnings)
    assert "warning" not in captured.out  # stdout stays the one result line


def test_strict_domain_refuses_and_writes_nothing(tmp_path, capsys):
    plugin = make_builtin_plugin(tmp_path / "plugin", training_domain=DOMAIN)
    output = tmp_path / "out.nii.gz"
    args = ["synthesize", "--plugin", str(plugin), str(_input(tmp_path)), str(output), "--strict-domain"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "refused by --strict-domain" in err and "Traceback" not in err
    assert not output.exists()


def test_in_domain_input_passes_strict_domain_silently(tmp_path, capsys):
    plugin = make_builtin_plugin(
        tmp_path / "plugin", training_domain={"modalities": ["MR"], "intensity_range": [0, 500]}
    )
    output = tmp_path / "out.nii.gz"
    rc = main(
        [
            "synthesize",
            "--plugin",
            str(plugin),
            str(_input(tmp_path)),
            str(output),
            "--strict-domain",
            "--quiet",
        ]
    )
    assert rc == 0 and output.exists()
    assert "warning" not in capsys.readouterr().err

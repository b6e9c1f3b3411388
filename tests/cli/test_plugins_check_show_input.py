"""``plugins check PLUGIN --show-input VOLUME OUT.png``: the slice the network is given, the
right way up, so a researcher can compare it with a training image (issue 22, orientation)."""

from __future__ import annotations

import io

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from main import main
from tests.plugins.plugin_factory import make_builtin_plugin


@pytest.fixture
def ras_nifti(tmp_path):
    """An identity-affine (RAS+) NIfTI: i runs to patient right, j to anterior, k to superior.
    A bright block sits at the anterior right of every axial slice; a dimmer one at the
    posterior left."""
    data = np.full((40, 48, 6), 100.0, dtype=np.float32)
    data[32:, 40:, :] = 1000.0  # large i (right), large j (anterior)
    data[:8, :8, :] = 400.0  # small i (left), small j (posterior)
    path = tmp_path / "ras.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    return path, data


def _png(path) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(path.read_bytes())))


def test_axial_input_is_radiological_anterior_up(tmp_path, ras_nifti, capsys):
    nifti, data = ras_nifti
    plugin = make_builtin_plugin(
        tmp_path / "p",
        normalization={
            "input": {"method": "window", "low": 0, "high": 1000},
            "output": {"method": "same_as_input"},
        },
    )
    out = tmp_path / "seen.png"
    assert main(["plugins", "check", str(plugin), "--show-input", str(nifti), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "network input image: wrote" in printed and "slice 4 of 6, 48 x 40" in printed
    assert "rows run anterior to posterior" in printed
    pixels = _png(out)
    assert pixels.shape == (48, 40)  # rows: j (anterior-posterior), columns: i (right-left)
    assert pixels[:8, :8].min() == 255  # anterior right: top left (radiological)
    assert pixels[-8:, -8:].max() == round(0.4 * 255)  # posterior left: bottom right
    # The guide's recipe for a RAS+ array gives the same picture.
    expected = data[::-1, ::-1, 3].T
    np.testing.assert_allclose(pixels, np.clip(expected, 0, 1000) * 0.255, atol=1)


def test_existing_output_and_3d_plugin_are_refused_in_one_line(tmp_path, ras_nifti, capsys):
    nifti, _ = ras_nifti
    plugin = make_builtin_plugin(tmp_path / "p")
    out = tmp_path / "seen.png"
    out.write_bytes(b"keep me")
    assert main(["plugins", "check", str(plugin), "--show-input", str(nifti), str(out)]) == 1
    line = [x for x in capsys.readouterr().out.splitlines() if "network input image" in x][0]
    assert line == f"FAIL  network input image: {out} already exists (give --force to replace it)"
    assert out.read_bytes() == b"keep me"
    assert main(["plugins", "check", str(plugin), "--show-input", str(nifti), str(out), "--force"]) == 0
    assert _png(out).shape == (48, 40)
    assert main(["plugins", "check", str(plugin), "--show-input", str(nifti), str(nifti)]) == 1
    assert "is also an input" in capsys.readouterr().out
    assert main(["plugins", "check", str(plugin), "--show-input", str(nifti), str(plugin / "plugin.yaml"), "--force"]) == 1
    assert "inside the input folder" in capsys.readouterr().out

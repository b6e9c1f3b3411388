"""2D plugins with ``input_nc: 3`` take colour images: R, G, B go to the network's three input
channels (a grey image is repeated in all three); a colour image into a greyscale plugin is
refused in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml

from app.core.volume import Geometry, Volume
from app.io.loader import load_volume
from app.io.nifti import load_nifti, save_nifti
from app.plugins.errors import InputMismatchError
from app.plugins.loading import load_plugin
from app.plugins.manifest import load_manifest
from app.plugins.runtime import synthesize
from main import main
from tests.plugins.plugin_factory import make_torchscript_plugin

REPO = Path(__file__).resolve().parents[2]


class RedMinusBlue(torch.nn.Module):
    """Channel 0 minus channel 2: 0 everywhere for a grey image repeated in the three channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0:1] - x[:, 2:3]


class SwapRedBlue(torch.nn.Module):
    """RGB -> BGR: an RGB output whose channels must come back in their places."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1)


# Network range [0, 1] from an input window 0..255 and back to 0..255: a network value v is
# the colour value 255 v, so R - B comes back as R - B itself.
COLOUR_NORMALIZATION = {
    "network_range": [0, 1],
    "input": {"method": "window", "low": 0, "high": 255},
    "output": {"method": "window", "low": 0, "high": 255},
}


def colour_plugin(
    folder: Path, module: torch.nn.Module, input_nc: int = 3, output_nc: int = 1, normalization=None
):
    make_torchscript_plugin(
        folder,
        module,
        name="tiny-rgb",
        input={"modality": "US"},
        output={"modality": "US", "units": ""},
        normalization=normalization or COLOUR_NORMALIZATION,
        architecture={"type": "torchscript", "input_nc": input_nc, "output_nc": output_nc},
        training_domain={"modalities": ["US"]},
    )
    return load_plugin(load_manifest(folder / "plugin.yaml"))


def colour_volume(direction=None) -> Volume:
    rng = np.random.default_rng(1)
    voxels = rng.integers(0, 256, size=(3, 10, 14, 3), dtype=np.uint8)
    geometry = Geometry(
        np.array([5.0, -3.0, 7.0]), np.array([0.5, 0.6, 2.0]), np.eye(3) if direction is None else direction
    )
    return Volume(voxels, geometry, modality="US", name="us.dcm")


def red_minus_blue(voxels: np.ndarray) -> np.ndarray:
    return voxels[..., 0].astype(np.float32) - voxels[..., 2].astype(np.float32)


DIRECTIONS = {
    "axial": np.eye(3),
    "flipped": np.diag([-1.0, -1.0, 1.0]),
    "stored-sagittal": np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
}


@pytest.mark.parametrize("direction", DIRECTIONS.values(), ids=DIRECTIONS.keys())
def test_colour_channels_reach_the_network_channels(tmp_path, direction):
    plugin = colour_plugin(tmp_path / "rgb", RedMinusBlue())
    volume = colour_volume(direction)
    result = synthesize(plugin, volume)
    output = result.volume
    assert output.is_synthetic and not output.is_colour
    assert output.voxels.shape == volume.voxels.shape[:3]
    assert output.geometry is volume.geometry
    np.testing.assert_allclose(output.voxels, red_minus_blue(volume.voxels), atol=1e-3)
    assert np.abs(output.voxels).max() > 100  # not the zeros a grey repeat would give
    assert any("R, G, B channels" in message for message in result.messages)


def test_a_grey_image_is_repeated_in_the_three_channels(tmp_path):
    plugin = colour_plugin(tmp_path / "rgb", RedMinusBlue())
    colour = colour_volume()
    grey = Volume(colour.voxels[..., 1].astype(np.float32), colour.geometry, modality="US", name="grey")
    result = synthesize(plugin, grey)
    assert np.array_equal(result.volume.voxels, np.zeros(grey.voxels.shape, np.float32))
    assert any("repeated in every channel" in message for message in result.messages)


def test_three_output_channels_give_an_rgb_volume_written_as_rgb24_nifti(tmp_path):
    plugin = colour_plugin(tmp_path / "bgr", SwapRedBlue(), output_nc=3)
    volume = colour_volume(DIRECTIONS["flipped"])
    output = synthesize(plugin, volume).volume
    assert output.is_colour and output.is_synthetic and output.voxels.dtype == np.uint8
    assert np.array_equal(output.voxels, volume.voxels[..., ::-1])
    path = tmp_path / "bgr.nii.gz"
    save_nifti(output, path)
    back = load_nifti(path)
    assert back.is_colour and back.is_synthetic
    assert np.array_equal(back.voxels, volume.voxels[..., ::-1])


def test_rgb_output_needs_an_output_scaling_to_0_255(tmp_path):
    plugin = colour_plugin(
        tmp_path / "bad",
        SwapRedBlue(),
        output_nc=3,
        normalization={**COLOUR_NORMALIZATION, "output": {"method": "window", "low": -1000, "high": 1000}},
    )
    with pytest.raises(InputMismatchError, match="does not map to 0..255"):
        synthesize(plugin, colour_volume())


def test_a_colour_image_into_a_greyscale_plugin_is_refused_in_one_line(tmp_path, capsys):
    plugin = colour_plugin(tmp_path / "grey", RedMinusBlue(), input_nc=1)
    with pytest.raises(InputMismatchError, match="use a 2D plugin with architecture input_nc: 3") as caught:
        synthesize(plugin, colour_volume())
    assert "\n" not in str(caught.value)
    save_nifti(colour_volume(), tmp_path / "colour.nii.gz")
    out = tmp_path / "out.nii.gz"
    code = main(
        [
            "synthesize",
            "--quiet",
            "--plugin",
            str(tmp_path / "grey"),
            str(tmp_path / "colour.nii.gz"),
            str(out),
        ]
    )
    assert code == 2 and not out.exists()
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "input_nc: 3" in error[0] and "Traceback" not in error[0]


def test_cli_synthesizes_an_ultrasound_dicom_through_the_three_channels(tmp_path):
    data_store = pytest.importorskip("data_store")
    dicom = Path(data_store.__file__).parent / "data" / "US1_UNCR.dcm"
    colour_plugin(tmp_path / "rgb", RedMinusBlue())
    out = tmp_path / "us-r-minus-b.nii.gz"
    done = subprocess.run(
        [
            sys.executable,
            "main.py",
            "synthesize",
            "--quiet",
            "--plugin",
            str(tmp_path / "rgb"),
            str(dicom),
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert done.returncode == 0, done.stderr
    source = load_volume(dicom)
    written = load_nifti(out)
    assert written.is_synthetic and written.voxels.shape == source.voxels.shape[:3]
    np.testing.assert_allclose(written.voxels, red_minus_blue(source.voxels), atol=1e-2)
    assert np.abs(written.voxels).max() > 50
    assert nib.load(out).header["descrip"].tobytes().startswith(b"SYNTHETIC")


class FirstChannel(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0:1]


def with_training_spacing(folder: Path):
    manifest = yaml.safe_load((folder / "plugin.yaml").read_text())
    manifest["spacing_mm"] = [0.25, 0.3, 2.0]  # twice as fine in plane: up to the training grid and back
    (folder / "plugin.yaml").write_text(yaml.safe_dump(manifest))
    return load_plugin(load_manifest(folder / "plugin.yaml"))


def test_colour_input_is_resampled_to_the_training_spacing_and_back(tmp_path):
    """Resampling is linear, so R - B through the training grid is the grey identity plugin's
    resampled R minus its resampled B."""
    colour_plugin(tmp_path / "rgb", RedMinusBlue())
    colour_plugin(tmp_path / "grey", FirstChannel(), input_nc=1)
    rgb, grey = with_training_spacing(tmp_path / "rgb"), with_training_spacing(tmp_path / "grey")
    volume = colour_volume()
    result = synthesize(rgb, volume)
    assert result.volume.voxels.shape == volume.voxels.shape[:3]
    assert result.volume.provenance.parameters["training_grid"] is not None

    def through_grid(channel: int) -> np.ndarray:
        plane = Volume(volume.voxels[..., channel].astype(np.float32), volume.geometry, modality="US")
        return synthesize(grey, plane).volume.voxels

    np.testing.assert_allclose(result.volume.voxels, through_grid(0) - through_grid(2), atol=1e-2)


def test_rgb_output_scaled_same_as_input_stays_uint8_within_0_255(tmp_path):
    same_as_input = {
        "input": {"method": "window", "low": 10, "high": 245},  # clips: the excess is passed through
        "output": {"method": "same_as_input"},
    }
    plugin = colour_plugin(tmp_path / "same", SwapRedBlue(), output_nc=3, normalization=same_as_input)
    volume = colour_volume()
    output = synthesize(plugin, volume).volume
    assert output.is_colour and output.voxels.dtype == np.uint8
    source = volume.voxels.astype(np.float32)
    passed_through = source - np.clip(source, 10, 245)  # per voxel and channel, as for grey images
    expected = np.clip(np.clip(source[..., ::-1], 10, 245) + passed_through, 0, 255)
    assert np.abs(output.voxels.astype(np.float32) - expected).max() <= 1.0

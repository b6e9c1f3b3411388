"""A researcher's generator that misbehaves on real data: a clear PluginError, never a traceback
or a silently wrong volume (NaN output, an exception inside the model, a wrong output shape,
an output outside the network range, an RGB-trained generator on grey images)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.core.volume import Geometry, Volume
from app.plugins.contract import check_plugin
from app.plugins.errors import PluginError
from app.plugins.loading import load_plugin
from app.plugins.manifest import ArchitectureSpec, load_manifest
from app.plugins.runtime import RunOptions, synthesize
from tests.plugins.plugin_factory import make_builtin_plugin, make_torchscript_plugin


def mr_volume(shape=(6, 40, 48)) -> Volume:
    voxels = np.random.default_rng(0).uniform(0, 1000, size=shape).astype(np.float32)
    return Volume(voxels, Geometry.identity(), modality="MR", name="t1.nii.gz")


class NanOnWideImages(torch.nn.Module):
    """Passes the contract's 32 px fake input, returns NaN on a real 48 px wide slice."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 32:
            return x * float("nan")
        return x


class RaisesOnWideImages(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 32:
            raise RuntimeError("boom inside the model")
        return x


class HalvesWideImages(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 32:
            return x[..., ::2, ::2]
        return x


class DoublesImages(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")


class TimesThree(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 3.0


def _run(tmp_path, module, **overrides):
    folder = make_torchscript_plugin(tmp_path / "plugin", module, **overrides)
    return synthesize(load_plugin(load_manifest(folder)), mr_volume(), RunOptions(device="cpu", batch_size=4))


def test_nan_output_is_refused_with_the_slices_named(tmp_path):
    with pytest.raises(PluginError, match=r"NaN or infinite values .* slices 1-6 of 6"):
        _run(tmp_path, NanOnWideImages())


def test_an_exception_inside_the_generator_is_a_plugin_error_naming_it(tmp_path):
    with pytest.raises(PluginError) as caught:
        _run(tmp_path, RaisesOnWideImages())
    text = str(caught.value)
    assert "tiny-mr2ct failed on slices 1-4 of 6" in text
    assert "boom inside the model" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("module", [HalvesWideImages(), DoublesImages()], ids=["smaller", "larger"])
def test_a_wrong_output_size_is_a_plugin_error_not_a_crop_or_a_crash(tmp_path, module):
    with pytest.raises(
        PluginError, match=r"returned images of shape .* for input .* same batch and image size"
    ):
        _run(tmp_path, module)


def test_output_outside_the_network_range_is_reported(tmp_path):
    result = _run(tmp_path, TimesThree())
    assert any("outside the network range [-1.0, 1.0]" in m and "[-3, 3]" in m for m in result.messages)
    assert result.volume.provenance.parameters["messages"] == result.messages


def test_rgb_trained_generator_gets_the_grey_slice_in_every_channel(tmp_path):
    # pix2pix/CycleGAN default to input_nc 3: a grey PNG is read as three equal channels.
    spec = ArchitectureSpec("resnet_6blocks", 3, 3, ngf=4, norm="instance")
    folder = make_builtin_plugin(tmp_path / "rgb", spec)
    assert all(step.passed for step in check_plugin(folder)), check_plugin(folder)
    plugin = load_plugin(load_manifest(folder))
    volume = mr_volume()
    result = synthesize(plugin, volume, RunOptions(device="cpu"))
    assert result.volume.voxels.shape == volume.voxels.shape
    assert any("3 input channels" in m for m in result.messages)

    # Same as feeding one axial slice, repeated, by hand (centre output channel kept).
    manifest = plugin.manifest
    from app.plugins.normalization import fit_input_scaling, from_network, to_network

    fitted = fit_input_scaling(volume.voxels, manifest.normalization)
    slice_2 = torch.from_numpy(to_network(volume.voxels[2], fitted))[None, None].repeat(1, 3, 1, 1)
    with torch.inference_mode():
        expected = plugin.generator(slice_2)[0, 1].numpy()
    expected = from_network(expected, manifest.normalization, fitted)
    np.testing.assert_allclose(result.volume.voxels[2], expected, rtol=1e-4, atol=1e-2)

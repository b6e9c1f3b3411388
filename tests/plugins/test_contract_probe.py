"""``plugins check`` probes with a size the network can take (issue 22): from patch_size or
size_multiple; when the network refuses it, the check finds the side it needs and names the
manifest field to set. TorchScript and ONNX U-Nets (7 halvings: 128 px at least) are the cases
that failed with a fixed 32 px probe; onnxruntime prints nothing to stderr."""

from __future__ import annotations

import warnings

import pytest
import torch
import yaml

from app.plugins.architectures import build_generator
from app.plugins.contract import check_plugin
from app.plugins.manifest import ArchitectureSpec
from tests.plugins.plugin_factory import make_torchscript_plugin, manifest_data, sha256, write_manifest

UNET = ArchitectureSpec("unet_128", 1, 1, ngf=2, norm="instance")


def _unet() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_generator(UNET).eval()


def _onnx_unet_plugin(folder, **overrides):
    folder.mkdir(parents=True)
    path = folder / "generator.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _unet(),
            torch.zeros(1, 1, 128, 128),
            str(path),
            dynamo=False,
            input_names=["image"],
            output_names=["synthetic"],
            dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "synthetic": {0: "n", 2: "h", 3: "w"}},
        )
    write_manifest(folder, manifest_data(path.name, sha256(path), architecture={"type": "onnx"}, **overrides))
    return folder


def _set(folder, **fields):
    data = yaml.safe_load((folder / "plugin.yaml").read_text())
    data.update(fields)
    write_manifest(folder, data)


def _contract(steps):
    return next(step for step in steps if step.name == "generator contract")


@pytest.fixture(scope="module")
def torchscript_unet(tmp_path_factory):
    return make_torchscript_plugin(tmp_path_factory.mktemp("ts") / "unet", _unet())


@pytest.fixture(scope="module")
def onnx_unet(tmp_path_factory):
    return _onnx_unet_plugin(tmp_path_factory.mktemp("onnx") / "unet")


@pytest.mark.parametrize("kind", ["torchscript", "onnx"])
def test_unet_without_size_multiple_fails_naming_the_size_to_set(kind, torchscript_unet, onnx_unet, capfd):
    folder = torchscript_unet if kind == "torchscript" else onnx_unet
    contract = _contract(check_plugin(folder))
    assert not contract.passed
    first = contract.detail.splitlines()[0]
    assert first.startswith("the network fails on 32 x 32 images but runs on 128 x 128: set size_multiple: 128")
    assert "size_multiple (not set" in first
    assert capfd.readouterr().err == ""  # no onnxruntime line, no torch warning


@pytest.mark.parametrize("kind", ["torchscript", "onnx"])
def test_unet_with_size_multiple_or_patch_size_passes(kind, torchscript_unet, onnx_unet, tmp_path, capfd):
    source = torchscript_unet if kind == "torchscript" else onnx_unet
    folder = tmp_path / "p"
    folder.mkdir()
    for file in source.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    _set(folder, size_multiple=128)
    contract = _contract(check_plugin(folder))
    assert contract.passed, contract.detail
    assert "fake input (1, 1, 128, 128)" in contract.detail and "size from size_multiple 128" in contract.detail
    data = yaml.safe_load((folder / "plugin.yaml").read_text())
    del data["size_multiple"]
    data["patch_size"] = [128, 128]
    write_manifest(folder, data)
    contract = _contract(check_plugin(folder))
    assert contract.passed and "size from patch_size [128, 128]" in contract.detail
    assert capfd.readouterr().err == ""


def test_a_patch_size_the_network_cannot_take_is_named(torchscript_unet, tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    for file in torchscript_unet.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    _set(folder, patch_size=[48, 48])
    contract = _contract(check_plugin(folder))
    first, *details = contract.detail.splitlines()
    assert not contract.passed
    assert first.startswith("the network fails on a fake input (1, 1, 48, 48) whose size comes from patch_size [48, 48]: set patch_size")
    assert details and details[0].startswith("(the network said:")


class _NeverRuns(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(7, -1)


def test_a_network_failing_at_every_size_says_which_field_sets_the_probe(tmp_path):
    folder = make_torchscript_plugin(tmp_path / "p", _NeverRuns())
    contract = _contract(check_plugin(folder))
    assert not contract.passed
    assert contract.detail.splitlines()[0].startswith(
        "the network fails on a fake input (1, 1, 32, 32) whose size comes from size_multiple (not set; 1"
    )


def test_builtin_unet_probe_uses_its_minimum(tmp_path):
    from tests.plugins.plugin_factory import make_builtin_plugin

    folder = make_builtin_plugin(tmp_path / "p", spec=UNET)
    contract = _contract(check_plugin(folder))
    assert contract.passed and "fake input (1, 1, 128, 128)" in contract.detail
    assert "size from architecture unet_128 [128, 128]" in contract.detail


class _ThreeChannels(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))


def test_channel_count_mismatch_names_input_nc_not_the_size(tmp_path):
    folder = make_torchscript_plugin(tmp_path / "ts", _ThreeChannels())
    first = _contract(check_plugin(folder)).detail.splitlines()[0]
    assert first == "the network takes 3 input channel(s), the manifest gives 1: set architecture.input_nc: 3"
    _set(folder, architecture={"type": "torchscript", "input_nc": 3})
    assert _contract(check_plugin(folder)).passed  # the grey slice goes to all three channels


def test_onnx_declared_channels_and_rank_are_checked_before_running(tmp_path):
    from tests.plugins.test_onnx_fixed_shapes import negating_onnx_plugin

    three = negating_onnx_plugin(tmp_path / "three", ["n", 3, "h", "w"])
    assert _contract(check_plugin(three)).detail == (
        "the network takes 3 input channel(s), the manifest gives 1: set architecture.input_nc: 3"
    )
    volumetric = negating_onnx_plugin(tmp_path / "vol", ["n", 1, "d", "h", "w"])
    assert _contract(check_plugin(volumetric)).detail == (
        "the ONNX model takes 3D images (input rank 5), the manifest says dimensionality 2D: set dimensionality: 3D"
    )

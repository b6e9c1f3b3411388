"""Built-in generators load pix2pix/CycleGAN ``latest_net_G.pth`` state dicts key for key.

The expected keys and shapes below are enumerated from the public implementation's module
layout (models/networks.py of pytorch-CycleGAN-and-pix2pix), independently of our classes.
"""

from __future__ import annotations

import math

import pytest
import torch

from app.plugins.architectures import build_generator, load_builtin_generator
from app.plugins.errors import ArchitectureMismatchError
from app.plugins.manifest import ArchitectureSpec


def _conv(keys, name, shape, bias):
    keys[f"{name}.weight"] = shape
    if bias:
        keys[f"{name}.bias"] = (shape[1] if "T" in name else shape[0],)


def _norm(keys, name, channels, norm):
    if norm == "batch":  # affine batch norm with running statistics; instance norm has no keys
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{name}.{leaf}"] = (channels,)
        keys[f"{name}.num_batches_tracked"] = ()


def reference_resnet_keys(input_nc, output_nc, ngf, n_blocks, norm, dropout):
    keys: dict = {}
    bias = norm == "instance"
    keys.update({"model.1.weight": (ngf, input_nc, 7, 7)} | ({"model.1.bias": (ngf,)} if bias else {}))
    _norm(keys, "model.2", ngf, norm)
    for index, (cin, cout) in zip((4, 7), ((ngf, 2 * ngf), (2 * ngf, 4 * ngf)), strict=True):
        keys[f"model.{index}.weight"] = (cout, cin, 3, 3)
        if bias:
            keys[f"model.{index}.bias"] = (cout,)
        _norm(keys, f"model.{index + 1}", cout, norm)
    dim = 4 * ngf
    second_conv = 6 if dropout else 5
    for block in range(10, 10 + n_blocks):
        for conv_index in (1, second_conv):
            keys[f"model.{block}.conv_block.{conv_index}.weight"] = (dim, dim, 3, 3)
            if bias:
                keys[f"model.{block}.conv_block.{conv_index}.bias"] = (dim,)
            _norm(keys, f"model.{block}.conv_block.{conv_index + 1}", dim, norm)
    up = 10 + n_blocks
    for index, (cin, cout) in zip((up, up + 3), ((4 * ngf, 2 * ngf), (2 * ngf, ngf)), strict=True):
        keys[f"model.{index}.weight"] = (cin, cout, 3, 3)  # ConvTranspose2d: (in, out, k, k)
        if bias:
            keys[f"model.{index}.bias"] = (cout,)
        _norm(keys, f"model.{index + 1}", cout, norm)
    keys[f"model.{up + 7}.weight"] = (output_nc, ngf, 7, 7)
    keys[f"model.{up + 7}.bias"] = (output_nc,)
    return keys


def reference_unet_keys(input_nc, output_nc, num_downs, ngf, norm):
    keys: dict = {}
    bias = norm == "instance"
    levels = [(ngf, 2 * ngf), (2 * ngf, 4 * ngf), (4 * ngf, 8 * ngf)] + [(8 * ngf, 8 * ngf)] * (num_downs - 5)
    keys["model.model.0.weight"] = (ngf, input_nc, 4, 4)
    if bias:
        keys["model.model.0.bias"] = (ngf,)
    keys["model.model.3.weight"] = (2 * ngf, output_nc, 4, 4)
    keys["model.model.3.bias"] = (output_nc,)
    prefix = "model.model.1.model"
    for outer, inner in levels:
        keys[f"{prefix}.1.weight"] = (inner, outer, 4, 4)
        if bias:
            keys[f"{prefix}.1.bias"] = (inner,)
        _norm(keys, f"{prefix}.2", inner, norm)
        keys[f"{prefix}.5.weight"] = (2 * inner, outer, 4, 4)
        if bias:
            keys[f"{prefix}.5.bias"] = (outer,)
        _norm(keys, f"{prefix}.6", outer, norm)
        prefix = f"{prefix}.3.model"
    inner = outer = 8 * ngf  # innermost
    keys[f"{prefix}.1.weight"] = (inner, outer, 4, 4)
    keys[f"{prefix}.3.weight"] = (inner, outer, 4, 4)
    if bias:
        keys[f"{prefix}.1.bias"] = (inner,)
        keys[f"{prefix}.3.bias"] = (outer,)
    _norm(keys, f"{prefix}.4", outer, norm)
    return keys


def _random_state_dict(keys: dict) -> dict:
    generator = torch.Generator().manual_seed(0)
    return {
        k: (
            torch.tensor(3)
            if k.endswith("num_batches_tracked")
            else torch.rand(shape, generator=generator) + 0.1
        )
        for k, shape in keys.items()
    }


CASES = [
    ("resnet_9blocks", "instance", False, reference_resnet_keys(3, 3, 8, 9, "instance", False)),
    ("resnet_9blocks", "batch", True, reference_resnet_keys(3, 3, 8, 9, "batch", True)),
    ("resnet_6blocks", "instance", True, reference_resnet_keys(3, 3, 8, 6, "instance", True)),
    ("unet_128", "batch", True, reference_unet_keys(3, 3, 7, 8, "batch")),
    ("unet_256", "instance", False, reference_unet_keys(3, 3, 8, 8, "instance")),
]


@pytest.mark.parametrize(
    ("arch", "norm", "dropout", "expected"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_reference_state_dict_loads_strictly_key_for_key(arch, norm, dropout, expected):
    spec = ArchitectureSpec(arch, 3, 3, ngf=8, norm=norm, use_dropout=dropout)
    ours = {k: tuple(v.shape) for k, v in build_generator(spec).state_dict().items()}
    assert ours == expected
    state_dict = _random_state_dict(expected)
    network = load_builtin_generator(spec, state_dict)
    loaded = network.state_dict()
    assert all(torch.equal(loaded[k], state_dict[k]) for k in expected)
    assert not network.training


def test_cyclegan_default_generator_has_the_published_parameter_count():
    # CycleGAN's resnet_9blocks, 3->3 channels, ngf 64, instance norm: 11.378 M parameters.
    network = build_generator(ArchitectureSpec("resnet_9blocks", 3, 3, 64, "instance"))
    assert sum(p.numel() for p in network.parameters()) == 11_378_179


def test_hand_checkable_output_constant_tanh_of_final_bias():
    # All weights zero: every feature map is zero (instance norm of zeros is zero, residual
    # blocks add zero), so the output is tanh(final bias) at every pixel.
    spec = ArchitectureSpec("resnet_6blocks", 1, 1, ngf=4, norm="instance")
    keys = reference_resnet_keys(1, 1, 4, 6, "instance", False)
    state_dict = {k: torch.zeros(shape) for k, shape in keys.items()}
    state_dict["model.23.bias"] = torch.tensor([0.5])
    network = load_builtin_generator(spec, state_dict)
    output = network(torch.randn(2, 1, 12, 16))
    assert output.shape == (2, 1, 12, 16)
    assert torch.allclose(output, torch.full_like(output, math.tanh(0.5)), atol=1e-6)


def test_hand_checkable_unet_identity_path():
    # Only the outermost transposed conv's bias is set: output = tanh(bias[c]) per channel.
    spec = ArchitectureSpec("unet_128", 1, 2, ngf=2, norm="batch")
    keys = reference_unet_keys(1, 2, 7, 2, "batch")
    state_dict = {k: torch.zeros(shape) for k, shape in keys.items()}
    for k in keys:
        if k.endswith("running_var"):
            state_dict[k] = torch.ones(keys[k])
    state_dict["model.model.3.bias"] = torch.tensor([0.25, -1.0])
    output = load_builtin_generator(spec, state_dict)(torch.randn(1, 1, 128, 128))
    assert torch.allclose(output[0, 0], torch.full((128, 128), math.tanh(0.25)), atol=1e-6)
    assert torch.allclose(output[0, 1], torch.full((128, 128), math.tanh(-1.0)), atol=1e-6)


def test_legacy_instance_norm_running_stats_are_dropped_like_the_reference_loader():
    spec = ArchitectureSpec("resnet_6blocks", 1, 1, ngf=4, norm="instance")
    state_dict = _random_state_dict(reference_resnet_keys(1, 1, 4, 6, "instance", False))
    state_dict["model.2.running_mean"] = torch.zeros(4)
    state_dict["model.2.running_var"] = torch.ones(4)
    load_builtin_generator(spec, state_dict)  # no error


def test_wrong_architecture_is_a_clear_error_with_a_hint():
    spec = ArchitectureSpec("resnet_6blocks", 1, 1, ngf=4, norm="instance")
    unet_weights = _random_state_dict(reference_unet_keys(1, 1, 7, 4, "instance"))
    with pytest.raises(ArchitectureMismatchError) as caught:
        load_builtin_generator(spec, unet_weights)
    text = str(caught.value)
    first, *details = text.splitlines()
    assert first == "weights have type unet_128, manifest says resnet_6blocks: set architecture.type: unet_128"
    assert "do not fit architecture resnet_6blocks" in details[0] and "missing from the file" in text


def test_dropout_and_channel_mismatch_are_explained():
    spec = ArchitectureSpec("resnet_6blocks", 1, 1, ngf=4, norm="instance", use_dropout=False)
    with_dropout = _random_state_dict(reference_resnet_keys(1, 1, 4, 6, "instance", True))
    with pytest.raises(ArchitectureMismatchError, match="set architecture.use_dropout: true"):
        load_builtin_generator(spec, with_dropout)
    three_channel = _random_state_dict(reference_resnet_keys(3, 1, 4, 6, "instance", False))
    with pytest.raises(
        ArchitectureMismatchError, match=r"model.1.weight: file \[4, 3, 7, 7\] vs architecture \[4, 1, 7, 7\]"
    ):
        load_builtin_generator(spec, three_channel)


@pytest.mark.parametrize(
    ("declared", "expected_hint"),
    [
        ({"norm": "batch"}, "weights have norm instance, manifest says batch: set architecture.norm: instance"),
        ({"use_dropout": True}, "weights have use_dropout false, manifest says true: set architecture.use_dropout: false"),
        ({"ngf": 8}, "weights have ngf 4, manifest says 8: set architecture.ngf: 4"),
        ({"input_nc": 3}, "weights have input_nc 1, manifest says 3: set architecture.input_nc: 1"),
        ({"output_nc": 2}, "weights have output_nc 1, manifest says 2: set architecture.output_nc: 1"),
    ],
)
def test_each_declared_field_that_does_not_match_the_file_is_named(declared, expected_hint):
    # The file: a CycleGAN resnet_6blocks generator, ngf 4, instance norm, no dropout, 1 channel.
    weights = _random_state_dict(reference_resnet_keys(1, 1, 4, 6, "instance", False))
    fields = {"input_nc": 1, "output_nc": 1, "ngf": 4, "norm": "instance", "use_dropout": False, **declared}
    spec = ArchitectureSpec("resnet_6blocks", **fields)
    with pytest.raises(ArchitectureMismatchError) as caught:
        load_builtin_generator(spec, weights)
    assert str(caught.value).splitlines()[0] == expected_hint  # the fix is the first line


def test_unet_width_hint_reads_the_first_unet_convolution():
    weights = _random_state_dict(reference_unet_keys(1, 1, 7, 4, "instance"))
    with pytest.raises(ArchitectureMismatchError, match=r"^weights have ngf 4, manifest says 8: set architecture.ngf: 4\n"):
        load_builtin_generator(ArchitectureSpec("unet_128", 1, 1, ngf=8, norm="instance"), weights)

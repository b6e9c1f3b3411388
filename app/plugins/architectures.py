"""Built-in generators whose state dicts match the public pix2pix/CycleGAN implementation.

Checkpoints saved by the widely used pytorch-CycleGAN-and-pix2pix code (``latest_net_G.pth``)
are plain state dicts whose keys follow its module layout (``model.1.weight``,
``model.10.conv_block.5.weight``, ``model.model.1.model.3...``). These classes rebuild that
layout (written independently) so such a file loads with ``strict=True``, key for key and
shape for shape, and a user adds their generator with a manifest and nothing else.

Layout facts that decide the keys:
* convolutions before a norm layer carry a bias only with instance norm (batch norm has its own
  shift); the last convolution always has a bias;
* instance norm is affine-free and keeps no running statistics (no keys at all);
* a dropout layer, when enabled, takes a slot in the Sequential and shifts later indices.
"""

from __future__ import annotations

import torch
from torch import nn

from app.plugins.errors import ArchitectureMismatchError
from app.plugins.manifest import ArchitectureSpec


def norm_factory(norm: str):
    """A constructor ``channels -> norm layer`` for 'instance' or 'batch'."""
    if norm == "instance":
        return lambda channels: nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "batch":
        return lambda channels: nn.BatchNorm2d(channels, affine=True)
    raise ValueError(f"unknown norm {norm!r}; use 'instance' or 'batch'")


class ResidualBlock(nn.Module):
    """x + (pad, conv3x3, norm, relu, [dropout], pad, conv3x3, norm)(x); keys ``conv_block.*``."""

    def __init__(self, channels: int, norm: str, use_dropout: bool) -> None:
        super().__init__()
        make_norm = norm_factory(norm)
        with_bias = norm == "instance"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=with_bias),
            make_norm(channels),
            nn.ReLU(inplace=True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, kernel_size=3, bias=with_bias),
            make_norm(channels),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """7x7 stem, two stride-2 downsamplings, ``n_blocks`` residual blocks, two transposed-conv
    upsamplings, 7x7 head with tanh. Sides must be multiples of 4."""

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        ngf: int = 64,
        norm: str = "instance",
        use_dropout: bool = False,
        n_blocks: int = 9,
    ) -> None:
        super().__init__()
        make_norm = norm_factory(norm)
        with_bias = norm == "instance"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, bias=with_bias),
            make_norm(ngf),
            nn.ReLU(inplace=True),
        ]
        channels = ngf
        for _ in range(2):
            layers += [
                nn.Conv2d(channels, channels * 2, kernel_size=3, stride=2, padding=1, bias=with_bias),
                make_norm(channels * 2),
                nn.ReLU(inplace=True),
            ]
            channels *= 2
        layers += [ResidualBlock(channels, norm, use_dropout) for _ in range(n_blocks)]
        for _ in range(2):
            layers += [
                nn.ConvTranspose2d(
                    channels,
                    channels // 2,
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    output_padding=1,
                    bias=with_bias,
                ),
                make_norm(channels // 2),
                nn.ReLU(inplace=True),
            ]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, output_nc, kernel_size=7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetLevel(nn.Module):
    """One U-Net level: down (conv 4x4 stride 2), the inner levels, up (transposed conv), and a
    skip connection concatenating this level's input with its output (except the outermost)."""

    def __init__(
        self,
        outer_channels: int,
        inner_channels: int,
        norm: str,
        inner: UnetLevel | None = None,
        in_channels: int | None = None,
        outermost: bool = False,
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        make_norm = norm_factory(norm)
        with_bias = norm == "instance"
        in_channels = outer_channels if in_channels is None else in_channels
        down_conv = nn.Conv2d(in_channels, inner_channels, kernel_size=4, stride=2, padding=1, bias=with_bias)
        if outermost:
            layers = [
                down_conv,
                inner,
                nn.ReLU(inplace=True),
                nn.ConvTranspose2d(inner_channels * 2, outer_channels, kernel_size=4, stride=2, padding=1),
                nn.Tanh(),
            ]
        elif inner is None:  # innermost: the 1x1 bottleneck, no skip input from below
            layers = [
                nn.LeakyReLU(0.2, inplace=True),
                down_conv,
                nn.ReLU(inplace=True),
                nn.ConvTranspose2d(
                    inner_channels, outer_channels, kernel_size=4, stride=2, padding=1, bias=with_bias
                ),
                make_norm(outer_channels),
            ]
        else:
            layers = [
                nn.LeakyReLU(0.2, inplace=True),
                down_conv,
                make_norm(inner_channels),
                inner,
                nn.ReLU(inplace=True),
                nn.ConvTranspose2d(
                    inner_channels * 2, outer_channels, kernel_size=4, stride=2, padding=1, bias=with_bias
                ),
                make_norm(outer_channels),
            ]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], dim=1)


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` halvings (7 for unet_128, 8 for unet_256); the side must be a
    multiple of 2**num_downs. Dropout (if on) sits in the ngf*8 middle levels only."""

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        num_downs: int,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError("a U-Net generator needs at least 5 levels")
        level = UnetLevel(ngf * 8, ngf * 8, norm)
        for _ in range(num_downs - 5):
            level = UnetLevel(ngf * 8, ngf * 8, norm, inner=level, use_dropout=use_dropout)
        level = UnetLevel(ngf * 4, ngf * 8, norm, inner=level)
        level = UnetLevel(ngf * 2, ngf * 4, norm, inner=level)
        level = UnetLevel(ngf, ngf * 2, norm, inner=level)
        self.model = UnetLevel(output_nc, ngf, norm, inner=level, in_channels=input_nc, outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_generator(spec: ArchitectureSpec) -> nn.Module:
    """The untrained built-in network a manifest's ``architecture`` describes."""
    common = {"ngf": spec.ngf, "norm": spec.norm, "use_dropout": spec.use_dropout}
    if spec.type == "resnet_9blocks":
        return ResnetGenerator(spec.input_nc, spec.output_nc, n_blocks=9, **common)
    if spec.type == "resnet_6blocks":
        return ResnetGenerator(spec.input_nc, spec.output_nc, n_blocks=6, **common)
    if spec.type == "unet_128":
        return UnetGenerator(spec.input_nc, spec.output_nc, num_downs=7, **common)
    if spec.type == "unet_256":
        return UnetGenerator(spec.input_nc, spec.output_nc, num_downs=8, **common)
    raise ValueError(f"{spec.type!r} is not a built-in architecture")


_INSTANCE_NORM_LEGACY_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _drop_legacy_instance_norm_keys(network: nn.Module, state_dict: dict) -> dict:
    """Old (PyTorch 0.3) checkpoints kept running statistics for affine-free instance norm;
    the reference implementation deletes them when loading, and so do we."""
    instance_norms = {name for name, m in network.named_modules() if isinstance(m, nn.InstanceNorm2d)}
    cleaned = {}
    for key, value in state_dict.items():
        module_name, _, leaf = key.rpartition(".")
        if module_name in instance_norms and leaf in _INSTANCE_NORM_LEGACY_BUFFERS:
            continue
        cleaned[key] = value
    return cleaned


def state_dict_mismatch(network: nn.Module, state_dict: dict) -> list[str]:
    """Readable differences between a network's expected keys/shapes and a state dict."""
    expected = network.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong_shape = [
        f"{k}: file {list(state_dict[k].shape)} vs architecture {list(expected[k].shape)}"
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k].shape)
    ]
    lines = []
    if wrong_shape:
        lines.append(f"{len(wrong_shape)} shape mismatch(es), e.g. {'; '.join(wrong_shape[:3])}")
    if missing:
        lines.append(f"{len(missing)} key(s) missing from the file, e.g. {', '.join(missing[:3])}")
    if unexpected:
        lines.append(f"{len(unexpected)} unexpected key(s) in the file, e.g. {', '.join(unexpected[:3])}")
    return lines


def _conv_weight(state_dict: dict, key: str) -> torch.Tensor | None:
    value = state_dict.get(key)
    return value if isinstance(value, torch.Tensor) and value.ndim == 4 else None


def _last_resnet_conv(state_dict: dict) -> torch.Tensor | None:
    indices = [int(k.split(".")[1]) for k in state_dict if k.count(".") == 2 and k.split(".")[1].isdigit()]
    return _conv_weight(state_dict, f"model.{max(indices)}.weight") if indices else None


def file_architecture(state_dict: dict) -> dict:
    """What the file itself says about each ``architecture`` field it determines."""
    keys = list(state_dict)
    found: dict = {}
    norm_modules = {k.rpartition(".")[0] for k in keys if k.endswith("running_mean")}
    found["norm"] = "batch" if any(f"{m}.weight" in state_dict for m in norm_modules) else "instance"
    if any(k.startswith("model.model.") for k in keys):
        levels = max(k.split(".").count("model") for k in keys) - 1
        found["type"] = {7: "unet_128", 8: "unet_256"}.get(levels, f"a U-Net with {levels} levels")
        first = _conv_weight(state_dict, "model.model.0.weight")
        last = _conv_weight(state_dict, "model.model.3.weight")  # transposed: (in, out, k, k)
        if last is not None:
            found["output_nc"] = int(last.shape[1])
    elif any(".conv_block." in k for k in keys):
        blocks = len({k.split(".")[1] for k in keys if ".conv_block." in k})
        found["type"] = {6: "resnet_6blocks", 9: "resnet_9blocks"}.get(
            blocks, f"a ResNet with {blocks} blocks"
        )
        found["use_dropout"] = any(".conv_block.6." in k for k in keys)
        first = _conv_weight(state_dict, "model.1.weight")
        last = _last_resnet_conv(state_dict)
        if last is not None:
            found["output_nc"] = int(last.shape[0])
    else:
        return {}
    if first is not None:
        found["ngf"], found["input_nc"] = int(first.shape[0]), int(first.shape[1])
    return found


def _yaml_value(value):
    return str(value).lower() if isinstance(value, bool) else value


_FIELD_ORDER = ("type", "input_nc", "output_nc", "ngf", "norm", "use_dropout")


def architecture_fixes(spec: ArchitectureSpec, state_dict: dict) -> list[str]:
    """One ``weights have X, manifest says Y: set architecture.F: X`` per field that differs."""
    found = file_architecture(state_dict)
    fixes = []
    for name in _FIELD_ORDER:
        if name not in found or found[name] == getattr(spec, name):
            continue
        value, declared = (_yaml_value(v) for v in (found[name], getattr(spec, name)))
        shown = value
        if name == "type" and " " in str(value):
            return [
                f"the weights are {value}, which no built-in architecture has (manifest says {declared}):"
                " export the network to TorchScript or ONNX (architecture.type: torchscript / onnx)"
            ]
        fixes.append(f"weights have {name} {shown}, manifest says {declared}: set architecture.{name}: {shown}")
        if name == "type":
            break  # the other fields are read from another layout; fix the type first
    return fixes


def load_builtin_generator(spec: ArchitectureSpec, state_dict: dict) -> nn.Module:
    """Build ``spec`` and load ``state_dict`` strictly; a refusal's first line says what to set."""
    network = build_generator(spec)
    state_dict = _drop_legacy_instance_norm_keys(network, state_dict)
    problems = state_dict_mismatch(network, state_dict)
    if problems:
        fixes = architecture_fixes(spec, state_dict)
        first = "; ".join(fixes) if fixes else _first_offending_key(network, state_dict, spec)
        raise ArchitectureMismatchError(
            f"{first}\nThe weights do not fit architecture {spec.describe()}:\n  - " + "\n  - ".join(problems)
        )
    network.load_state_dict(state_dict, strict=True)
    return network.eval()


def _first_offending_key(network: nn.Module, state_dict: dict, spec: ArchitectureSpec) -> str:
    expected = network.state_dict()
    for key, tensor in expected.items():
        if key in state_dict and tuple(state_dict[key].shape) != tuple(tensor.shape):
            return (
                f"weights key {key} has shape {list(state_dict[key].shape)}, architecture {spec.type}"
                f" expects {list(tensor.shape)}: set architecture.* to the options the network was trained"
                " with (see below)"
            )
    missing = next((k for k in expected if k not in state_dict), None)
    if missing:
        return (
            f"weights key {missing} is missing for architecture {spec.type}: the file holds another"
            " network; set architecture.type to the one it was trained with, or export TorchScript/ONNX"
        )
    extra = next(k for k in state_dict if k not in expected)
    return (
        f"weights key {extra} is not part of architecture {spec.type}: the file holds another network;"
        " set architecture.type to the one it was trained with, or export TorchScript/ONNX"
    )

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
    if missing:
        lines.append(f"{len(missing)} key(s) missing from the file, e.g. {', '.join(missing[:3])}")
    if unexpected:
        lines.append(f"{len(unexpected)} unexpected key(s) in the file, e.g. {', '.join(unexpected[:3])}")
    if wrong_shape:
        lines.append(f"{len(wrong_shape)} shape mismatch(es), e.g. {'; '.join(wrong_shape[:3])}")
    return lines


def _hints(spec: ArchitectureSpec, state_dict: dict) -> list[str]:
    """What the file itself says about the fields the manifest declares differently."""
    keys = list(state_dict)
    hints = []
    has_statistics = any(k.endswith("running_mean") for k in keys)
    if spec.norm != "batch" and has_statistics and any(k.endswith("bias") for k in keys):
        hints.append("the file has running statistics: was it trained with norm: batch?")
    if spec.norm == "batch" and not has_statistics:
        hints.append("no batch-norm statistics in the file: was it trained with norm: instance?")
    if any(".conv_block.6." in k for k in keys):
        hints.append("residual blocks have a dropout slot: set use_dropout: true")
    elif spec.use_dropout and any(".conv_block.5." in k for k in keys):
        hints.append("residual blocks have no dropout slot: set use_dropout: false")
    first = state_dict.get("model.model.0.weight", state_dict.get("model.1.weight"))
    if isinstance(first, torch.Tensor) and first.ndim == 4:
        if first.shape[0] != spec.ngf:
            hints.append(f"the first convolution has {first.shape[0]} filters: ngf: {first.shape[0]}")
        if first.shape[1] != spec.input_nc:
            hints.append(
                f"the first convolution takes {first.shape[1]} channel(s): input_nc: {first.shape[1]}"
            )
    if any(k.startswith("model.model.") for k in keys):
        hints.append("the keys are those of a U-Net generator (unet_128 / unet_256)")
    elif any(".conv_block." in k for k in keys):
        blocks = {k.split(".")[1] for k in keys if ".conv_block." in k}
        hints.append(f"the keys are those of a ResNet generator with {len(blocks)} blocks")
    return hints


def load_builtin_generator(spec: ArchitectureSpec, state_dict: dict) -> nn.Module:
    """Build ``spec`` and load ``state_dict`` strictly; a clear error names what does not fit."""
    network = build_generator(spec)
    state_dict = _drop_legacy_instance_norm_keys(network, state_dict)
    problems = state_dict_mismatch(network, state_dict)
    if problems:
        hints = _hints(spec, state_dict)
        hint_text = ("\nHint: " + "; ".join(hints)) if hints else ""
        raise ArchitectureMismatchError(
            f"the weights do not fit architecture {spec.describe()}:\n  - "
            + "\n  - ".join(problems)
            + hint_text
        )
    network.load_state_dict(state_dict, strict=True)
    return network.eval()

"""Networks used only in training: the pix2pix PatchGAN critic and the small DCGAN pair.

The shipped translation generators are the runtime's built-in ``ResnetGenerator`` (so their
state dicts load strictly through it); the DCGAN generator ships as TorchScript and keeps its
latent size as the scripted attribute ``latent_dim``.
"""

from __future__ import annotations

import torch
from torch import nn


class PatchDiscriminator(nn.Module):
    """pix2pix's 70x70 PatchGAN: (condition, image) -> a map of real/fake logits."""

    def __init__(self, input_nc: int = 2, ndf: int = 32, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        channels = ndf
        for index in range(1, n_layers + 1):
            stride = 2 if index < n_layers else 1
            out_channels = ndf * min(2**index, 8)
            layers += [
                nn.Conv2d(channels, out_channels, 4, stride, 1),
                nn.InstanceNorm2d(out_channels),
                nn.LeakyReLU(0.2, True),
            ]
            channels = out_channels
        layers.append(nn.Conv2d(channels, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class DcganGenerator(nn.Module):
    """z (B, latent_dim) -> image (B, 1, 64, 64) in [-1, 1]: four stride-2 transposed convs."""

    def __init__(self, latent_dim: int = 64, ngf: int = 32) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        widths = [ngf * 8, ngf * 4, ngf * 2, ngf]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for wide, narrow in zip(widths[:-1], widths[1:], strict=False):
            layers += [
                nn.ConvTranspose2d(wide, narrow, 4, 2, 1, bias=False),
                nn.BatchNorm2d(narrow),
                nn.ReLU(True),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], 1, 4, 2, 1), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z.reshape(z.shape[0], z.shape[1], 1, 1))


class DcganDiscriminator(nn.Module):
    """image (B, 1, 64, 64) -> one real/fake logit per image."""

    def __init__(self, ndf: int = 32) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(1, ndf, 4, 2, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).flatten(1)


def _conv_pair(in_channels: int, out_channels: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="reflect"),
        nn.LeakyReLU(0.1, True),
        nn.Conv2d(out_channels, out_channels, 3, padding=dilation, dilation=dilation, padding_mode="reflect"),
        nn.LeakyReLU(0.1, True),
    )


class ResidualUNet(nn.Module):
    """image (B, 1, H, W) in [-1, 1] -> the same image plus a learned correction, clamped to [-1, 1].

    Residual learning: the output is ``input + correction``, and the last layer starts at zero,
    so an untrained (or barely trained) model is the identity (for super-resolution, the
    interpolated input) and training only has to learn the difference. A small U-Net (three
    scales, average-pool down, bilinear upsample + 3x3 conv up: no transposed convolutions, so
    no checkerboard texture) sees about 60 pixels around each output pixel, enough to fill in a
    lesion of up to ~20 mm. No tanh: the correction is unbounded apart from the final clamp to the
    network range. An optional soft threshold (``dead_zone``) drops tiny corrections so healthy
    tissue passes through unchanged. Sides must be multiples of 4. Ships as TorchScript.
    """

    def __init__(self, ngf: int = 16) -> None:
        super().__init__()
        self.enc0 = _conv_pair(1, ngf)
        self.enc1 = _conv_pair(ngf, ngf * 2)
        self.enc2 = _conv_pair(ngf * 2, ngf * 4, dilation=2)
        self.up1 = nn.Conv2d(ngf * 4, ngf * 2, 3, padding=1, padding_mode="reflect")
        self.dec1 = _conv_pair(ngf * 4, ngf * 2)
        self.up0 = nn.Conv2d(ngf * 2, ngf, 3, padding=1, padding_mode="reflect")
        self.dec0 = _conv_pair(ngf * 2, ngf)
        self.head = nn.Conv2d(ngf, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        # Corrections smaller than this (network units) are dropped and larger ones shrunk by it
        # (soft threshold): 0 while training, set afterwards from the TRAINING head's pairs.
        self.dead_zone: float = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = x[:, :1]
        e0 = self.enc0(centre)
        e1 = self.enc1(nn.functional.avg_pool2d(e0, 2))
        e2 = self.enc2(nn.functional.avg_pool2d(e1, 2))
        u1 = self.up1(nn.functional.interpolate(e2, scale_factor=2.0, mode="bilinear", align_corners=False))
        d1 = self.dec1(torch.cat([u1, e1], 1))
        u0 = self.up0(nn.functional.interpolate(d1, scale_factor=2.0, mode="bilinear", align_corners=False))
        d0 = self.dec0(torch.cat([u0, e0], 1))
        correction = self.head(d0)
        if self.dead_zone > 0.0:
            correction = correction.sign() * (correction.abs() - self.dead_zone).clamp(min=0.0)
        return (centre + correction).clamp(-1.0, 1.0)


def _conv_bn_pair(in_channels: int, out_channels: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, padding_mode="reflect", bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.1, True),
        nn.Conv2d(out_channels, out_channels, 3, padding=dilation, dilation=dilation, padding_mode="reflect", bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.1, True),
    )


class TissueUNet(nn.Module):
    """image (B, 1, H, W) in [-1, 1] -> (B, classes, H, W) logits; the runtime takes the argmax.

    A small 2D U-Net: four scales (average-pool down, bilinear upsample + 3x3 conv up, no
    transposed convolutions), two 3x3 convolutions per scale, the deepest dilated, so each
    output pixel sees about 130 pixels around it: enough to tell the brain from the scalp and
    skull on a slice. Batch normalisation after every convolution (without it the loss stalled
    on the shared CPU's budget of iterations); in eval mode it uses the running statistics, so a
    slice's labels do not depend on the other slices of its batch. Sides must be multiples of 8.
    Ships as TorchScript.
    """

    def __init__(self, classes: int = 4, ngf: int = 16) -> None:
        super().__init__()
        self.enc0 = _conv_bn_pair(1, ngf)
        self.enc1 = _conv_bn_pair(ngf, ngf * 2)
        self.enc2 = _conv_bn_pair(ngf * 2, ngf * 4)
        self.enc3 = _conv_bn_pair(ngf * 4, ngf * 4, dilation=2)
        self.up2 = nn.Conv2d(ngf * 4, ngf * 4, 3, padding=1, padding_mode="reflect")
        self.dec2 = _conv_bn_pair(ngf * 8, ngf * 4)
        self.up1 = nn.Conv2d(ngf * 4, ngf * 2, 3, padding=1, padding_mode="reflect")
        self.dec1 = _conv_bn_pair(ngf * 4, ngf * 2)
        self.up0 = nn.Conv2d(ngf * 2, ngf, 3, padding=1, padding_mode="reflect")
        self.dec0 = _conv_bn_pair(ngf * 2, ngf)
        self.head = nn.Conv2d(ngf, classes, 1)

    @staticmethod
    def _up(x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e0 = self.enc0(x[:, :1])
        e1 = self.enc1(nn.functional.avg_pool2d(e0, 2))
        e2 = self.enc2(nn.functional.avg_pool2d(e1, 2))
        e3 = self.enc3(nn.functional.avg_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(self._up(e3)), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(self._up(d2)), e1], 1))
        d0 = self.dec0(torch.cat([self.up0(self._up(d1)), e0], 1))
        return self.head(d0)

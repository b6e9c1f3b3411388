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

"""Run a generator over images larger than its patch: overlapping tiles blended smoothly.

Works for 2 or 3 spatial dimensions (tensors ``(batch, channels, *spatial)``). Each tile's output
is weighted by a separable ramp that is highest in the tile centre and small (never zero) at its
border, so seams between tiles fade instead of showing edges. Images smaller than a tile, or not
a multiple of what the network needs, are padded by edge replication and cropped back.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from app.plugins.errors import PluginError


def tile_starts(size: int, tile: int, overlap: float) -> list[int]:
    """Start offsets covering ``size`` with tiles of ``tile``; the last tile ends at the edge."""
    if size <= tile:
        return [0]
    stride = max(1, int(round(tile * (1.0 - overlap))))
    starts = list(range(0, size - tile + 1, stride))
    if starts[-1] != size - tile:
        starts.append(size - tile)
    return starts


def blend_weights(tile_shape: Sequence[int], overlap: float) -> torch.Tensor:
    """Separable weights in (0, 1]: linear ramps over the overlap, 1 in the middle."""
    weights = torch.ones(())
    for length in tile_shape:
        ramp_length = max(1, int(round(length * overlap)))
        index = torch.arange(length, dtype=torch.float32)
        distance = torch.minimum(index + 1, length - index)
        axis_weights = torch.clamp(distance / (ramp_length + 1), max=1.0)
        weights = weights.unsqueeze(-1) * axis_weights
    return weights


def _pad_to(images: torch.Tensor, target: Sequence[int]) -> torch.Tensor:
    spatial = images.shape[2:]
    pads: list[int] = []
    for size, wanted in zip(reversed(spatial), reversed(target), strict=True):
        pads += [0, max(0, wanted - size)]
    if not any(pads):
        return images
    # Replicate padding needs a batch+channel layout of 4D (2D) or 5D (3D): ours already is.
    return F.pad(images, pads, mode="replicate")


def _checked(output: torch.Tensor, given: torch.Tensor) -> torch.Tensor:
    """The model's output, if it kept the batch and image size (a crop would hide a wrong one)."""
    if output.ndim != given.ndim or output.shape[0] != given.shape[0] or output.shape[2:] != given.shape[2:]:
        raise PluginError(
            f"the generator returned images of shape {tuple(output.shape)} for input {tuple(given.shape)};"
            " an image-to-image plugin must return the same batch and image size (B, C, *spatial)"
        )
    return output


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def run_tiled(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    tile_shape: Sequence[int] | None,
    overlap: float = 0.25,
    size_multiple: int = 1,
    output_channels: int | None = None,
) -> torch.Tensor:
    """``model`` applied to ``images`` (B, C, *spatial), tiled when ``tile_shape`` is smaller
    than the image. Output has the input's spatial size."""
    spatial = tuple(images.shape[2:])
    if tile_shape is None:
        # At least two multiples: a ResNet's reflection padding at 1/4 resolution needs 2 pixels.
        minimum = 2 * size_multiple if size_multiple > 1 else 1
        padded_shape = [max(_round_up(s, size_multiple), minimum) for s in spatial]
        padded = _pad_to(images, padded_shape)
        output = _checked(model(padded), padded)
        return output[(..., *[slice(0, s) for s in spatial])]

    tile_shape = tuple(int(t) for t in tile_shape)
    padded_shape = [max(s, t) for s, t in zip(spatial, tile_shape, strict=True)]
    padded = _pad_to(images, padded_shape)
    weights = blend_weights(tile_shape, overlap).to(images.device)
    accumulated = None
    weight_sum = torch.zeros(padded_shape, device=images.device)
    for starts in itertools.product(
        *[tile_starts(s, t, overlap) for s, t in zip(padded_shape, tile_shape, strict=True)]
    ):
        window = tuple(slice(start, start + t) for start, t in zip(starts, tile_shape, strict=True))
        tile = padded[(..., *window)]
        tile_output = _checked(model(tile), tile).float()
        if accumulated is None:
            channels = output_channels or tile_output.shape[1]
            accumulated = torch.zeros((images.shape[0], channels, *padded_shape), device=images.device)
        accumulated[(..., *window)] += tile_output * weights
        weight_sum[window] += weights
    assert accumulated is not None
    blended = accumulated / weight_sum
    return blended[(..., *[slice(0, s) for s in spatial])]

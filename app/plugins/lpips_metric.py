"""LPIPS (Zhang et al. 2018, version 0.1, AlexNet trunk) from a weights file the user supplies.

LPIPS needs an ImageNet-trained AlexNet and linear layers calibrated on human judgements of
natural photographs. SynthView never downloads them: the user gives one file, the state dict of
the reference implementation's module (the ``lpips`` package, BSD-2-Clause), written once on a
machine that can fetch the weights::

    pip install lpips torchvision
    python -c "import lpips, torch; torch.save(lpips.LPIPS(net='alex').state_dict(), 'lpips_alex.pth')"

The file is read as data only (``app.plugins.weights.load_state_dict``: the pickle is scanned,
then ``torch.load(weights_only=True)``) and its SHA-256 is reported with the value. The network
below has the reference's module names and layer shapes (torchvision's AlexNet ``features``
sliced after each ReLU, the ``ScalingLayer`` buffers, 1x1 ``NetLinLayer`` convolutions), so the
file loads key for key. LPIPS is not validated for medical images: every figure says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from app.plugins.errors import ArchitectureMismatchError
from app.plugins.learned_metrics import NOT_FINITE, LearnedMetricEntry, without_weights
from app.plugins.weights import WeightsBytes, load_state_dict, state_dict_mismatch

CHANNELS = (64, 192, 384, 256, 256)  # the AlexNet ReLU outputs LPIPS compares
MIN_SIDE = 32  # AlexNet's stride-4 convolution and three poolings leave nothing of smaller slices
HOW_TO_GET = (
    "the state dict of lpips.LPIPS(net='alex') from the lpips package: python -c \"import lpips, torch;"
    " torch.save(lpips.LPIPS(net='alex').state_dict(), 'lpips_alex.pth')\""
)


class _AlexNetSlices(nn.Module):
    """torchvision's AlexNet ``features``, cut after each ReLU as lpips' ``pretrained_networks.alexnet``
    (submodules keep their index in ``features``: ``slice2.3`` is ``features[3]``)."""

    def __init__(self):
        super().__init__()
        layers = [
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
        ]
        for number, (start, stop) in enumerate(((0, 2), (2, 5), (5, 8), (8, 10), (10, 12)), start=1):
            stage = nn.Sequential()
            for index in range(start, stop):
                stage.add_module(str(index), layers[index])
            setattr(self, f"slice{number}", stage)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for number in range(1, 6):
            x = getattr(self, f"slice{number}")(x)
            outputs.append(x)
        return outputs


class _Linear(nn.Module):
    """lpips' ``NetLinLayer`` with dropout (index 0, inactive in eval): a 1x1 convolution, no bias."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, kernel_size=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LpipsAlex(nn.Module):
    """LPIPS v0.1 with the AlexNet trunk; images (N, 3, H, W) in [-1, 1]; returns (N,)."""

    def __init__(self):
        super().__init__()
        self.scaling_layer = nn.Module()
        self.scaling_layer.register_buffer("shift", torch.zeros(1, 3, 1, 1))
        self.scaling_layer.register_buffer("scale", torch.ones(1, 3, 1, 1))
        self.net = _AlexNetSlices()
        for number, channels in enumerate(CHANNELS):
            setattr(self, f"lin{number}", _Linear(channels))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        shift, scale = self.scaling_layer.shift, self.scaling_layer.scale
        features_x, features_y = self.net((x - shift) / scale), self.net((y - shift) / scale)
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for number, (fx, fy) in enumerate(zip(features_x, features_y, strict=True)):
            fx = fx / (torch.sqrt(torch.sum(fx**2, dim=1, keepdim=True)) + 1e-10)
            fy = fy / (torch.sqrt(torch.sum(fy**2, dim=1, keepdim=True)) + 1e-10)
            total = total + getattr(self, f"lin{number}")((fx - fy) ** 2).mean(dim=(1, 2, 3))
        return total


@dataclass(frozen=True)
class LoadedLpips:
    network: LpipsAlex
    weights_file: str
    weights_sha256: str


# lpips' ScalingLayer constants (registered buffers: every genuine state dict has exactly these).
SCALING_SHIFT = (-0.030, -0.088, -0.188)
SCALING_SCALE = (0.458, 0.448, 0.450)


def _calibration_problem(state: dict[str, torch.Tensor]) -> str | None:
    """Why a state dict of the right shapes is not LPIPS v0.1's calibration, or None: the input
    scaling differs from lpips' constants (the trunk would see other inputs), or a linear layer has
    a negative weight (lpips trains them clamped at 0; a negative one can give a negative LPIPS)."""
    for key, expected in (("scaling_layer.shift", SCALING_SHIFT), ("scaling_layer.scale", SCALING_SCALE)):
        if not torch.allclose(state[key].flatten().float(), torch.tensor(expected), atol=1e-3):
            return f"{key} is {[round(float(v), 3) for v in state[key].flatten()]}, lpips' is {list(expected)}"
    for number in range(len(CHANNELS)):
        key = f"lin{number}.model.1.weight"
        if float(state[key].min()) < 0:
            return f"{key} has negative weights (lpips' calibrated layers are all >= 0)"
    return None


def load_lpips(path: str | Path) -> LoadedLpips:
    """The LPIPS network from the user's file, read as data only; a file of another shape is
    refused in one line that says what file is expected."""
    weights = WeightsBytes.read(path)
    state = load_state_dict(weights)
    # lpips registers its linear layers twice (lin0..lin4 and the list lins.0..4): one copy suffices
    state = {key: value for key, value in state.items() if not key.startswith("lins.")}
    network = LpipsAlex()
    detail = state_dict_mismatch(state, network.state_dict()) or _calibration_problem(state)
    if detail:
        raise ArchitectureMismatchError(
            f"{weights.name}: not an LPIPS (AlexNet, v0.1) state dict ({detail}); expected {HOW_TO_GET}"
        )
    network.load_state_dict(state)
    return LoadedLpips(network.eval(), weights.name, weights.sha256)


def lpips_per_slice(loaded: LoadedLpips, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """LPIPS of each (reference, test) pair of 2D greyscale images scaled to 0..1 (grey copied
    into the three colour channels, mapped to [-1, 1] as the reference's ``normalize=True``)."""
    if not pairs:
        return []
    side = min(pairs[0][0].shape)
    if side < MIN_SIDE:
        raise ValueError(f"LPIPS needs slices of at least {MIN_SIDE} x {MIN_SIDE} voxels; these are {pairs[0][0].shape}")

    def batch(images):
        stacked = torch.from_numpy(np.stack([np.asarray(image, dtype=np.float32) for image in images]))
        return (stacked[:, None] * 2 - 1).expand(-1, 3, -1, -1)

    with torch.no_grad():
        values = loaded.network(batch([a for a, _ in pairs]), batch([b for _, b in pairs]))
    return [float(v) for v in values]


DEFINITION = "LPIPS v0.1 (AlexNet trunk), mean over the axial slices scaled by the data range, grey as RGB"


def lpips_entry(loaded: LoadedLpips | None, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> LearnedMetricEntry:
    """The JSON entry: the mean LPIPS over the slice pairs, or null and why."""
    if loaded is None:
        return without_weights("--lpips-weights", DEFINITION)
    value, reason = None, None
    if not pairs:
        reason = "no axial slice with foreground"
    else:
        try:
            value = float(np.mean(lpips_per_slice(loaded, pairs)))
        except (ValueError, RuntimeError) as error:  # too small, out of memory: the other metrics stand
            reason = str(error).splitlines()[0]
        if value is not None and not np.isfinite(value):
            value, reason = None, NOT_FINITE
    return LearnedMetricEntry(value, reason, loaded.weights_file, loaded.weights_sha256, definition=DEFINITION)

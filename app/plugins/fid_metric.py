"""FID (Heusel et al. 2017) with the FID Inception-v3 network, from a weights file the user supplies.

FID compares two sets of images through the 2048-d pool features of the Inception-v3 network that
TensorFlow's reference implementation used ("inception-2015-12-05"), ported to PyTorch by the
``pytorch-fid`` package (Apache-2.0). SynthView never downloads it: the user gives one file, the
weights pytorch-fid itself loads (``pt_inception-2015-12-05-6726825d.pth``, fetched once on a
machine that can reach GitHub), or the state dict of pytorch-fid's network written there::

    pip install pytorch-fid
    python -c "from pytorch_fid.inception import fid_inception_v3; import torch;
               torch.save(fid_inception_v3().state_dict(), 'pt_inception-2015-12-05.pth')"

The file is read as data only (``app.plugins.weights.load_state_dict``: the pickle is scanned,
then ``torch.load(weights_only=True)``) and its SHA-256 is reported.
The network below is written in plain torch (torchvision's wheels do not load beside the CPU
torch) with torchvision's ``Inception3`` module names and shapes (1008 classes, no auxiliary
classifier) and pytorch-fid's FID blocks: average pooling that does not count the padding
(TensorFlow's), and max pooling in the last block. FID is a statistic of two image *sets*: over one
volume's slices the sets are small and the value is biased upwards (the estimate needs thousands of
images); every figure says how many images it used, and that it is not validated for medical images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from app.plugins.errors import ArchitectureMismatchError
from app.plugins.learned_metrics import NOT_FINITE, LearnedMetricEntry, without_weights
from app.plugins.weights import WeightsBytes, load_state_dict, state_dict_mismatch

FEATURES = 2048  # the final average pool's features FID compares
CLASSES = 1008  # the TensorFlow graph's classifier (unused for FID; its weights are in the file)
INPUT_SIDE = 299  # images are resized to 299 x 299 (bilinear), as pytorch-fid does
MAX_IMAGES = 64  # axial slices per volume (evenly spaced, with foreground): about 1 s each on one CPU core
HOW_TO_GET = (
    "pytorch-fid's FID Inception weights (pt_inception-2015-12-05-6726825d.pth), or the state dict of"
    " pytorch_fid.inception.fid_inception_v3()"
)


class _Conv(nn.Module):
    """torchvision's ``BasicConv2d``: convolution without bias, batch norm (eps 0.001), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_average_pool(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's 3x3 average pool: the zero padding is not counted (pytorch-fid's patch)."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _BlockA(nn.Module):
    """``FIDInceptionA`` (Mixed_5b..5d)."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = _Conv(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = _Conv(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = _Conv(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = _Conv(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = _Conv(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, kernel_size=3, padding=1)
        self.branch_pool = _Conv(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        five = self.branch5x5_2(self.branch5x5_1(x))
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), five, double, self.branch_pool(_tf_average_pool(x))], 1)


class _BlockB(nn.Module):
    """torchvision's ``InceptionB`` (Mixed_6a, the grid reduction 35 -> 17)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = _Conv(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = _Conv(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = _Conv(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        double = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), double, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class _BlockC(nn.Module):
    """``FIDInceptionC`` (Mixed_6b..6e): factorised 7x7 convolutions."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        row, column = {"kernel_size": (1, 7), "padding": (0, 3)}, {"kernel_size": (7, 1), "padding": (3, 0)}
        self.branch1x1 = _Conv(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = _Conv(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = _Conv(c7, c7, **row)
        self.branch7x7_3 = _Conv(c7, 192, **column)
        self.branch7x7dbl_1 = _Conv(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = _Conv(c7, c7, **column)
        self.branch7x7dbl_3 = _Conv(c7, c7, **row)
        self.branch7x7dbl_4 = _Conv(c7, c7, **column)
        self.branch7x7dbl_5 = _Conv(c7, 192, **row)
        self.branch_pool = _Conv(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for number in range(2, 6):
            double = getattr(self, f"branch7x7dbl_{number}")(double)
        return torch.cat([self.branch1x1(x), seven, double, self.branch_pool(_tf_average_pool(x))], 1)


class _BlockD(nn.Module):
    """torchvision's ``InceptionD`` (Mixed_7a, the grid reduction 17 -> 8)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = _Conv(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = _Conv(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = _Conv(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = _Conv(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _Conv(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _Conv(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        three = self.branch3x3_2(self.branch3x3_1(x))
        seven = x
        for number in range(1, 5):
            seven = getattr(self, f"branch7x7x3_{number}")(seven)
        return torch.cat([three, seven, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class _BlockE(nn.Module):
    """``FIDInceptionE_1`` (Mixed_7b, average pool) and ``FIDInceptionE_2`` (Mixed_7c, max pool:
    the TensorFlow graph's, kept for comparable figures)."""

    def __init__(self, in_channels: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = _Conv(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = _Conv(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = _Conv(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = _Conv(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _Conv(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = _Conv(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = _Conv(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _Conv(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = _Conv(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        three = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _tf_average_pool(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(three),
                self.branch3x3_2b(three),
                self.branch3x3dbl_3a(double),
                self.branch3x3dbl_3b(double),
                self.branch_pool(pooled),
            ],
            1,
        )


class FidInceptionV3(nn.Module):
    """pytorch-fid's ``InceptionV3`` (default block: the final average pool) with torchvision's
    ``Inception3`` parameter names; images (N, 3, H, W) in 0..1; returns the (N, 2048) features."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = _Conv(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = _Conv(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = _Conv(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = _Conv(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = _Conv(80, 192, kernel_size=3)
        self.Mixed_5b = _BlockA(192, pool_features=32)
        self.Mixed_5c = _BlockA(256, pool_features=64)
        self.Mixed_5d = _BlockA(288, pool_features=64)
        self.Mixed_6a = _BlockB(288)
        self.Mixed_6b = _BlockC(768, channels_7x7=128)
        self.Mixed_6c = _BlockC(768, channels_7x7=160)
        self.Mixed_6d = _BlockC(768, channels_7x7=160)
        self.Mixed_6e = _BlockC(768, channels_7x7=192)
        self.Mixed_7a = _BlockD(768)
        self.Mixed_7b = _BlockE(1280, max_pool=False)
        self.Mixed_7c = _BlockE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURES, CLASSES)  # in the weights file; FID does not use it

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images, size=(INPUT_SIDE, INPUT_SIDE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)


@dataclass(frozen=True)
class LoadedFid:
    network: FidInceptionV3
    weights_file: str
    weights_sha256: str


def load_fid(path: str | Path) -> LoadedFid:
    """The FID Inception network from the user's file, read as data only; a file of another
    architecture is refused in one line that says what file is expected."""
    weights = WeightsBytes.read(path)
    state = load_state_dict(weights)
    network = FidInceptionV3()
    expected = network.state_dict()
    # batch-norm step counters: absent from files written before torch 0.4.1, unused in evaluation
    state = {**{k: v for k, v in expected.items() if k.endswith("num_batches_tracked")}, **state}
    detail = state_dict_mismatch(state, expected) or next(
        (
            f"{key} holds negative variances (batch-norm statistics are >= 0)"
            for key, value in state.items()
            if key.endswith("running_var") and float(value.min()) < 0
        ),
        None,
    )
    if detail:
        raise ArchitectureMismatchError(
            f"{weights.name}: not the FID Inception-v3 (pt_inception-2015-12-05) state dict ({detail});"
            f" expected {HOW_TO_GET}"
        )
    network.load_state_dict(
        {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()}
    )
    return LoadedFid(network.eval(), weights.name, weights.sha256)


def fid_features(loaded: LoadedFid, images: Sequence[np.ndarray], batch_size: int = 8) -> np.ndarray:
    """The (N, 2048) pool features of 2D greyscale images scaled to 0..1 (grey copied into the
    three colour channels, as pytorch-fid's loader does with a greyscale image converted to RGB)."""
    rows = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            stacked = torch.from_numpy(np.stack([np.asarray(image, dtype=np.float32) for image in chunk]))
            rows.append(loaded.network(stacked[:, None].expand(-1, 3, -1, -1)).double().numpy())
    return np.concatenate(rows) if rows else np.zeros((0, FEATURES))


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets (rows are samples):
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), with the unbiased covariances (numpy's
    ``cov``, as pytorch-fid).

    With centred features X_a, X_b, S_a S_b = X_a' (X_a X_b' X_b) / c and the non-zero eigenvalues
    of a product do not change when its factors are swapped, so those of S_a S_b are the squared
    singular values of X_a X_b' / sqrt(c): tr (S_a S_b)^(1/2) is that matrix's nuclear norm. With
    fewer images than features (one volume's slices) this needs no matrix square root of the
    rank-deficient 2048 x 2048 product, nor the diagonal offset pytorch-fid then adds; with more, the
    square roots of the eigenvalues of S_a S_b (real and non-negative; rounding's imaginary and
    negative parts dropped)."""
    features_a, features_b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if len(features_a) < 2 or len(features_b) < 2:
        raise ValueError("FID needs at least 2 images in each set")
    mean_a, mean_b = features_a.mean(axis=0), features_b.mean(axis=0)
    centred_a, centred_b = features_a - mean_a, features_b - mean_b
    scale = (len(features_a) - 1) * (len(features_b) - 1)
    if min(len(features_a), len(features_b)) <= features_a.shape[1]:
        trace_sqrt = float(np.sum(np.linalg.svd(centred_a @ centred_b.T, compute_uv=False))) / np.sqrt(scale)
    else:
        product = (centred_a.T @ centred_a) @ (centred_b.T @ centred_b) / scale
        trace_sqrt = float(np.sum(np.sqrt(np.clip(np.linalg.eigvals(product).real, 0, None))))
    trace_a = float(np.sum(centred_a**2)) / (len(features_a) - 1)
    trace_b = float(np.sum(centred_b**2)) / (len(features_b) - 1)
    difference = mean_a - mean_b
    return float(difference @ difference + trace_a + trace_b - 2 * trace_sqrt)


DEFINITION = (
    "FID (pytorch-fid's Inception-v3, 2048-d pool features) between the original's and the synthesized"
    " volume's axial slices scaled by the data range, grey as RGB, resized to 299 x 299"
)


def small_sample_note(images: int) -> str:
    return (
        f"{images} image(s) per set: a small-sample statistic (FID is estimated from thousands of images;"
        f" with {images} it is biased upwards and not comparable with published FIDs)"
    )


@dataclass(frozen=True)
class FidEntry(LearnedMetricEntry):
    images_per_set: int | None = None
    sample_note: str | None = None


def entry_from_features(
    features_a: np.ndarray,
    features_b: np.ndarray,
    weights_file: str,
    weights_sha256: str,
    definition: str = DEFINITION,
) -> FidEntry:
    """The JSON entry of the FID between two feature sets (rows: images): the value or why not,
    the number of images per set and the small-sample warning."""
    images = min(len(features_a), len(features_b))
    value, reason = None, None
    if images < 2:
        reason = f"{images} image(s) with foreground; FID needs at least 2 per set"
    elif not (np.isfinite(features_a).all() and np.isfinite(features_b).all()):
        reason = NOT_FINITE
    else:
        try:
            value = frechet_distance(features_a, features_b)
        except (ValueError, np.linalg.LinAlgError) as error:
            reason = str(error).splitlines()[0]
        if value is not None and not np.isfinite(value):
            value, reason = None, NOT_FINITE
    return FidEntry(
        value,
        reason,
        weights_file,
        weights_sha256,
        definition=definition,
        images_per_set=images,
        sample_note=small_sample_note(images),
    )


def slice_features(
    loaded: LoadedFid, pairs: Sequence[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """The features of the reference slices and of the test slices of ``pairs``."""
    return fid_features(loaded, [a for a, _ in pairs]), fid_features(loaded, [b for _, b in pairs])


def fid_entry(loaded: LoadedFid | None, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> FidEntry:
    """The JSON entry: the FID between the reference slices and the test slices of ``pairs``, the
    number of images per set and the small-sample warning, or null and why."""
    if loaded is None:
        absent = without_weights("--fid-weights", DEFINITION)
        return FidEntry(**{**absent.to_dict()})
    if len(pairs) < 2:
        empty = np.zeros((len(pairs), FEATURES))
        return entry_from_features(empty, empty, loaded.weights_file, loaded.weights_sha256)
    try:
        features = slice_features(loaded, pairs)
    except RuntimeError as error:  # out of memory: the other metrics stand
        entry = entry_from_features(
            np.zeros((0, FEATURES)), np.zeros((0, FEATURES)), loaded.weights_file, loaded.weights_sha256
        )
        return FidEntry(
            **{**entry.to_dict(), "reason": str(error).splitlines()[0], "images_per_set": len(pairs)}
        )
    return entry_from_features(*features, loaded.weights_file, loaded.weights_sha256)

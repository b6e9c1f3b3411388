"""pytorch-fid (the FID reference, installed without its dependencies) on a stand-in torchvision.

pytorch-fid builds its network from torchvision's ``Inception3`` and subclasses torchvision's
``InceptionA/C/E`` blocks; torchvision's PyPI wheels do not load beside the CPU torch. The
stand-in below transcribes torchvision 0.29's ``models/inception.py`` (the module names, channel
counts, kernels and paddings, and the forward of the blocks pytorch-fid does not patch: B, D and
``BasicConv2d``), written as tables so that it is not a copy of ``app.plugins.fid_metric``. Its
state dict was checked key for key and its features value for value against the real module
(run from the wheel's source) when the test was written.

``reference_inception(seed)`` returns pytorch-fid's ``fid_inception_v3()`` with random weights
(the download is patched out; batch-norm statistics randomised too) and its ``InceptionV3``
feature extractor (default block 3, the 2048-d pool)."""

from __future__ import annotations

import types
from contextlib import contextmanager
from unittest import mock

import torch
import torch.nn.functional as F
from torch import nn

from tests.plugins.stand_in_modules import imported_over


class BasicConv2d(nn.Module):
    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)


ROW7, COL7 = {"kernel_size": (1, 7), "padding": (0, 3)}, {"kernel_size": (7, 1), "padding": (3, 0)}
ROW3, COL3 = {"kernel_size": (1, 3), "padding": (0, 1)}, {"kernel_size": (3, 1), "padding": (1, 0)}


def _build(module, table):
    """Each row: (attribute, in channels, out channels, Conv2d keyword arguments)."""
    for name, cin, cout, kwargs in table:
        setattr(module, name, BasicConv2d(cin, cout, **kwargs))


class InceptionA(nn.Module):
    def __init__(self, in_channels, pool_features):
        super().__init__()
        _build(self, [
            ("branch1x1", in_channels, 64, {"kernel_size": 1}),
            ("branch5x5_1", in_channels, 48, {"kernel_size": 1}),
            ("branch5x5_2", 48, 64, {"kernel_size": 5, "padding": 2}),
            ("branch3x3dbl_1", in_channels, 64, {"kernel_size": 1}),
            ("branch3x3dbl_2", 64, 96, {"kernel_size": 3, "padding": 1}),
            ("branch3x3dbl_3", 96, 96, {"kernel_size": 3, "padding": 1}),
            ("branch_pool", in_channels, pool_features, {"kernel_size": 1}),
        ])  # fmt: skip


class InceptionB(nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        _build(self, [
            ("branch3x3", in_channels, 384, {"kernel_size": 3, "stride": 2}),
            ("branch3x3dbl_1", in_channels, 64, {"kernel_size": 1}),
            ("branch3x3dbl_2", 64, 96, {"kernel_size": 3, "padding": 1}),
            ("branch3x3dbl_3", 96, 96, {"kernel_size": 3, "stride": 2}),
        ])  # fmt: skip

    def forward(self, x):
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, in_channels, channels_7x7):
        super().__init__()
        c7 = channels_7x7
        _build(self, [
            ("branch1x1", in_channels, 192, {"kernel_size": 1}),
            ("branch7x7_1", in_channels, c7, {"kernel_size": 1}),
            ("branch7x7_2", c7, c7, ROW7),
            ("branch7x7_3", c7, 192, COL7),
            ("branch7x7dbl_1", in_channels, c7, {"kernel_size": 1}),
            ("branch7x7dbl_2", c7, c7, COL7),
            ("branch7x7dbl_3", c7, c7, ROW7),
            ("branch7x7dbl_4", c7, c7, COL7),
            ("branch7x7dbl_5", c7, 192, ROW7),
            ("branch_pool", in_channels, 192, {"kernel_size": 1}),
        ])  # fmt: skip


class InceptionD(nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        _build(self, [
            ("branch3x3_1", in_channels, 192, {"kernel_size": 1}),
            ("branch3x3_2", 192, 320, {"kernel_size": 3, "stride": 2}),
            ("branch7x7x3_1", in_channels, 192, {"kernel_size": 1}),
            ("branch7x7x3_2", 192, 192, ROW7),
            ("branch7x7x3_3", 192, 192, COL7),
            ("branch7x7x3_4", 192, 192, {"kernel_size": 3, "stride": 2}),
        ])  # fmt: skip

    def forward(self, x):
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([a, b, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        _build(self, [
            ("branch1x1", in_channels, 320, {"kernel_size": 1}),
            ("branch3x3_1", in_channels, 384, {"kernel_size": 1}),
            ("branch3x3_2a", 384, 384, ROW3),
            ("branch3x3_2b", 384, 384, COL3),
            ("branch3x3dbl_1", in_channels, 448, {"kernel_size": 1}),
            ("branch3x3dbl_2", 448, 384, {"kernel_size": 3, "padding": 1}),
            ("branch3x3dbl_3a", 384, 384, ROW3),
            ("branch3x3dbl_3b", 384, 384, COL3),
            ("branch_pool", in_channels, 192, {"kernel_size": 1}),
        ])  # fmt: skip


class Inception3(nn.Module):
    def __init__(self, num_classes=1000, aux_logits=True, init_weights=None, **_):
        super().__init__()
        assert not aux_logits, "pytorch-fid builds the network without the auxiliary classifier"
        _build(self, [
            ("Conv2d_1a_3x3", 3, 32, {"kernel_size": 3, "stride": 2}),
            ("Conv2d_2a_3x3", 32, 32, {"kernel_size": 3}),
            ("Conv2d_2b_3x3", 32, 64, {"kernel_size": 3, "padding": 1}),
        ])  # fmt: skip
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        _build(
            self,
            [("Conv2d_3b_1x1", 64, 80, {"kernel_size": 1}), ("Conv2d_4a_3x3", 80, 192, {"kernel_size": 3})],
        )
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = (
            InceptionA(192, 32),
            InceptionA(256, 64),
            InceptionA(288, 64),
        )
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b, self.Mixed_6c = InceptionC(768, 128), InceptionC(768, 160)
        self.Mixed_6d, self.Mixed_6e = InceptionC(768, 160), InceptionC(768, 192)
        self.AuxLogits = None
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b, self.Mixed_7c = InceptionE(1280), InceptionE(2048)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=0.5)
        self.fc = nn.Linear(2048, num_classes)


def stand_in_torchvision() -> dict[str, types.ModuleType]:
    torchvision = types.ModuleType("torchvision")
    torchvision.__version__ = "0.29.1-stand-in"
    models = types.ModuleType("torchvision.models")
    inception = types.ModuleType("torchvision.models.inception")
    for cls in (BasicConv2d, InceptionA, InceptionB, InceptionC, InceptionD, InceptionE, Inception3):
        setattr(inception, cls.__name__, cls)

    def inception_v3(*, weights=None, **kwargs):
        assert weights is None, "the test never asks for downloaded weights"
        return Inception3(**kwargs)

    models.inception, models.inception_v3 = inception, inception_v3
    transforms = types.ModuleType("torchvision.transforms")  # fid_score imports it for its file loader
    torchvision.models, torchvision.transforms = models, transforms
    return {
        "torchvision": torchvision,
        "torchvision.models": models,
        "torchvision.models.inception": inception,
        "torchvision.transforms": transforms,
    }


@contextmanager
def pytorch_fid_modules():
    """``pytorch_fid.inception`` and ``pytorch_fid.fid_score`` imported over the stand-in; every
    module is taken out of ``sys.modules`` again afterwards."""
    with imported_over(stand_in_torchvision(), "pytorch_fid"):
        import pytorch_fid.fid_score
        import pytorch_fid.inception

        yield pytorch_fid.inception, pytorch_fid.fid_score


def reference_inception(inception_module, seed: int = 0):
    """(pytorch-fid's ``fid_inception_v3()`` with random weights, its ``InceptionV3`` extractor)."""
    torch.manual_seed(seed)
    with (
        mock.patch.object(inception_module, "load_state_dict_from_url", lambda *a, **k: None),
        mock.patch.object(nn.Module, "load_state_dict", lambda self, *a, **k: None),
    ):
        network = inception_module.fid_inception_v3()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # batch norms away from the identity, so that a wrong statistic shows
        for name, tensor in network.state_dict().items():
            if name.endswith(("running_var", "bn.weight")):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name.endswith(("running_mean", "bn.bias")):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
    with mock.patch.object(inception_module, "fid_inception_v3", lambda: network):
        extractor = inception_module.InceptionV3([inception_module.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
    return network.eval(), extractor.eval()

"""FSIM and GMSD: equal to piq (their reference implementation) on fixtures, and checked
independently (GMSD from the paper's formula in numpy; identical images give FSIM 1, GMSD 0)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from app.plugins.piq_metrics import _piq_module, fsim_gmsd, fsim_gmsd_per_slice

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def slices():
    """Two 0..1 slice pairs: a smooth pattern with an edge, and a noisy copy."""
    rng = np.random.default_rng(7)
    j, i = np.mgrid[0:64, 0:71]  # odd width: GMSD's downsampling pads the far edge
    base = [0.5 + 0.3 * np.sin(i / (5.0 + s)) * np.cos(j / 7.0) + 0.15 * (i > 35) for s in range(2)]
    reference = [np.clip(b, 0, 1) for b in base]
    test = [np.clip(r + rng.normal(0, 0.04, r.shape), 0, 1) for r in reference]
    return list(zip(reference, test, strict=True))


def _gmsd_from_the_paper(reference: np.ndarray, test: np.ndarray, t: float = 170.0) -> float:
    """GMSD as Xue et al. (2014) give it (their GMSD.m): images on 0..255, 2 x 2 average and
    subsampling (zero beyond the far edge), Prewitt gradients / 3 (zero padding, 'same'), the
    gradient-magnitude similarity map with T = 170, and its standard deviation (population SD;
    MATLAB's std2 divides by N - 1, a relative change of 1/(2N), here below 1e-4)."""

    def downsample(image):
        image = np.pad(image * 255.0, ((0, image.shape[0] % 2), (0, image.shape[1] % 2)))
        return image.reshape(image.shape[0] // 2, 2, image.shape[1] // 2, 2).mean(axis=(1, 3))

    def gradient_magnitude(image):
        padded = np.pad(image, 1)
        rows = [padded[r : r + image.shape[0]] for r in range(3)]
        columns = [padded[:, c : c + image.shape[1]] for c in range(3)]
        gx = sum(rows[r][:, 2:] - rows[r][:, :-2] for r in range(3)) / 3.0
        gy = sum(columns[c][2:] - columns[c][:-2] for c in range(3)) / 3.0
        return np.hypot(gx, gy)

    m1, m2 = gradient_magnitude(downsample(reference)), gradient_magnitude(downsample(test))
    similarity = (2 * m1 * m2 + t) / (m1**2 + m2**2 + t)
    return float(similarity.std())


def test_each_slice_equals_piq_called_directly(slices):
    fsim_values, gmsd_values = fsim_gmsd_per_slice(slices)
    piq_fsim, piq_gmsd = _piq_module("fsim").fsim, _piq_module("gmsd").gmsd
    for (reference, test), fsim_value, gmsd_value in zip(slices, fsim_values, gmsd_values, strict=True):
        x = torch.tensor(test, dtype=torch.float32)[None, None]
        y = torch.tensor(reference, dtype=torch.float32)[None, None]
        assert fsim_value == pytest.approx(float(piq_fsim(x, y, data_range=1.0, chromatic=False)), rel=1e-5)
        assert gmsd_value == pytest.approx(float(piq_gmsd(x, y, data_range=1.0)), rel=1e-5)  # float32, batched
    assert fsim_gmsd(slices) == pytest.approx((np.mean(fsim_values), np.mean(gmsd_values)), rel=1e-12)
    assert all(0.5 < v < 1 for v in fsim_values) and all(0.01 < v < 0.3 for v in gmsd_values)


def test_gmsd_equals_the_papers_formula(slices):
    _, gmsd_values = fsim_gmsd_per_slice(slices)
    for (reference, test), value in zip(slices, gmsd_values, strict=True):
        assert value == pytest.approx(_gmsd_from_the_paper(reference, test), rel=2e-5)


def test_identical_images_give_fsim_one_and_gmsd_zero_and_noise_moves_both_one_way(slices):
    reference = slices[0][0]
    same_fsim, same_gmsd = fsim_gmsd([(reference, reference)])
    assert same_fsim == pytest.approx(1.0, abs=1e-6) and same_gmsd == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(0)
    scores = [fsim_gmsd([(reference, np.clip(reference + rng.normal(0, sd, reference.shape), 0, 1))]) for sd in (0.01, 0.05, 0.2)]
    fsims, gmsds = zip(*scores, strict=True)
    assert fsims[0] > fsims[1] > fsims[2] and gmsds[0] < gmsds[1] < gmsds[2]
    # both are symmetric in their two images (FSIM weights by the larger phase congruency)
    flipped = fsim_gmsd([(b, a) for a, b in slices])
    assert flipped == pytest.approx(fsim_gmsd(slices), rel=1e-5)


def test_no_torchvision_and_no_network_needed():
    """piq's package __init__ (which imports torchvision) never runs, and nothing opens a socket."""
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network used')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "import sys, numpy as np\n"
        "from app.plugins.piq_metrics import fsim_gmsd\n"
        "a = np.linspace(0, 1, 64 * 64).reshape(64, 64)\n"
        "print(fsim_gmsd([(a, a ** 1.1)]))\n"
        "print('torchvision' in sys.modules, 'piq.perceptual' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "False False"


def test_piq_missing_is_a_reason_not_a_crash(monkeypatch):
    import importlib.util

    from app.analysis.field_metrics import field_metrics
    from app.plugins import piq_metrics

    monkeypatch.delitem(sys.modules, "piq", raising=False)
    for name in [n for n in sys.modules if n.startswith("piq.")]:
        monkeypatch.delitem(sys.modules, name)
    original = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "piq" else original(name, *a))
    with pytest.raises(piq_metrics.MetricUnavailable, match="piq is not installed"):
        piq_metrics.fsim_gmsd_per_slice([(np.zeros((8, 8)), np.zeros((8, 8)))])
    volume = np.random.default_rng(0).normal(100, 10, (2, 40, 40))
    result = field_metrics(volume, volume + 1, fsim_gmsd=piq_metrics.fsim_gmsd)
    assert result.fsim is None and result.gmsd is None and "piq is not installed" in result.absent["fsim"]
    assert result.uqi == pytest.approx(1, abs=0.01)

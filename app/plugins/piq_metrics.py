"""FSIM and GMSD computed by piq (Apache-2.0, pinned 0.8.0), the maintained PyTorch implementation
that follows the authors' MATLAB code (FeatureSIM.m, GMSD.m).

piq's package ``__init__`` imports every metric, and its VGG / Inception based ones import
torchvision. The torchvision wheels on PyPI are CUDA builds whose compiled operators do not load
beside the CPU torch this product pins (``import torchvision`` raises), so piq is installed
without its dependencies and its ``fsim`` and ``gmsd`` modules, which need only torch, are
imported without running that ``__init__``. Nothing here reads the network or downloads anything.

Torch lives here (app.plugins), not in app.analysis: the analysis code receives ``fsim_gmsd`` as
a plain function of numpy slices.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

import numpy as np
import torch

PIQ_VERSION = "0.8.0"


class MetricUnavailable(RuntimeError):
    """piq is not installed (or not importable): FSIM / GMSD are reported as absent, with this reason."""


def _piq_module(name: str) -> ModuleType:
    """``piq.<name>`` without executing ``piq/__init__.py`` (which needs torchvision)."""
    if "piq" not in sys.modules:
        spec = importlib.util.find_spec("piq")
        if spec is None or spec.submodule_search_locations is None:
            raise MetricUnavailable(f"piq is not installed (pip install --no-deps piq=={PIQ_VERSION})")
        sys.modules["piq"] = importlib.util.module_from_spec(spec)  # the package, its __init__ not run
    try:
        return importlib.import_module(f"piq.{name}")
    except ImportError as error:
        raise MetricUnavailable(f"piq.{name} cannot be imported: {error}") from error


def _batch(images: Sequence[np.ndarray]) -> torch.Tensor:
    """(N, 1, H, W) float32: FSIM takes half the time of float64, the values agree to ~1e-6."""
    return torch.from_numpy(np.stack([np.asarray(image, dtype=np.float32) for image in images]))[:, None]


def fsim_gmsd_per_slice(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[list[float], list[float]]:
    """FSIM (greyscale, piq's defaults: 4 scales, 4 orientations) and GMSD of each (reference, test)
    pair of 2D images already scaled to 0..1."""
    if not pairs:
        return [], []
    fsim, gmsd = _piq_module("fsim").fsim, _piq_module("gmsd").gmsd
    reference, test = _batch([a for a, _ in pairs]), _batch([b for _, b in pairs])
    with torch.no_grad():
        fsim_values = fsim(test, reference, reduction="none", data_range=1.0, chromatic=False)
        gmsd_values = gmsd(test, reference, reduction="none", data_range=1.0)
    return [float(v) for v in fsim_values], [float(v) for v in gmsd_values]


def fsim_gmsd(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """The mean FSIM and mean GMSD over the pairs (see ``fsim_gmsd_per_slice``)."""
    fsim_values, gmsd_values = fsim_gmsd_per_slice(pairs)
    return float(np.mean(fsim_values)), float(np.mean(gmsd_values))

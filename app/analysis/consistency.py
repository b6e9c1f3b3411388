"""Consistency checks that need the generator run again: cycle and perturbation.

* Cycle residual |G_BA(G_AB(x)) - x|: for a CycleGAN that ships its reverse generator. Content
  the forward generator invented or erased usually cannot be mapped back.
* Perturbation change map |G(x + noise) - G(x)|: small input noise should give small output
  change; large local changes show where the output is unstable (and possibly invented).
Both take plain callables so the plugin runtime (torch) stays out of analysis code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def cycle_residual(original: np.ndarray, reconstructed: np.ndarray) -> np.ndarray:
    """|reconstructed - original| as float32; ``reconstructed`` = G_BA(G_AB(original))."""
    original = np.asarray(original, dtype=np.float32)
    reconstructed = np.asarray(reconstructed, dtype=np.float32)
    if original.shape != reconstructed.shape:
        raise ValueError(f"shapes differ: {original.shape} vs {reconstructed.shape}")
    return np.abs(reconstructed - original)


def run_cycle(
    forward: Callable[[np.ndarray], np.ndarray],
    backward: Callable[[np.ndarray], np.ndarray],
    voxels: np.ndarray,
) -> np.ndarray:
    """The cycle residual of ``voxels`` through ``forward`` then ``backward``."""
    return cycle_residual(voxels, backward(forward(voxels)))


@dataclass(frozen=True)
class PerturbationSettings:
    """Gaussian input noise with SD = ``noise_fraction`` x the input's robust intensity range."""

    noise_fraction: float = 0.01
    seed: int = 0


def perturbation_change(
    generate: Callable[[np.ndarray], np.ndarray],
    voxels: np.ndarray,
    settings: PerturbationSettings = PerturbationSettings(),
    baseline_output: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """|G(x + noise) - G(x)| and the noise SD used (in input units); seeded, so reproducible."""
    voxels = np.asarray(voxels, dtype=np.float32)
    low, high = np.percentile(voxels, [0.5, 99.5])
    noise_sd = float(settings.noise_fraction * max(high - low, np.finfo(np.float32).eps))
    rng = np.random.default_rng(settings.seed)
    noisy = voxels + rng.normal(0.0, noise_sd, size=voxels.shape).astype(np.float32)
    base = generate(voxels) if baseline_output is None else baseline_output
    return np.abs(
        np.asarray(generate(noisy), dtype=np.float32) - np.asarray(base, dtype=np.float32)
    ), noise_sd

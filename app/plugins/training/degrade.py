"""Degradations that make paired training data from a clean head (numpy, deterministic by rng).

* Rician noise: magnitude MR noise, |x + n_real + i n_imag| with Gaussian n of std ``sigma``.
* Thick slices: a slice of ``thickness`` mm averages that many 1 mm slices (box profile); the
  thick stack is then linearly interpolated back to 1 mm, as a scanner console or viewer would.
* Synthetic lesions: soft-edged ellipsoids of dark or bright signal placed inside the brain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def rician_noise(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``clean`` with Rician noise of Gaussian standard deviation ``sigma`` (same units)."""
    clean = np.asarray(clean, dtype=np.float32)
    real = clean + rng.normal(0.0, sigma, clean.shape).astype(np.float32)
    imaginary = rng.normal(0.0, sigma, clean.shape).astype(np.float32)
    return np.sqrt(real * real + imaginary * imaginary)


def thick_slices(clean: np.ndarray, thickness: int, axis: int = 0, phase: int = 0) -> np.ndarray:
    """Simulate ``thickness``-mm slices along ``axis`` (1 mm input) and interpolate back to 1 mm.

    Slab ``n`` averages input slices ``phase + n*thickness ... + thickness - 1``; its centre
    sits at their mean position. Slices outside the first/last centre take the nearest slab.
    """
    if thickness < 1:
        raise ValueError("thickness must be at least one slice")
    # The same operator the slab-consistency check reads a super-resolution output with.
    from app.analysis.detection import slab_average

    return slab_average(clean, axis, thickness, phase)


@dataclass(frozen=True)
class InsertedLesions:
    voxels: np.ndarray  # the lesioned volume
    lesion_mask: np.ndarray  # bool, where a lesion replaced more than half the tissue signal
    centres_kji: list[tuple[int, int, int]]


def insert_lesions(
    clean: np.ndarray,
    brain_mask: np.ndarray,
    rng: np.random.Generator,
    count: int,
    reference_intensity: float,
    radius_mm: tuple[float, float] = (3.0, 9.0),
) -> InsertedLesions:
    """Insert ``count`` soft ellipsoids (1 mm voxels) centred in the brain.

    Each lesion is dark (0.15-0.35 of ``reference_intensity``, like a T1 black hole or cyst) or
    bright (0.95-1.1, like fat or a subacute bleed), with a 1.5 mm sigmoid edge, mild texture,
    and is kept inside the brain mask.
    """
    out = np.asarray(clean, dtype=np.float32).copy()
    lesion_weight = np.zeros(out.shape, np.float32)
    candidates = np.argwhere(brain_mask)
    centres = []
    for _ in range(count):
        centre = candidates[rng.integers(len(candidates))]
        radii = rng.uniform(*radius_mm, size=3)
        reach = int(np.ceil(radii.max() + 3))
        lo = np.maximum(centre - reach, 0)
        hi = np.minimum(centre + reach + 1, out.shape)
        grids = np.meshgrid(
            *[np.arange(a, b) - c for a, b, c in zip(lo, hi, centre, strict=True)], indexing="ij"
        )
        radius = np.sqrt(sum((g / r) ** 2 for g, r in zip(grids, radii, strict=True)))
        edge = 1.0 / (1.0 + np.exp((radius - 1.0) * radii.mean() / 1.5))
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        edge = edge * brain_mask[box]
        dark = rng.random() < 0.5
        level = rng.uniform(0.15, 0.35) if dark else rng.uniform(0.95, 1.1)
        texture = 1.0 + 0.05 * rng.standard_normal(edge.shape)
        target = (level * reference_intensity * texture).astype(np.float32)
        out[box] = out[box] * (1 - edge) + target * edge
        lesion_weight[box] = np.maximum(lesion_weight[box], edge)
        centres.append(tuple(int(c) for c in centre))
    return InsertedLesions(out, lesion_weight > 0.5, centres)

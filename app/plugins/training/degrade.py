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


# Beyond its radius a lesion's soft edge still replaces some tissue: 2 edge widths (1.5 mm each)
# further out, under 12 %. Dark lesions keep at least this far from CSF and the brain's edge.
DARK_LESION_MARGIN_MM = 3.0


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
    dark_clearance_mm: np.ndarray | None = None,
) -> InsertedLesions:
    """Insert ``count`` soft ellipsoids (1 mm voxels) centred in the brain.

    Each lesion is dark (0.15-0.35 of ``reference_intensity``, like a T1 black hole or cyst) or
    bright (0.95-1.1, like fat or a subacute bleed), with a 1.5 mm sigmoid edge, mild texture,
    and is kept inside the brain mask.

    ``dark_clearance_mm`` (optional, same shape; ``dark_lesion_clearance``): where a T1-dark lesion
    plausibly sits. A dark lesion's centre is then redrawn among the voxels whose clearance (mm to
    the nearest CSF or non-brain voxel, zero outside white matter) reaches the lesion's largest
    radius plus ``DARK_LESION_MARGIN_MM`` (or, where none does, the largest clearance there is), so
    no dark training lesion touches a ventricle, sulcus or the brain's edge: the network never
    learns to fill a dark spot next to CSF.
    Without it (the default) the draws are exactly those of earlier versions.
    """
    out = np.asarray(clean, dtype=np.float32).copy()
    lesion_weight = np.zeros(out.shape, np.float32)
    candidates = np.argwhere(brain_mask)
    centres = []
    for _ in range(count):
        centre = candidates[rng.integers(len(candidates))]
        radii = rng.uniform(*radius_mm, size=3)
        dark = rng.random() < 0.5
        if dark and dark_clearance_mm is not None:
            needed = min(float(radii.max()) + DARK_LESION_MARGIN_MM, float(dark_clearance_mm.max()))
            sites = np.argwhere(dark_clearance_mm >= needed)
            centre = sites[rng.integers(len(sites))]
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
        level = rng.uniform(0.15, 0.35) if dark else rng.uniform(0.95, 1.1)
        texture = 1.0 + 0.05 * rng.standard_normal(edge.shape)
        target = (level * reference_intensity * texture).astype(np.float32)
        out[box] = out[box] * (1 - edge) + target * edge
        lesion_weight[box] = np.maximum(lesion_weight[box], edge)
        centres.append(tuple(int(c) for c in centre))
    return InsertedLesions(out, lesion_weight > 0.5, centres)


def dark_lesion_clearance(labels: np.ndarray, white_matter: int = 3, csf: int = 1) -> np.ndarray:
    """Per voxel (1 mm), the distance in mm from white matter to the nearest CSF or non-brain
    voxel (label 0), zero outside white matter: ``insert_lesions``' sites for dark lesions.
    ``labels`` as ``tissue_classes.classify_tissues`` gives them (0 background, 1 CSF, 2 GM, 3 WM)."""
    from scipy import ndimage

    labels = np.asarray(labels)
    clearance = ndimage.distance_transform_edt((labels != csf) & (labels != 0)).astype(np.float32)
    clearance[labels != white_matter] = 0.0
    return clearance

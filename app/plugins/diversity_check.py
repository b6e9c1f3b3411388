"""Diversity and memorisation check of a generation plugin against real images.

Samples come from ``app.plugins.generation.SampleGenerator`` (seeded, reproducible). Real
images are the slices of a real volume in the generator's plane, oriented as the runtime shows
slices to 2D generators (``plane_stack``), resampled in-plane to the generator's pixel spacing,
centre-cropped or padded to the sample size and scaled to [0, 1] by the volume's robust
maximum, so both sides are compared on one footing. Statistics: ``app.analysis.diversity``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from app.analysis.diversity import GeneratorCheck, check_generator
from app.core.volume import Volume
from app.plugins.errors import PluginError
from app.plugins.plane_stack import plane_layout

HEAD_FRACTION = 0.25  # a real slice counts when this share of its pixels is above 10 % of the range


def _fit(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Centre crop or zero-pad to ``shape``."""
    result = np.zeros(shape, dtype=np.float32)
    source, target = [], []
    for have, want in zip(image.shape, shape, strict=True):
        if have >= want:
            start = (have - want) // 2
            source.append(slice(start, start + want))
            target.append(slice(0, want))
        else:
            start = (want - have) // 2
            source.append(slice(0, have))
            target.append(slice(start, start + have))
    result[tuple(target)] = image[tuple(source)]
    return result


def real_slices(
    volume: Volume,
    plane: str,
    pixel_spacing_mm: tuple[float, float],
    shape: tuple[int, int],
    max_slices: int = 48,
) -> list[np.ndarray]:
    """Up to ``max_slices`` evenly spaced slices with content, as the generator's images ([0, 1])."""
    return located_real_slices(volume, plane, pixel_spacing_mm, shape, max_slices)[0]


def located_real_slices(
    volume: Volume,
    plane: str,
    pixel_spacing_mm: tuple[float, float],
    shape: tuple[int, int],
    max_slices: int = 48,
) -> tuple[list[np.ndarray], list[int]]:
    """``real_slices`` and, for each, its slice number as the viewer shows it (1-based index
    along the volume's own array axis), so a nearest real slice can be looked up."""
    layout = plane_layout(volume.geometry.direction, plane)
    stack = layout.to_stack(np.asarray(volume.voxels, dtype=np.float32))
    spacing_kji = np.asarray(volume.geometry.spacing_mm, dtype=float)[::-1]
    zoom = (
        spacing_kji[layout.axes[1]] / pixel_spacing_mm[0],
        spacing_kji[layout.axes[2]] / pixel_spacing_mm[1],
    )
    finite = stack[np.isfinite(stack)]
    top = float(np.percentile(finite, 99.5)) if finite.size else 0.0
    if not top > 0:
        raise PluginError("the real volume has no positive intensities to compare with")
    # Shrinking smooths first (as scikit-image's anti_aliasing: sigma = (factor - 1) / 2), so the
    # real slices look like the block-averaged images a generator learned, not aliased samples.
    smoothing = [max(0.0, (1.0 / z - 1.0) / 2.0) for z in zoom]
    images, numbers = [], []
    for position, plane_image in enumerate(stack):
        scaled = np.clip(np.nan_to_num(plane_image / top), 0.0, 1.0)
        if any(smoothing):
            scaled = ndimage.gaussian_filter(scaled, smoothing)
        resized = ndimage.zoom(scaled, zoom, order=1) if not np.allclose(zoom, 1.0) else scaled
        fitted = _fit(resized, shape)
        if np.mean(fitted > 0.1) >= HEAD_FRACTION:
            images.append(fitted)
            numbers.append(len(stack) - position if layout.flips[0] else position + 1)
    if len(images) < 2:
        raise PluginError(
            f"fewer than two {plane} slices of the real volume have content at the generator's size"
        )
    chosen = np.unique(np.linspace(0, len(images) - 1, min(max_slices, len(images))).round().astype(int))
    return [images[i] for i in chosen], [numbers[i] for i in chosen]


@dataclass(frozen=True)
class DiversityRun:
    check: GeneratorCheck
    seeds: list[int]
    real_count: int
    plugin_name: str
    real_slice_numbers: tuple[int, ...] = ()  # per real image: its slice number in the viewer


def generator_diversity(
    plugin_folder: str | Path, real_volume: Volume, samples: int = 16, seed: int = 0, max_real: int = 48
) -> DiversityRun:
    """Sample ``samples`` images (seeds seed, seed+1, ...) and check them against the real slices."""
    from app.plugins.generation import SampleGenerator

    if samples < 2:
        raise PluginError("the diversity check needs at least two samples")
    if real_volume.is_synthetic:
        made_by = real_volume.provenance
        raise PluginError(
            f"{real_volume.name or 'the real volume'} is SYNTHETIC (made by {made_by.plugin_name}"
            f" {made_by.plugin_version}); the diversity check compares samples with acquired images"
        )
    generator = SampleGenerator(plugin_folder)
    seeds = list(range(seed, seed + samples))
    images = [np.asarray(s.image, dtype=np.float32) for s in generator.sample(seeds)]
    shape = images[0].shape
    plane = generator.manifest.plane or "axial"
    real, numbers = located_real_slices(real_volume, plane, generator.pixel_spacing_mm, shape, max_real)
    check = check_generator(images, real, data_range=1.0)
    return DiversityRun(check, seeds, len(real), generator.manifest.name, tuple(numbers))

"""Diversity and memorisation check of a generation plugin against real images.

Samples come from ``app.plugins.generation.SampleGenerator`` (seeded, reproducible). Real
images are every slice of a real volume with head content, prepared by the recipe that made the
shipped generator's training images (``app.plugins.generator_images``: plane layout, 99.5th
percentile scaling, crop to the head, area-averaging to the generator's pixel spacing), so a
training image fed back meets its exact copy. Each sample is compared with every real slice,
moved by the training augmentation (left-right flip, shifts up to 2 pixels) to match it best.
Statistics: ``app.analysis.diversity``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.analysis.diversity import Alignment, GeneratorCheck, check_generator
from app.core.volume import Volume
from app.plugins.errors import PluginError
from app.plugins.generator_images import AUGMENTATION_SHIFT_PX, prepare

# A copy of a training image as the generator saw it (flipped left-right, shifted) is a copy.
TRAINING_AUGMENTATION = Alignment(max_shift_px=AUGMENTATION_SHIFT_PX, left_right_flip=True)


def real_slices(
    volume: Volume, plane: str, pixel_spacing_mm: tuple[float, float], shape: tuple[int, int]
) -> list[np.ndarray]:
    """Every slice with head content, prepared as the generator's images ([0, 1])."""
    return list(located_real_slices(volume, plane, pixel_spacing_mm, shape)[0])


def located_real_slices(
    volume: Volume, plane: str, pixel_spacing_mm: tuple[float, float], shape: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, ...]]:
    """``real_slices`` and, for each, its slice number as the viewer shows it (1-based index
    along the volume's own array axis), so a nearest real slice can be looked up."""
    try:
        prepared = prepare(
            volume.voxels,
            volume.geometry.direction,
            volume.geometry.spacing_mm,
            plane,
            shape,
            pixel_spacing_mm,
        )
    except ValueError as error:
        raise PluginError(f"the real volume cannot be compared: {error}") from None
    if len(prepared.images) < 2:
        raise PluginError(f"fewer than two {plane} slices of the real volume have head content")
    return prepared.images, prepared.slice_numbers


@dataclass(frozen=True)
class DiversityRun:
    check: GeneratorCheck
    seeds: list[int]
    real_count: int
    plugin_name: str
    real_slice_numbers: tuple[int, ...] = ()  # per real image: its slice number in the viewer


def generator_diversity(
    plugin_folder: str | Path, real_volume: Volume, samples: int = 16, seed: int = 0
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
    real, numbers = located_real_slices(real_volume, plane, generator.pixel_spacing_mm, shape)
    check = check_generator(images, list(real), data_range=1.0, alignment=TRAINING_AUGMENTATION)
    return DiversityRun(check, seeds, len(real), generator.manifest.name, tuple(numbers))

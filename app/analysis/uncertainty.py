"""Uncertainty maps: per-voxel spread of several outputs for the same input.

Sources of the outputs: test-time augmentation (TTA), Monte-Carlo dropout (the plugin runtime
runs the network N times with dropout on) or an ensemble of plugins/checkpoints doing the same
task. This module only needs the N outputs, or for TTA a ``generate(array) -> array`` callable,
so it stays torch-free; the augmentations are pure functions the runtime can call itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


def voxel_sd(outputs: Sequence[np.ndarray]) -> np.ndarray:
    """Per-voxel standard deviation (population, ddof=0) of N >= 2 same-shape outputs, float32."""
    if len(outputs) < 2:
        raise ValueError("an uncertainty map needs at least two outputs")
    shape = np.shape(outputs[0])
    if any(np.shape(o) != shape for o in outputs):
        raise ValueError("all outputs must have the same shape (resample onto one grid first)")
    # Welford's running update: one pass, no N x volume stack in memory.
    mean = np.zeros(shape, dtype=np.float64)
    m2 = np.zeros(shape, dtype=np.float64)
    for count, output in enumerate(outputs, start=1):
        value = np.asarray(output, dtype=np.float64)
        delta = value - mean
        mean += delta / count
        m2 += delta * (value - mean)
    return np.sqrt(m2 / len(outputs)).astype(np.float32)


@dataclass(frozen=True)
class Augmentation:
    """A pair: ``forward`` applied to the input, ``inverse`` undoes its geometry on the output.

    Intensity jitter is applied to the input only (the output's scale is the generator's own),
    so its inverse is the identity.
    """

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    inverse: Callable[[np.ndarray], np.ndarray]


def flip(axis: int) -> Augmentation:
    """Mirror along array ``axis``; its own inverse."""
    return Augmentation(f"flip axis {axis}", lambda a: np.flip(a, axis), lambda a: np.flip(a, axis))


def shift(offset_kji: tuple[int, int, int]) -> Augmentation:
    """Integer voxel shift with edge replication; undone by the opposite shift.

    The voxels shifted out at the edges are lost, so the outermost ``|offset|`` voxels of the
    de-augmented output repeat the edge; TTA spread there is not meaningful.
    """
    offset = tuple(int(o) for o in offset_kji)

    def move(array: np.ndarray, by: tuple[int, ...]) -> np.ndarray:
        result = np.asarray(array)
        for axis, step in enumerate(by):
            if step == 0:
                continue
            n = result.shape[axis]
            step = int(np.clip(step, -n + 1, n - 1))
            index = np.clip(np.arange(n) - step, 0, n - 1)
            result = np.take(result, index, axis=axis)
        return result

    return Augmentation(
        f"shift {offset}", lambda a: move(a, offset), lambda a: move(a, tuple(-o for o in offset))
    )


def intensity_jitter(gain: float, offset_fraction: float, scale: float) -> Augmentation:
    """Input intensity x ``gain`` + ``offset_fraction`` * ``scale``; output left as is."""
    return Augmentation(
        f"intensity x{gain:g} {offset_fraction:+g}",
        lambda a: np.asarray(a, dtype=np.float32) * gain + offset_fraction * scale,
        lambda a: a,
    )


def default_augmentations(scale: float, shift_voxels: int = 1) -> list[Augmentation]:
    """The standard TTA set: identity, in-plane flips, small shifts and +-2 % intensity jitter."""
    identity = Augmentation("identity", lambda a: a, lambda a: a)
    return [
        identity,
        flip(2),
        flip(1),
        shift((0, shift_voxels, 0)),
        shift((0, 0, shift_voxels)),
        intensity_jitter(1.02, 0.0, scale),
        intensity_jitter(0.98, 0.0, scale),
    ]


def tta_outputs(
    generate: Callable[[np.ndarray], np.ndarray], voxels: np.ndarray, augmentations: Sequence[Augmentation]
) -> list[np.ndarray]:
    """Run ``generate`` on every augmented input and undo each augmentation on its output."""
    return [np.asarray(a.inverse(generate(a.forward(voxels))), dtype=np.float32) for a in augmentations]


def tta_uncertainty(
    generate: Callable[[np.ndarray], np.ndarray], voxels: np.ndarray, augmentations: Sequence[Augmentation]
) -> np.ndarray:
    """Per-voxel SD over the de-augmented TTA outputs."""
    return voxel_sd(tta_outputs(generate, voxels, augmentations))

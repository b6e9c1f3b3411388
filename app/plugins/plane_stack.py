"""Present a volume to a 2D generator as a stack of slices in its plane, oriented as read.

A 2D generator learned from slices in one plane, displayed radiologically. Whatever the array
order of the input (axial DICOM, sagittal MR, a RAS NIfTI), the runtime permutes and flips the
array — never resamples it — so slice ``n`` is a plane slice with rows and columns as in
training, then undoes the same steps on the output. Geometry therefore stays exactly the input's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

# For each plane: (stack, row, column) as (LPS axis, sign). Rows run top to bottom of the
# displayed image, columns left to right (radiological: patient right on the image's left).
_PLANE_AXES = {
    "axial": ((2, +1), (1, +1), (0, +1)),  # inferior->superior; anterior->posterior; right->left
    "coronal": ((1, +1), (2, -1), (0, +1)),  # anterior->posterior; superior->inferior; right->left
    "sagittal": ((0, +1), (2, -1), (1, +1)),  # right->left; superior->inferior; anterior->posterior
}


# (from, to) for each LPS axis read in its + direction.
_LPS_DIRECTION_WORDS = {0: ("patient right", "patient left"), 1: ("anterior", "posterior"), 2: ("inferior", "superior")}


def _direction_words(lps_axis: int, sign: int) -> str:
    start, end = _LPS_DIRECTION_WORDS[lps_axis]
    return f"{start} to {end}" if sign > 0 else f"{end} to {start}"


def describe_network_view(plane: str, dimensionality: str, context_slices: int = 1) -> str:
    """What a 2D / 2.5D generator is given, in words (for ``plugins check`` and the guide)."""
    if dimensionality == "3D":
        return (
            "the volume array as stored, (1, C, k, j, i) with i the fastest axis; not reoriented,"
            " so a 3D network must accept the acquisition's own axis order"
        )
    stack, row, column = _PLANE_AXES[plane]
    view = (
        f"{plane} slices as displayed (radiological): rows run {_direction_words(*row)} (top to"
        f" bottom), columns {_direction_words(*column)} (left to right), whatever the file's axis order"
    )
    if dimensionality == "2.5D":
        view += f"; the {context_slices} channels are neighbouring slices, {_direction_words(*stack)}"
    return view


@dataclass(frozen=True)
class PlaneLayout:
    """Array axes (k, j, i numbering of ``voxels``) in (stack, row, column) order, and flips."""

    axes: tuple[int, int, int]
    flips: tuple[bool, bool, bool]

    def to_stack(self, voxels: np.ndarray) -> np.ndarray:
        stack = np.transpose(voxels, self.axes)
        for axis, flip in enumerate(self.flips):
            if flip:
                stack = np.flip(stack, axis=axis)
        return stack

    def from_stack(self, stack: np.ndarray) -> np.ndarray:
        for axis, flip in enumerate(self.flips):
            if flip:
                stack = np.flip(stack, axis=axis)
        return np.transpose(stack, np.argsort(self.axes))


def plane_layout(direction: np.ndarray, plane: str) -> PlaneLayout:
    """How to view an array with this direction matrix (columns: LPS of i, j, k) in ``plane``."""
    direction = np.asarray(direction, dtype=float)
    targets = _PLANE_AXES[plane]
    # Pick the i/j/k column for each target LPS axis; the best-aligned assignment handles
    # oblique acquisitions (they are shown in their nearest plane, as scanners do).
    best = max(
        itertools.permutations(range(3)),
        key=lambda columns: sum(
            abs(direction[lps_axis, c]) for (lps_axis, _), c in zip(targets, columns, strict=True)
        ),
    )
    axes = tuple(2 - c for c in best)  # ijk column c is numpy axis 2 - c of voxels[k, j, i]
    flips = tuple(
        bool(np.sign(direction[lps_axis, c]) != sign)
        for (lps_axis, sign), c in zip(targets, best, strict=True)
    )
    return PlaneLayout(axes, flips)  # type: ignore[arg-type]

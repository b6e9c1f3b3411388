"""Display planes and reslicing: which world directions a 2D view shows, and the slice it shows.

Display convention (radiological), stated once for every 2D view:

* axial: screen right = patient Left, screen down = Posterior (anterior up), looking from the feet;
* coronal: screen right = patient Left, screen down = Inferior (superior up);
* sagittal: screen right = Posterior (anterior on the left), screen down = Inferior.

Every panel of one plane shares the same *scene* coordinates, whatever volume it shows:
``u = lps . right`` and ``v = lps . down`` in millimetres (world origin, not the volume's). So
two panels showing different volumes line up by world position, never by voxel index, and a
scene point plus the slice position ``w = lps . normal`` gives back the LPS point exactly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from app.core.volume import Volume, axis_letter, opposite_letter


class Plane(enum.Enum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


@dataclass(frozen=True)
class PlaneAxes:
    """Unit LPS vectors of screen right, screen down and the plane normal (scroll direction)."""

    right_lps: np.ndarray
    down_lps: np.ndarray
    normal_lps: np.ndarray


PLANE_AXES: dict[Plane, PlaneAxes] = {
    Plane.AXIAL: PlaneAxes(np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, 1.0])),
    Plane.CORONAL: PlaneAxes(np.array([1.0, 0, 0]), np.array([0, 0, -1.0]), np.array([0, 1.0, 0])),
    Plane.SAGITTAL: PlaneAxes(np.array([0, 1.0, 0]), np.array([0, 0, -1.0]), np.array([1.0, 0, 0])),
}

_LETTERS_POSITIVE = "LPS"
_LETTERS_NEGATIVE = "RAI"


def _letter(vector_lps: np.ndarray) -> str:
    axis = int(np.argmax(np.abs(vector_lps)))
    return _LETTERS_POSITIVE[axis] if vector_lps[axis] > 0 else _LETTERS_NEGATIVE[axis]


def edge_letters(plane: Plane) -> dict[str, str]:
    """Patient direction letters at the screen edges: keys 'left', 'right', 'top', 'bottom'."""
    axes = PLANE_AXES[plane]
    return {
        "right": _letter(axes.right_lps),
        "left": _letter(-axes.right_lps),
        "bottom": _letter(axes.down_lps),
        "top": _letter(-axes.down_lps),
    }


def scene_from_lps(plane: Plane, lps_mm) -> np.ndarray:
    """Scene (u, v) mm of LPS point(s): the projection on screen right and screen down."""
    axes = PLANE_AXES[plane]
    lps = np.asarray(lps_mm, dtype=float)
    return np.stack([lps @ axes.right_lps, lps @ axes.down_lps], axis=-1)


def field_of_view_mm(volume: Volume, plane: Plane) -> tuple[float, float, float, float]:
    """(u_low, v_low, u_high, v_high): the scene rectangle a panel's reset zoom fits (before its
    padding), shared by the panels and the first image that stands in for them.

    The voxel centres' bounds; along a scene axis where they have no extent (one voxel across:
    a 1x1xN or single-slice volume) the voxels' own width, else the fit had nothing to scale
    to: the first image zoomed a 1 x 1 mm voxel to the whole cell, and the panels (pyqtgraph
    keeps its previous scale for an empty range) showed it at another, arbitrary size.
    """
    low, high = volume.bounds_lps_mm()
    centres = scene_from_lps(plane, np.array([low, high]))
    lowest, highest = centres.min(axis=0), centres.max(axis=0)
    ni, nj, nk = volume.size_ijk
    edges = np.array(
        [[i, j, k] for i in (-0.5, ni - 0.5) for j in (-0.5, nj - 0.5) for k in (-0.5, nk - 0.5)]
    )
    box = scene_from_lps(plane, volume.geometry.lps_from_index(edges))
    flat = highest - lowest < 1e-6
    lowest = np.where(flat, box.min(axis=0), lowest)
    highest = np.where(flat, box.max(axis=0), highest)
    return float(lowest[0]), float(lowest[1]), float(highest[0]), float(highest[1])


def slice_position_mm(plane: Plane, lps_mm) -> float:
    """Position of an LPS point along the plane normal (which slice it lies on)."""
    return float(np.asarray(lps_mm, dtype=float) @ PLANE_AXES[plane].normal_lps)


def slice_position_text(plane: Plane, lps_mm) -> str:
    """Where a slice lies, as a radiologist says it: 'R 11.1 mm' for 11.1 mm to the patient's
    right (LPS x = -11.1), 'S 22.0 mm', 'A 3.0 mm'. Exports keep the signed LPS numbers."""
    position = slice_position_mm(plane, lps_mm)
    positive = axis_letter(PLANE_AXES[plane].normal_lps)
    letter = positive if position >= 0 or abs(position) < 0.05 else opposite_letter(positive)
    return f"{letter} {abs(position):.1f} mm"


def lps_from_scene(plane: Plane, u_mm: float, v_mm: float, position_mm: float) -> np.ndarray:
    """LPS point of scene (u, v) on the slice at ``position_mm`` along the normal."""
    axes = PLANE_AXES[plane]
    return u_mm * axes.right_lps + v_mm * axes.down_lps + position_mm * axes.normal_lps


@dataclass(frozen=True)
class SliceImage:
    """A 2D slice ready to draw: ``pixels[row, col]`` with row 0 at the top of the screen.

    Pixel (row, col)'s centre lies at scene ``(u0 + col * du, v0 + row * dv)``. ``in_volume``
    is False when the requested position lies outside the volume (the pixels are then NaN).
    """

    pixels: np.ndarray
    u0_mm: float
    v0_mm: float
    du_mm: float
    dv_mm: float
    position_mm: float
    in_volume: bool

    @property
    def extent_mm(self) -> tuple[float, float, float, float]:
        """(left, top, width, height) of the pixel edges in scene mm."""
        rows, cols = self.pixels.shape[:2]
        return (
            self.u0_mm - self.du_mm / 2,
            self.v0_mm - self.dv_mm / 2,
            cols * self.du_mm,
            rows * self.dv_mm,
        )


def _signed_permutation(direction: np.ndarray, tolerance: float = 1e-3):
    """For an axis-aligned direction matrix: for each LPS axis, (array index axis, sign); else None."""
    rounded = np.round(direction)
    if not np.allclose(direction, rounded, atol=tolerance):
        return None
    result = {}
    for index_axis in range(3):
        lps_axis = int(np.argmax(np.abs(rounded[:, index_axis])))
        result[lps_axis] = (index_axis, float(rounded[lps_axis, index_axis]))
    return result if len(result) == 3 else None


def _lps_axis(vector: np.ndarray) -> tuple[int, float]:
    axis = int(np.argmax(np.abs(vector)))
    return axis, float(np.sign(vector[axis]))


def slice_step_mm(volume: Volume, plane: Plane) -> float:
    """Distance between neighbouring slices of ``volume`` along the plane normal."""
    normal_in_index = volume.geometry.direction.T @ PLANE_AXES[plane].normal_lps
    # The index axis most aligned with the normal sets the step.
    axis = int(np.argmax(np.abs(normal_in_index)))
    return float(volume.geometry.spacing_mm[axis] * abs(normal_in_index[axis]) or 1.0)


def extract_slice(volume: Volume, plane: Plane, position_mm: float) -> SliceImage:
    """The slice of ``volume`` through ``position_mm`` along the plane normal, in display order.

    Axis-aligned volumes are cut straight from the array (nearest slice, no interpolation);
    oblique ones are sampled nearest-neighbour on a world-aligned grid.
    """
    permutation = _signed_permutation(volume.geometry.direction)
    if permutation is None:
        return _resampled_slice(volume, plane, position_mm)
    axes = PLANE_AXES[plane]
    geometry = volume.geometry
    (normal_lps_axis, _), (right_lps_axis, right_sign), (down_lps_axis, down_sign) = (
        _lps_axis(axes.normal_lps),
        _lps_axis(axes.right_lps),
        _lps_axis(axes.down_lps),
    )
    normal_index_axis, _ = permutation[normal_lps_axis]
    right_index_axis, right_index_sign = permutation[right_lps_axis]
    down_index_axis, down_index_sign = permutation[down_lps_axis]

    # Which array slice along the normal is nearest: use the index of a point on the plane.
    probe_lps = geometry.origin_lps_mm.copy()
    probe_lps[normal_lps_axis] = position_mm * np.sign(axes.normal_lps[normal_lps_axis])
    continuous_index = geometry.index_from_lps(probe_lps)[normal_index_axis]
    size_ijk = volume.size_ijk
    slice_index = int(np.floor(continuous_index + 0.5))
    in_volume = 0 <= slice_index < size_ijk[normal_index_axis]
    clamped = min(max(slice_index, 0), size_ijk[normal_index_axis] - 1)

    # voxels[k, j, i]: array axis of index axis c is 2 - c.
    taker: list[slice | int] = [slice(None)] * 3
    taker[2 - normal_index_axis] = clamped
    plane_2d = volume.voxels[tuple(taker)]  # (rows, columns) or, colour, (rows, columns, 3)
    # Remaining array axes in order; put (down, right) order.
    remaining = [c for c in (2, 1, 0) if c != normal_index_axis]  # index axes in array order
    if remaining.index(down_index_axis) != 0:
        plane_2d = np.swapaxes(plane_2d, 0, 1)
    flip_cols = right_index_sign * right_sign < 0
    flip_rows = down_index_sign * down_sign < 0
    if flip_rows:
        plane_2d = plane_2d[::-1, :]
    if flip_cols:
        plane_2d = plane_2d[:, ::-1]
    if not in_volume:
        # Never show an edge slice for a position the volume does not cover.
        plane_2d = _outside(plane_2d.shape, volume)

    first_index = np.zeros(3)
    first_index[normal_index_axis] = clamped
    first_index[right_index_axis] = size_ijk[right_index_axis] - 1 if flip_cols else 0
    first_index[down_index_axis] = size_ijk[down_index_axis] - 1 if flip_rows else 0
    u0, v0 = scene_from_lps(plane, geometry.lps_from_index(first_index))
    return SliceImage(
        pixels=plane_2d,
        u0_mm=float(u0),
        v0_mm=float(v0),
        du_mm=float(geometry.spacing_mm[right_index_axis]),
        dv_mm=float(geometry.spacing_mm[down_index_axis]),
        position_mm=float(position_mm),
        in_volume=bool(in_volume),
    )


def _outside(shape: tuple[int, ...], volume: Volume) -> np.ndarray:
    """Pixels where the volume is not: NaN (scalar), black (colour)."""
    if volume.is_colour:
        return np.zeros(shape, dtype=np.uint8)
    return np.full(shape, np.nan, dtype=np.float32)


def _resampled_slice(volume: Volume, plane: Plane, position_mm: float) -> SliceImage:
    """Nearest-neighbour sampling of an oblique volume on a world-aligned grid (NaN outside)."""
    low, high = volume.bounds_lps_mm()
    step = float(volume.geometry.spacing_mm.min())
    corners_uv = scene_from_lps(
        plane, np.array([low, high, [low[0], high[1], low[2]], [high[0], low[1], high[2]]])
    )
    # Bounds of the box projected on the screen axes (the axes are LPS-aligned).
    u_low, v_low = corners_uv.min(axis=0)
    u_high, v_high = corners_uv.max(axis=0)
    cols = max(1, int(np.ceil((u_high - u_low) / step)) + 1)
    rows = max(1, int(np.ceil((v_high - v_low) / step)) + 1)
    u = u_low + step * np.arange(cols)
    v = v_low + step * np.arange(rows)
    uu, vv = np.meshgrid(u, v)
    axes = PLANE_AXES[plane]
    lps = uu[..., None] * axes.right_lps + vv[..., None] * axes.down_lps + position_mm * axes.normal_lps
    index = np.floor(volume.geometry.index_from_lps(lps) + 0.5).astype(np.int64)
    ni, nj, nk = volume.size_ijk
    inside = (
        (index[..., 0] >= 0)
        & (index[..., 0] < ni)
        & (index[..., 1] >= 0)
        & (index[..., 1] < nj)
        & (index[..., 2] >= 0)
        & (index[..., 2] < nk)
    )
    pixels = _outside((rows, cols) + volume.voxels.shape[3:], volume)
    chosen = index[inside]
    pixels[inside] = volume.voxels[chosen[:, 2], chosen[:, 1], chosen[:, 0]]
    return SliceImage(pixels, float(u_low), float(v_low), step, step, float(position_mm), bool(inside.any()))

"""Gantry tilt: put the slices of a sheared stack onto an orthogonal grid along the slice normal.

A CT series acquired with a tilted gantry has image planes whose positions step along the table
(not along the plane normal): stacked as they are, every slice would sit displaced in plane by
its own offset, so no orthonormal geometry places the voxels where the DICOM says they are.
As dcm2niix and 3D Slicer do, each slice is shifted in its own plane by that offset (linear
interpolation within the plane; values along the normal are never mixed), onto a grid that
keeps the row, column and normal directions and grows in plane to hold every shifted slice.
Grid voxels that no slice covers get a fill value, never invented anatomy.

Pure numpy geometry: the scanner uses it for the message, the loader for the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Slices displaced by less than this fraction of a pixel are left where they are.
NEGLIGIBLE_SHIFT_PX = 0.1
_SNAP = 1e-6  # sample positions this close to a pixel centre are taken as on it


@dataclass(frozen=True)
class TiltCorrectionRecord:
    """What a load did to a tilted series' pixels (``Volume.tilt_correction``): exports and
    derived series cite it; a generator's output made from the volume inherits it."""

    gantry_tilt_deg: float
    max_shift_mm: float
    acquired_size_ij: tuple[int, int]
    corrected_size_ij: tuple[int, int]
    fill_value: float  # what grid voxels no stored slice covers hold
    interpolation: str = "linear, in plane only"

    def derivation_note(self) -> str:
        """The clause a derived series' Derivation Description adds."""
        return (
            f"gantry tilt of {self.gantry_tilt_deg:.2f} deg corrected (slices shifted in plane by up to "
            f"{self.max_shift_mm:.1f} mm, linear interpolation)"
        )


@dataclass(frozen=True)
class TiltCorrection:
    """How the slices of one sheared stack map onto an orthogonal grid.

    ``source_offset_px[k]`` is (column, row): pixel (i, j) of grid slice k samples the stored
    slice k at (i + offset_i, j + offset_j). The grid's origin is ``origin_lps_mm``; its axes
    are the series' row, column and normal directions with the series' spacing.
    """

    tilt_deg: float
    max_shift_mm: float
    source_offset_px: np.ndarray  # (slices, 2): column, row offsets into each stored slice
    acquired_size_ij: tuple[int, int]
    size_ij: tuple[int, int]  # columns, rows of the corrected grid
    origin_lps_mm: np.ndarray

    def message(self) -> str:
        columns, rows = self.size_ij
        return (
            f"gantry tilt of {self.tilt_deg:.2f} deg corrected: slices shifted in plane by up to "
            f"{self.max_shift_mm:.1f} mm (linear interpolation in plane) onto an orthogonal "
            f"{columns} x {rows} x {len(self.source_offset_px)} grid"
        )

    def record(self, fill_value: float) -> TiltCorrectionRecord:
        """What was done, once the pixels were shifted with ``fill_value`` where none reached."""
        return TiltCorrectionRecord(
            gantry_tilt_deg=round(self.tilt_deg, 4),
            max_shift_mm=round(self.max_shift_mm, 4),
            acquired_size_ij=tuple(self.acquired_size_ij),
            corrected_size_ij=tuple(self.size_ij),
            fill_value=float(fill_value),
        )


def stack_tilt_deg(positions_lps_mm: np.ndarray, normal: np.ndarray) -> float:
    """Angle between the line from the first to the last slice position and the slice normal."""
    stack = positions_lps_mm[-1] - positions_lps_mm[0]
    length = float(np.linalg.norm(stack))
    if length == 0:
        return 0.0
    return float(np.degrees(np.arccos(min(1.0, abs(float(stack @ normal)) / length))))


def in_plane_offsets_mm(positions_lps_mm, row_dir, col_dir) -> np.ndarray:
    """(slices, 2): each slice position's offset from the first, along the row and column directions."""
    relative = np.asarray(positions_lps_mm, dtype=float) - np.asarray(positions_lps_mm[0], dtype=float)
    return np.column_stack([relative @ np.asarray(row_dir, float), relative @ np.asarray(col_dir, float)])


def plan_tilt_correction(
    positions_lps_mm,
    row_dir,
    col_dir,
    pixel_spacing_ij_mm,
    size_ij: tuple[int, int],
) -> TiltCorrection | None:
    """The correction for slices at ``positions_lps_mm`` (sorted along the normal), or None.

    None when no slice is displaced in plane by ``NEGLIGIBLE_SHIFT_PX`` of a pixel or more:
    such a stack is already orthogonal to within a tenth of a voxel and is loaded as it is.
    """
    positions = np.asarray(positions_lps_mm, dtype=float).reshape(-1, 3)
    if len(positions) < 2:
        return None
    spacing = np.asarray(pixel_spacing_ij_mm, dtype=float)
    shift_px = in_plane_offsets_mm(positions, row_dir, col_dir) / spacing
    if np.abs(shift_px).max() < NEGLIGIBLE_SHIFT_PX:
        return None
    # Grow the grid so that every shifted slice fits: the lowest offsets become index 0.
    low = np.floor(shift_px.min(axis=0) + _SNAP).astype(int)
    high = np.ceil(shift_px.max(axis=0) - _SNAP).astype(int)
    columns, rows = (int(n) for n in np.asarray(size_ij) + high - low)
    origin = positions[0] + low[0] * spacing[0] * np.asarray(row_dir, float)
    origin = origin + low[1] * spacing[1] * np.asarray(col_dir, float)
    normal = np.cross(row_dir, col_dir)
    return TiltCorrection(
        tilt_deg=stack_tilt_deg(positions, normal),
        max_shift_mm=float(np.linalg.norm(shift_px * spacing, axis=1).max()),
        source_offset_px=low - shift_px,
        acquired_size_ij=(int(size_ij[0]), int(size_ij[1])),
        size_ij=(columns, rows),
        origin_lps_mm=origin,
    )


def shift_slice(source: np.ndarray, out: np.ndarray, offset_ij_px, fill_value: float) -> None:
    """``out[j, i]`` = ``source`` at (i + offset_i, j + offset_j), linearly interpolated.

    The offset is the same for every pixel, so each axis needs one weight: two passes of a
    two-tap blend. Samples outside the stored slice (even partly) take ``fill_value``.
    """
    along_rows = _shift_axis(
        np.asarray(source, dtype=np.float32), offset_ij_px[0], 1, out.shape[1], fill_value
    )
    out[...] = _shift_axis(along_rows, offset_ij_px[1], 0, out.shape[0], fill_value)


def _shift_axis(source: np.ndarray, offset: float, axis: int, length: int, fill_value: float) -> np.ndarray:
    """Resample ``source`` along ``axis`` at positions ``n + offset`` for n in range(length)."""
    start = int(np.floor(offset))
    weight = float(offset - start)
    if weight < _SNAP:
        weight = 0.0
    elif weight > 1 - _SNAP:
        start, weight = start + 1, 0.0
    stored = source.shape[axis]
    last_needed = stored - (2 if weight else 1)  # highest first tap with both taps inside
    first, stop = max(0, -start), min(length, last_needed - start + 1)
    shape = list(source.shape)
    shape[axis] = length
    result = np.full(shape, fill_value, dtype=np.float32)
    if stop <= first:
        return result

    def span(begin: int) -> tuple[slice, ...]:
        cut = [slice(None)] * source.ndim
        cut[axis] = slice(begin + first, begin + stop)
        return tuple(cut)

    target = span(0)
    if weight:
        # first + w (second - first): exact where both taps hold the same value.
        first_tap = source[span(start)]
        result[target] = first_tap + (source[span(start + 1)] - first_tap) * np.float32(weight)
    else:
        result[target] = source[span(start)]
    return result


def correct_tilt(
    voxels: np.ndarray, correction: TiltCorrection, fill_value: float, map_slices=map
) -> np.ndarray:
    """A new float32 ``[k, j, i]`` array on the corrected grid; ``voxels`` is left unchanged.

    ``map_slices(function, slice_indices)`` runs the per-slice work (a thread pool's ``map``
    to spread it; numpy releases the GIL in the blends).
    """
    columns, rows = correction.size_ij
    corrected = np.empty((voxels.shape[0], rows, columns), dtype=np.float32)

    def one(k: int) -> None:
        shift_slice(voxels[k], corrected[k], correction.source_offset_px[k], fill_value)

    list(map_slices(one, range(voxels.shape[0])))
    return corrected

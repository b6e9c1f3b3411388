"""Resampling a volume onto another volume's grid through world (LPS) coordinates.

Used on demand when two series of different geometry must be compared voxel by voxel (a
difference image, a checkerboard): every target voxel centre is mapped to LPS, then into the
source's continuous index, and sampled there. Never matched by voxel index.
"""

from __future__ import annotations

import weakref
from dataclasses import replace

import numpy as np

from app.core.volume import Geometry, Volume


def resample_onto(
    source: Volume,
    geometry: Geometry,
    shape_kji: tuple[int, int, int],
    linear: bool = True,
    fill_value: float = np.nan,
) -> Volume:
    """``source`` sampled on the grid (``geometry``, ``shape_kji``); ``fill_value`` outside it.

    Trilinear when ``linear`` else nearest neighbour. Processed slab by slab to bound memory.
    The result keeps the source's modality, units, name and provenance (a resampled synthetic
    volume is still synthetic).
    """
    if source.geometry.allclose(geometry) and tuple(source.voxels.shape) == tuple(shape_kji):
        return source
    nk, nj, ni = shape_kji
    out = np.empty(shape_kji, dtype=np.float32)
    jj, ii = np.meshgrid(np.arange(nj), np.arange(ni), indexing="ij")
    # Index -> source index is affine: precompute it once.
    source_from_target = np.linalg.inv(source.geometry.lps_from_ijk) @ geometry.lps_from_ijk
    for k in range(nk):
        target_ijk = np.stack([ii, jj, np.full_like(ii, k)], axis=-1).reshape(-1, 3).astype(float)
        source_ijk = target_ijk @ source_from_target[:3, :3].T + source_from_target[:3, 3]
        values = (_trilinear if linear else _nearest)(source.voxels, source_ijk, fill_value)
        out[k] = values.reshape(nj, ni)
    return _same_content(source, out, geometry)


def _same_content(source: Volume, voxels, geometry: Geometry) -> Volume:
    """What ``source`` is (modality, units, name, provenance, map kind, where it came from, header
    values) on other voxels and geometry (a label map's table is not carried)."""
    return replace(source, voxels=voxels, geometry=geometry, metadata=dict(source.metadata), label_map=None)


def resample_like(source: Volume, reference: Volume, linear: bool = True) -> Volume:
    """``source`` on ``reference``'s grid."""
    return resample_onto(source, reference.geometry, reference.shape_kji, linear)


_RESAMPLED_PAIRS: list[tuple[weakref.ref, weakref.ref, bool, Volume]] = []  # most recent last
_RESAMPLED_PAIRS_KEPT = 4


def lazy_resample_like(source: Volume, reference: Volume, linear: bool = True) -> Volume:
    """``source`` on ``reference``'s grid, sampled only where read (see ``lazy_voxels``), then
    filled whole in the background so that redraws slice it instead of resampling again.

    The same volume comes back when the grids already agree, and the same resampled volume for
    the same pair (the compare is rebuilt when a map is chosen: the partner is not resampled
    again).
    """
    from app.core.lazy_voxels import ResampledVoxels

    if source.geometry.allclose(reference.geometry) and source.shape_kji == reference.shape_kji:
        return source
    for source_ref, reference_ref, was_linear, resampled in _RESAMPLED_PAIRS:
        if source_ref() is source and reference_ref() is reference and was_linear == linear:
            return resampled
    voxels = ResampledVoxels(source.voxels, source.geometry, reference.geometry, reference.shape_kji, linear)
    voxels.fill_in_background()
    resampled = _same_content(source, voxels, reference.geometry)
    _RESAMPLED_PAIRS[:] = [
        entry for entry in _RESAMPLED_PAIRS if entry[0]() is not None and entry[1]() is not None
    ][-(_RESAMPLED_PAIRS_KEPT - 1) :] + [(weakref.ref(source), weakref.ref(reference), linear, resampled)]
    return resampled


def wait_for_resampled_partners(timeout_s: float = 60.0) -> bool:
    """Block until every cached resampled partner is filled (benchmarks, tests); True if all are."""
    for _, _, _, resampled in list(_RESAMPLED_PAIRS):
        thread = getattr(resampled.voxels, "_filling", None)
        if thread is not None:
            thread.join(timeout_s)
    return all(getattr(entry[3].voxels, "is_filled", True) for entry in _RESAMPLED_PAIRS)


def sample_at_index(
    voxels: np.ndarray, ijk: np.ndarray, linear: bool = True, fill_value: float = np.nan
) -> np.ndarray:
    """Values of ``voxels[k, j, i]`` at continuous (n, 3) indices; ``fill_value`` outside."""
    return (_trilinear if linear else _nearest)(voxels, np.asarray(ijk, float).reshape(-1, 3), fill_value)


def _nearest(voxels: np.ndarray, ijk: np.ndarray, fill_value: float) -> np.ndarray:
    nk, nj, ni = voxels.shape
    index = np.floor(ijk + 0.5).astype(np.int64)
    inside = np.all((index >= 0) & (index < np.array([ni, nj, nk])), axis=1)
    values = np.full(len(ijk), fill_value, dtype=np.float32)
    chosen = index[inside]
    values[inside] = voxels[chosen[:, 2], chosen[:, 1], chosen[:, 0]]
    return values


def _trilinear(voxels: np.ndarray, ijk: np.ndarray, fill_value: float) -> np.ndarray:
    nk, nj, ni = voxels.shape
    size = np.array([ni, nj, nk])
    # Points within half a voxel of the edge are clamped onto it (the voxel covers them).
    inside = np.all((ijk >= -0.5) & (ijk <= size - 0.5), axis=1)
    values = np.full(len(ijk), fill_value, dtype=np.float32)
    point = np.clip(ijk[inside], 0, size - 1)
    base = np.minimum(np.floor(point).astype(np.int64), np.maximum(size - 2, 0))
    frac = point - base
    upper = np.minimum(base + 1, size - 1)
    accum = np.zeros(len(point), dtype=np.float64)
    for di in (0, 1):
        wi = frac[:, 0] if di else 1 - frac[:, 0]
        ci = upper[:, 0] if di else base[:, 0]
        for dj in (0, 1):
            wj = frac[:, 1] if dj else 1 - frac[:, 1]
            cj = upper[:, 1] if dj else base[:, 1]
            for dk in (0, 1):
                wk = frac[:, 2] if dk else 1 - frac[:, 2]
                ck = upper[:, 2] if dk else base[:, 2]
                accum += wi * wj * wk * voxels[ck, cj, ci]
    values[inside] = accum
    return values


def reorient_towards_lps(volume: Volume) -> Volume:
    """The same voxels re-indexed so that i, j, k run as near as possible to +L, +P, +S.

    Only flips and transposes (no interpolation), so every voxel keeps its world position and
    the direction stays exact: the identity for an axis-aligned volume, for an oblique one the
    rotation left over after the nearest axis order (diagonal positive, so no mirror). Used
    where a consumer wants an array near LPS order and places the rest by a matrix (VTK).
    """
    direction = volume.geometry.direction
    lps_axis_of_index = [int(np.argmax(np.abs(direction[:, c]))) for c in range(3)]
    if sorted(lps_axis_of_index) != [0, 1, 2]:
        raise ValueError("direction too oblique to reorient by axis permutation")
    # Array axes are (k, j, i); target array axes (S, P, L) = LPS axes (2, 1, 0).
    index_of_lps_axis = [lps_axis_of_index.index(a) for a in range(3)]
    voxels = np.transpose(volume.voxels, [2 - index_of_lps_axis[a] for a in (2, 1, 0)])
    size_ijk = np.array(volume.size_ijk)
    first_index = np.zeros(3)
    signs = np.ones(3)
    flips = []
    for lps_axis, index_axis in enumerate(index_of_lps_axis):
        if direction[lps_axis, index_axis] < 0:
            first_index[index_axis] = size_ijk[index_axis] - 1
            signs[lps_axis] = -1.0
            flips.append(2 - lps_axis)
    if flips:
        voxels = np.flip(voxels, axis=flips)
    spacing = volume.geometry.spacing_mm[index_of_lps_axis]
    new_direction = direction[:, index_of_lps_axis] * signs
    geometry = Geometry(volume.geometry.lps_from_index(first_index), spacing, new_direction)
    return _same_content(volume, voxels, geometry)

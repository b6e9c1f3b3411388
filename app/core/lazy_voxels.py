"""Array-likes computed only where they are read: a volume resampled onto another grid, and a
difference of two volumes on one grid.

A viewer shows a few slices at a time, so resampling a whole 100 M-voxel series onto the
reference grid before the first picture (seconds, on the UI thread) buys nothing: these objects
answer ``voxels[...]`` for the slices and points asked for, through world coordinates.
They support what the viewer uses: basic indexing (ints and slices) and integer-array
indexing with arrays of one shape, plus ``np.asarray`` for the whole grid.
"""

from __future__ import annotations

import numpy as np

from app.core.volume import Geometry


def _requested_kji(key, shape: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, ...]]:
    """(n, 3) integer (k, j, i) indices that ``array[key]`` reads, and the result's shape."""
    key = key if isinstance(key, tuple) else (key,)
    if len(key) == 1 and key[0] is Ellipsis:
        key = ()
    if len(key) > 3:
        raise IndexError(f"too many indices for a 3D array: {key!r}")
    key = key + (slice(None),) * (3 - len(key))
    if all(isinstance(part, (int, np.integer, slice)) for part in key):
        axes, result_shape = [], []
        for part, length in zip(key, shape, strict=True):
            if isinstance(part, slice):
                indices = np.arange(*part.indices(length))
                result_shape.append(len(indices))
            else:
                index = int(part) + (length if int(part) < 0 else 0)
                if not 0 <= index < length:
                    raise IndexError(f"index {int(part)} is out of bounds for size {length}")
                indices = np.array([index])
            axes.append(indices)
        grids = np.meshgrid(*axes, indexing="ij")
        return np.stack([g.reshape(-1) for g in grids], axis=1), tuple(result_shape)
    if all(not isinstance(part, slice) for part in key):
        arrays = np.broadcast_arrays(*(np.asarray(part, dtype=np.int64) for part in key))
        for array, length in zip(arrays, shape, strict=True):
            if array.size and (array.min() < -length or array.max() >= length):
                raise IndexError("index out of bounds")
        arrays = [
            np.where(array < 0, array + length, array) for array, length in zip(arrays, shape, strict=True)
        ]
        return np.stack([a.reshape(-1) for a in arrays], axis=1), arrays[0].shape
    raise IndexError("mixing slices and index arrays is not supported here")


class _LazyVoxels:
    """What every lazy 3D float32 array shares: ``shape``, ``ndim``, ``dtype``, ``np.asarray``."""

    ndim = 3
    dtype = np.dtype(np.float32)
    shape: tuple[int, int, int]

    def __getitem__(self, key) -> np.ndarray:
        raise NotImplementedError

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = np.stack([self[k] for k in range(self.shape[0])])
        return whole if dtype is None else whole.astype(dtype)


class ResampledVoxels(_LazyVoxels):
    """``source_voxels`` (on ``source_geometry``) seen on the grid (``geometry``, ``shape_kji``)."""

    def __init__(
        self,
        source_voxels,
        source_geometry: Geometry,
        geometry: Geometry,
        shape_kji: tuple[int, int, int],
        linear: bool = True,
        fill_value: float = np.nan,
    ) -> None:
        self.shape = tuple(int(n) for n in shape_kji)
        self.size = int(np.prod(self.shape))
        self._source_voxels = source_voxels
        self._source_from_target = np.linalg.inv(source_geometry.lps_from_ijk) @ geometry.lps_from_ijk
        self._linear = linear
        self._fill_value = fill_value

    def __getitem__(self, key) -> np.ndarray:
        from app.core.resample import sample_at_index

        kji, result_shape = _requested_kji(key, self.shape)
        target_ijk = kji[:, ::-1].astype(float)
        source_ijk = target_ijk @ self._source_from_target[:3, :3].T + self._source_from_target[:3, 3]
        values = sample_at_index(self._source_voxels, source_ijk, self._linear, self._fill_value)
        return values.reshape(result_shape)


class DifferenceVoxels(_LazyVoxels):
    """``minuend - subtrahend`` element by element (both on one grid), as float32."""

    def __init__(self, minuend, subtrahend) -> None:
        if tuple(minuend.shape) != tuple(subtrahend.shape):
            raise ValueError(f"shapes differ: {minuend.shape} vs {subtrahend.shape}")
        self.shape = tuple(minuend.shape)
        self.size = int(np.prod(self.shape))
        self._minuend, self._subtrahend = minuend, subtrahend

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self._minuend[key], np.float32) - np.asarray(self._subtrahend[key], np.float32)

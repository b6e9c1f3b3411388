"""Checks of a NIfTI header before any voxel is read: what it declares must be readable.

A header is a few hundred bytes that may declare anything: 32767^3 voxels, or a .nii.gz whose
16 GiB of zeros compress to 16 MB (a gzip bomb). The declared size (dimensions x data type,
plus the scaled copy when scl_slope/scl_inter apply) is checked against the bytes the file can
hold and against the memory available, with room for the working copy every command makes,
so such a file is refused in milliseconds with a message saying what it declared. Voxel types
SynthView cannot show (RGBA colour, RGB other than 8-bit RGB24, complex) are refused by name.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from app.io.dicom_checks import DEFLATE_MAX_RATIO, format_bytes
from app.io.errors import LoadError
from app.io.memory import check_fits_in_memory

# Reading makes the array; display, conversion and export make at least one more of its size.
WORKING_COPIES = 2


def check_declared(path: Path, header) -> None:
    """``LoadError`` when the header declares voxels that cannot or should not be read."""
    shape = tuple(int(n) for n in header.get_data_shape())
    dtype = np.dtype(header.get_data_dtype())
    name = path.name
    if dtype.fields is not None and dtype != np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")]):
        kind = "RGBA" if len(dtype.fields) == 4 else "RGB"
        raise LoadError(
            f"{name}: an {kind} colour NIfTI image ({kind.lower()}{8 * dtype.itemsize}); SynthView reads"
            " greyscale volumes: convert it to one grey channel first"
        )
    if dtype.kind == "c":
        raise LoadError(
            f"{name}: a complex-valued NIfTI image ({dtype}); SynthView reads real-valued volumes"
        )
    if any(n < 0 for n in shape):
        raise LoadError(f"{name}: the header declares a negative dimension {shape}")
    voxels = math.prod(shape)
    raw_bytes = voxels * dtype.itemsize
    declared = f"{' x '.join(map(str, shape))} voxels of {dtype} ({format_bytes(raw_bytes)})"
    _check_file_holds(path, header, declared, raw_bytes)
    slope, intercept = header.get_slope_inter()
    scaled = (slope is not None and slope != 1) or (intercept is not None and intercept != 0)
    result_bytes = voxels * 8 if scaled else 0  # scaling makes a float copy
    check_fits_in_memory(name, declared, WORKING_COPIES * (raw_bytes + result_bytes))


def _check_file_holds(path: Path, header, declared: str, raw_bytes: int) -> None:
    try:
        size = path.stat().st_size
    except OSError:
        return
    if path.name.lower().endswith(".gz"):
        # Deflate expands at most ~1032 times: a smaller file cannot hold what it declares.
        if raw_bytes > size * DEFLATE_MAX_RATIO:
            raise LoadError(
                f"{path.name}: declares {declared}, more than its {format_bytes(size)} of compressed"
                " data can hold (truncated or corrupt)"
            )
        return
    offset = int(header.get_data_offset() or 0)
    if offset + raw_bytes > size:
        raise LoadError(
            f"{path.name}: declares {declared}, but the file holds {format_bytes(max(size - offset, 0))}"
            " of voxel data (truncated or corrupt)"
        )

"""A minimal PNG encoder (8-bit grey or RGB) so reports need neither Qt nor matplotlib."""

from __future__ import annotations

import struct
import zlib

import numpy as np


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a uint8 array (rows, cols) grey or (rows, cols, 3) RGB."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim == 2:
        colour_type, rows, cols = 0, *pixels.shape
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        colour_type, rows, cols = 2, pixels.shape[0], pixels.shape[1]
    else:
        raise ValueError(f"expected (rows, cols) or (rows, cols, 3), got {pixels.shape}")
    raw = b"".join(b"\x00" + pixels[r].tobytes() for r in range(rows))  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", cols, rows, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )

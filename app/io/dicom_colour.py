"""Colour and palette DICOM images (RGB, YBR, PALETTE COLOR: ultrasound, secondary captures,
photographs) as uint8 RGB voxels ``[k, j, i, c]``, the way a viewer shows them.

pydicom decodes and converts the colour space (YBR_FULL / YBR_FULL_422 / YBR_ICT / YBR_RCT to
RGB); a palette is applied through its lookup tables; 16-bit samples are scaled to 8 bits (a
display has no more). Every frame lands in its slice, as ``FrameRef`` lists them.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from app.core.study import SeriesInfo
from app.io.errors import LoadError
from app.io.pixel_decoders import DecodeError, decode_pixels


def is_colour_series(series: SeriesInfo) -> bool:
    return series.samples_per_pixel == 3 or series.photometric == "PALETTE COLOR"


def read_colour_series(series: SeriesInfo) -> np.ndarray:
    """voxels[k, j, i, c] (uint8 RGB) of a colour series. Raises ``LoadError``."""
    columns, rows, slices = series.size_ijk
    voxels = np.zeros((slices, rows, columns, 3), dtype=np.uint8)
    by_file: dict[str, list[tuple[int, int | None]]] = defaultdict(list)
    for k, frame in enumerate(series.frames):
        by_file[frame.path].append((k, frame.frame_index))
    for path, jobs in by_file.items():
        rgb = _rgb_frames(path)
        for k, frame_index in jobs:
            index = frame_index or 0
            if index >= len(rgb):
                raise LoadError(f"{Path(path).name}: frame {index + 1} is missing ({len(rgb)} decoded)")
            if rgb[index].shape != (rows, columns, 3):
                raise LoadError(
                    f"{Path(path).name}: decoded colour image is {rgb[index].shape}, "
                    f"header says {(rows, columns, 3)}"
                )
            voxels[k] = rgb[index]
    return voxels


def _rgb_frames(path: str) -> np.ndarray:
    """Every frame of one file as uint8 RGB (frames, rows, columns, 3)."""
    name = Path(path).name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(path, force=True)  # the scanner took files without a preamble too
            if "PixelData" not in dataset:
                raise LoadError(f"{name}: no pixel data in this file")
            _name_the_syntax_read(dataset)
            pixels = decode_pixels(dataset)
            photometric = str(dataset.get("PhotometricInterpretation", "")).strip().upper()
            frames = int(dataset.get("NumberOfFrames", 1) or 1)
            if photometric == "PALETTE COLOR":
                pixels = apply_color_lut(pixels, dataset)
    except LoadError:
        raise
    except DecodeError as error:
        raise LoadError(f"{name}: cannot decode pixel data ({error})") from error
    except Exception as error:  # noqa: BLE001 - a corrupt colour file: one clear line
        raise LoadError(f"{name}: cannot read colour pixel data ({type(error).__name__}: {error})") from error
    if pixels.ndim == 3 and frames == 1:
        pixels = pixels[np.newaxis]
    if pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise LoadError(f"{name}: decoded colour data has shape {pixels.shape}, not frames of RGB")
    return _as_uint8(pixels, dataset)


def _name_the_syntax_read(dataset: pydicom.Dataset) -> None:
    """A file without a meta header (no preamble) was read in little endian, implicit or explicit
    VR: say which, so the pixel decoder knows (it refuses a missing transfer syntax)."""
    meta = dataset.file_meta
    if "TransferSyntaxUID" not in meta and dataset.is_little_endian is not None:
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if dataset.is_implicit_VR else ExplicitVRLittleEndian


def _as_uint8(pixels: np.ndarray, dataset: pydicom.Dataset) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    if np.issubdtype(pixels.dtype, np.floating):
        return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    # Palette tables hold 16-bit entries (some writers put 8-bit values in them: those are kept);
    # RGB samples BitsStored bits: scale to 8 bits.
    palette = str(dataset.get("PhotometricInterpretation", "")).strip().upper() == "PALETTE COLOR"
    if palette:
        bits = 16 if int(pixels.max(initial=0)) > 255 else 8
    else:
        bits = int(dataset.get("BitsStored", 16) or 16)
    shift = max(bits - 8, 0)
    return np.clip(pixels.astype(np.int64) >> shift, 0, 255).astype(np.uint8)

"""Sanity checks of one DICOM file's header, before the scanner groups it or anything is allocated.

A hostile or corrupt file must cost one skipped file with a reason, never the series around it
and never a hang: sizes and counts are checked against the bytes the file really holds (a
``NumberOfFrames`` of 999999 with one frame of pixel data), geometry must be finite and usable
(orientation vectors of unit length and perpendicular, positions and spacings that keep the
affine finite), rescale values finite. Each check returns a reason ("" when the value is fine).
"""

from __future__ import annotations

import math
from collections.abc import Callable

MAX_SPACING_MM = 1e4  # 10 m per pixel or slice: anything larger is a corrupt value
MIN_SPACING_MM = 1e-6  # a nanometre: smaller positive values make a singular affine
MAX_POSITION_MM = 1e7  # 10 km from the origin
MAX_RESCALE = 1e20  # keeps slope x stored value + intercept far inside float32
SUPPORTED_BITS_ALLOCATED = (1, 8, 16, 32, 64)
DEFLATE_MAX_RATIO = 1100  # zlib cannot expand data more than ~1032 times

Getter = Callable[[str, object], object]


class _Unreadable(Exception):
    def __init__(self, keyword: str, error: Exception):
        super().__init__(f"unreadable {keyword} ({type(error).__name__}: {error})")


def header_fault(get: Getter, pixel_bytes: int | None, encapsulated: bool) -> str:
    """Why this file's header cannot describe a loadable image, or "".

    ``get(keyword, default)`` reads a header value (it may raise for a corrupt element);
    ``pixel_bytes`` is how many bytes the file holds from its pixel data on (None when unknown,
    as in a deflated file, where it is the whole file's size times the best zlib ratio).
    """
    try:
        return (
            _size_fault(get, pixel_bytes, encapsulated)
            or _geometry_fault(get)
            or _rescale_fault(get)
            or _uid_fault(get)
        )
    except _Unreadable as error:
        return str(error)


def _value(get: Getter, keyword: str, default=None):
    try:
        value = get(keyword, default)
    except Exception as error:  # noqa: BLE001 - pydicom raises many kinds for corrupt elements
        raise _Unreadable(keyword, error) from None
    return default if value is None or value == "" else value


def _integer(get: Getter, keyword: str, default: int | None) -> int | None:
    value = _value(get, keyword, default)
    if value is None:
        return None
    try:
        number = float(value) if isinstance(value, str) else value
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError(f"{number} is not a finite number")
        return int(number)
    except (TypeError, ValueError) as error:
        raise _Unreadable(keyword, error) from None


def numbers(value) -> list[float] | None:
    """A (multi-)valued number as floats (nan and inf kept), or None when absent or not numbers."""
    if value is None or value == "":
        return None
    items = [value] if isinstance(value, str | bytes | int | float) else list(value)
    try:
        return [float(item) for item in items]
    except (TypeError, ValueError):
        return None


def _size_fault(get: Getter, pixel_bytes: int | None, encapsulated: bool) -> str:
    rows = _integer(get, "Rows", None)
    columns = _integer(get, "Columns", None)
    if rows is None or columns is None:
        return ""  # not an image: the scanner says so itself
    if not (0 < rows <= 65535 and 0 < columns <= 65535):
        return f"image size Rows {rows} x Columns {columns} is not a valid image size"
    samples = _integer(get, "SamplesPerPixel", 1)
    if not 1 <= samples <= 4:
        return f"SamplesPerPixel {samples} is not a valid number of samples"
    bits_allocated = _integer(get, "BitsAllocated", 16)
    if bits_allocated not in SUPPORTED_BITS_ALLOCATED:
        return f"BitsAllocated {bits_allocated} is not supported (1, 8, 16, 32 or 64)"
    bits_stored = _integer(get, "BitsStored", bits_allocated)
    if not 1 <= bits_stored <= bits_allocated:
        return f"BitsStored {bits_stored} does not fit in BitsAllocated {bits_allocated}"
    if _integer(get, "PixelRepresentation", 0) not in (0, 1):
        return "PixelRepresentation is neither 0 (unsigned) nor 1 (signed)"
    frames = _integer(get, "NumberOfFrames", 1)
    if frames < 1:
        return f"NumberOfFrames {frames} is not a number of frames"
    if pixel_bytes is None:
        return ""
    frame_bits = rows * columns * samples * bits_allocated
    declared = (frames * frame_bits + 7) // 8
    what = f"{frames} frame(s) of {columns} x {rows}" + (f" x {samples}" if samples > 1 else "")
    what += f" x {bits_allocated} bits"
    if pixel_bytes == 0:
        # No pixel data at all: the loader says so when asked; a frame count still must not be believed.
        return "" if frames == 1 else f"header declares {what}, but the file holds no pixel data"
    if encapsulated:
        # Each compressed frame takes at least one 8-byte item header.
        if frames * 8 > pixel_bytes:
            return f"header declares {what}, but the file holds {format_bytes(pixel_bytes)} of compressed pixel data"
        return ""
    if declared > pixel_bytes:
        return (
            f"file is truncated or its header is wrong: it declares {what} ({format_bytes(declared)}), "
            f"the file holds {format_bytes(pixel_bytes)} of pixel data"
        )
    return ""


def _geometry_fault(get: Getter) -> str:
    orientation = numbers(_value(get, "ImageOrientationPatient"))
    if orientation is not None and len(orientation) == 6:
        reason = orientation_fault(orientation)
        if reason:
            return f"ImageOrientationPatient {_show(orientation)}: {reason}"
    position = numbers(_value(get, "ImagePositionPatient"))
    if position is not None and len(position) == 3:
        reason = position_fault(position)
        if reason:
            return f"ImagePositionPatient {_show(position)}: {reason}"
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        spacing = numbers(_value(get, keyword))
        if spacing is not None and len(spacing) == 2:
            reason = spacing_fault(spacing)
            if reason:
                return f"{keyword} {_show(spacing)}: {reason}"
    return ""


def _rescale_fault(get: Getter) -> str:
    for keyword in ("RescaleSlope", "RescaleIntercept"):
        value = numbers(_value(get, keyword))
        if value is not None:
            reason = rescale_fault(value)
            if reason:
                return f"{keyword} {_show(value)}: {reason}"
    return ""


def _uid_fault(get: Getter) -> str:
    """Study and series UIDs group the files and name a series on the command line: a UID with
    control characters or spaces inside is a corrupt value (letters, though invalid, are kept)."""
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
        value = _value(get, keyword)
        text = value if isinstance(value, str) else "" if value is None else "\\".join(map(str, value))
        reason = uid_fault(keyword, text)
        if reason:
            return reason
    return ""


def uid_fault(keyword: str, text: str) -> str:
    if len(text) > 64 or not all(32 < ord(c) < 127 for c in text):
        return f"{keyword} is not a UID ({len(text)} characters, not all of them printable)"
    return ""


def orientation_fault(cosines: list[float]) -> str:
    """Six direction cosines: finite, two unit vectors (to rounding), perpendicular."""
    if not all(math.isfinite(v) and abs(v) <= 2 for v in cosines):
        return "direction cosines must be finite numbers between -1 and 1"
    row, column = cosines[:3], cosines[3:]
    row_norm, column_norm = math.hypot(*row), math.hypot(*column)
    if not (0.5 < row_norm < 1.5 and 0.5 < column_norm < 1.5):
        return "row and column directions are not unit vectors"
    cosine = sum(a * b for a, b in zip(row, column, strict=True)) / (row_norm * column_norm)
    if abs(cosine) > 0.1:
        return "row and column directions are not perpendicular"
    return ""


def position_fault(position: list[float]) -> str:
    if not all(math.isfinite(v) and abs(v) <= MAX_POSITION_MM for v in position):
        return f"not a position within {MAX_POSITION_MM:g} mm"
    return ""


def spacing_fault(spacing: list[float]) -> str:
    """Finite, 1e-6 to 1e4 mm (zero or negative spacings are replaced by 1 mm with a warning)."""
    if not all(math.isfinite(v) and v <= MAX_SPACING_MM and not 0 < v < MIN_SPACING_MM for v in spacing):
        return f"not a spacing between {MIN_SPACING_MM:g} and {MAX_SPACING_MM:g} mm"
    return ""


def rescale_fault(value: list[float]) -> str:
    if not all(math.isfinite(v) and abs(v) <= MAX_RESCALE for v in value):
        return f"not a finite rescale value (at most {MAX_RESCALE:g})"
    return ""


def _show(values: list[float]) -> str:
    return "\\".join(f"{v:g}" for v in values[:6])


def format_bytes(count: int) -> str:
    size = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} bytes"

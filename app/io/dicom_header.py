"""A fast header reader for the common case: a Part 10 file in explicit VR little endian.

pydicom's reader is general and spends most of a folder scan on per-element bookkeeping. For
the syntax nearly every uncompressed series uses, this module walks the top-level elements
itself, keeps the plain ones as pydicom ``RawDataElement`` objects (so values still convert
lazily through pydicom), skips sequences, and stops at PixelData, whose byte offset it returns.
Anything unusual (another syntax, no preamble, functional-group or directory sequences,
malformed lengths) returns ``None`` and the caller uses pydicom instead.
"""

from __future__ import annotations

import struct

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian

_LONG_LENGTH_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_PIXEL_DATA = 0x7FE00010
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
# Sequences the scanner needs parsed: leave those files to pydicom.
# Shared / per-frame groups, DICOMDIR records, contributing equipment (may mark a synthetic image),
# real world value mapping (the scale of an MR image), modality LUT.
_NEEDS_PYDICOM = {0x52009229, 0x52009230, 0x00041220, 0x0018A001, 0x00409096, 0x00283000}
_FIRST_READ_BYTES = 8192  # most headers fit; larger ones (vendor blobs) are read on in doubling steps


class _NeedMore(Exception):
    """The header runs past the bytes read so far."""


def read_explicit_le_header(handle) -> tuple[pydicom.Dataset, int, str] | None:
    """(dataset of top-level plain elements, PixelData offset or end of file, syntax) or None."""
    buffer = handle.read(_FIRST_READ_BYTES)
    at_end = len(buffer) < _FIRST_READ_BYTES
    while True:
        try:
            return _parse(buffer, complete=at_end)
        except _NeedMore:
            if at_end:
                return None
            more = handle.read(len(buffer))
            at_end = len(more) < len(buffer)
            buffer += more
        except (struct.error, ValueError, UnicodeDecodeError):
            return None


def _parse(buffer: bytes, complete: bool):
    if len(buffer) < 132 or buffer[128:132] != b"DICM":
        return None
    position = 132
    elements: dict = {}
    syntax = ""
    end = len(buffer)
    while position < end:
        if position + 8 > end:
            if complete:
                break
            raise _NeedMore
        group, element = struct.unpack_from("<HH", buffer, position)
        tag = (group << 16) | element
        if group != 0x0002 and syntax != ExplicitVRLittleEndian:
            return None  # the data set is in another transfer syntax
        if tag == _PIXEL_DATA:
            return pydicom.Dataset(elements), position, syntax
        vr = buffer[position + 4 : position + 6]
        if vr in _LONG_LENGTH_VRS:
            if position + 12 > end:
                if complete:
                    return None
                raise _NeedMore
            (length,) = struct.unpack_from("<L", buffer, position + 8)
            value_start = position + 12
        else:
            if not vr.isalpha():
                return None
            (length,) = struct.unpack_from("<H", buffer, position + 6)
            value_start = position + 8
        if vr == b"SQ":
            if tag in _NEEDS_PYDICOM:
                return None
            position = (
                _skip_undefined_sequence(buffer, value_start, complete)
                if length == _UNDEFINED
                else value_start + length
            )
            continue
        if length == _UNDEFINED:
            return None
        value_end = value_start + length
        if value_end > end:
            if complete:
                return None  # truncated inside the header: let pydicom report it
            raise _NeedMore
        value = buffer[value_start:value_end]
        if group == 0x0002:
            if element == 0x0010:
                syntax = value.decode("ascii").strip("\x00 ")
        else:
            elements[Tag(tag)] = RawDataElement(
                Tag(tag), vr.decode("ascii"), length, value, value_start, False, True
            )
        position = value_end
    if not complete:
        raise _NeedMore  # the elements read so far end exactly at the buffer's end
    if syntax != ExplicitVRLittleEndian:
        return None
    return pydicom.Dataset(elements), end, syntax


def _skip_undefined_sequence(buffer: bytes, position: int, complete: bool) -> int:
    """Offset just past an undefined-length sequence (items of explicit VR elements)."""
    end = len(buffer)
    while True:
        if position + 8 > end:
            if complete:
                raise ValueError("sequence runs past the end of the file")
            raise _NeedMore
        group, element, length = struct.unpack_from("<HHL", buffer, position)
        tag = (group << 16) | element
        position += 8
        if tag == _SEQUENCE_END:
            return position
        if tag != _ITEM:
            raise ValueError("malformed sequence")
        if length != _UNDEFINED:
            position += length
            continue
        position = _skip_undefined_item(buffer, position, complete)


def _skip_undefined_item(buffer: bytes, position: int, complete: bool) -> int:
    end = len(buffer)
    while True:
        if position + 8 > end:
            if complete:
                raise ValueError("item runs past the end of the file")
            raise _NeedMore
        group, element = struct.unpack_from("<HH", buffer, position)
        tag = (group << 16) | element
        if tag == _ITEM_END:
            return position + 8
        vr = buffer[position + 4 : position + 6]
        if vr in _LONG_LENGTH_VRS:
            if position + 12 > end:
                raise _NeedMore
            (length,) = struct.unpack_from("<L", buffer, position + 8)
            value_start = position + 12
        else:
            (length,) = struct.unpack_from("<H", buffer, position + 6)
            value_start = position + 8
        if length == _UNDEFINED:
            if vr != b"SQ":
                raise ValueError("undefined length outside a sequence")
            position = _skip_undefined_sequence(buffer, value_start, complete)
        else:
            position = value_start + length

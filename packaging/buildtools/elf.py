"""Just enough ELF reading for the build checks: the libraries a file needs (DT_NEEDED) and the
symbol versions it requires (``.gnu.version_r``: GLIBC_2.34, GLIBCXX_3.4.30, ...). Pure Python,
so the checks run wherever the build runs, with or without binutils."""

from __future__ import annotations

import struct

SHT_DYNAMIC = 6
SHT_GNU_VERNEED = 0x6FFFFFFE
DT_NEEDED = 1


def _sections(data: bytes) -> tuple[str, bool, list[tuple[int, int, int, int, int]]] | None:
    """(endian, is_64, [(type, offset, size, link, info)]) of an ELF file, or None."""
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return None
    is_64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    if is_64:
        (shoff,) = struct.unpack_from(endian + "Q", data, 0x28)
        shentsize, shnum = struct.unpack_from(endian + "HH", data, 0x3A)
    else:
        (shoff,) = struct.unpack_from(endian + "I", data, 0x20)
        shentsize, shnum = struct.unpack_from(endian + "HH", data, 0x2E)
    sections = []
    for index in range(shnum):
        start = shoff + index * shentsize
        if start + shentsize > len(data):
            return None
        layout = "IIQQQQII" if is_64 else "IIIIIIII"
        _, kind, _, _, offset, size, link, info = struct.unpack_from(endian + layout, data, start)
        sections.append((kind, offset, size, link, info))
    return endian, is_64, sections


def _string(data: bytes, table_offset: int, index: int) -> str:
    end = data.index(b"\0", table_offset + index)
    return data[table_offset + index : end].decode("ascii", "replace")


def needed_libraries(data: bytes) -> list[str]:
    """The DT_NEEDED sonames of an ELF file (``libc.so.6``, ...); empty for other files."""
    parsed = _sections(data)
    if parsed is None:
        return []
    endian, is_64, sections = parsed
    layout, step = ("qQ", 16) if is_64 else ("iI", 8)
    names = []
    for kind, offset, size, link, _ in sections:
        if kind != SHT_DYNAMIC or link >= len(sections):
            continue
        strings_offset = sections[link][1]
        for entry in range(offset, offset + size, step):
            tag, value = struct.unpack_from(endian + layout, data, entry)
            if tag == 0:
                break
            if tag == DT_NEEDED:
                names.append(_string(data, strings_offset, value))
    return names


def version_needs(data: bytes) -> list[str]:
    """The version names (``GLIBC_2.34``, ``GLIBCXX_3.4.30``, ...) an ELF file requires.
    Empty for a non-ELF file or one without a version-needs section."""
    parsed = _sections(data)
    if parsed is None:
        return []
    endian, _, sections = parsed
    names = []
    for kind, offset, _size, link, count in sections:
        if kind != SHT_GNU_VERNEED or link >= len(sections):
            continue
        strings_offset = sections[link][1]
        entry = offset
        for _ in range(count):  # Verneed entries: vn_version, vn_cnt, vn_file, vn_aux, vn_next
            _, aux_count, _, aux, next_entry = struct.unpack_from(endian + "HHIII", data, entry)
            aux_entry = entry + aux
            for _ in range(aux_count):  # Vernaux: vna_hash, vna_flags, vna_other, vna_name, vna_next
                _, _, _, name, next_aux = struct.unpack_from(endian + "IHHII", data, aux_entry)
                names.append(_string(data, strings_offset, name))
                if not next_aux:
                    break
                aux_entry += next_aux
            if not next_entry:
                break
            entry += next_entry
    return names

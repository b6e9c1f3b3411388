"""What the PyInstaller spec leaves out of the bundle beyond its module excludes, by file.

- Qt's GTK platform theme plugin (``libqgtk3.so``): Qt's own style and the dark stylesheet
  serve; it is what pulls the GTK 3 stack (GTK, GDK, cairo, pango, atk, harfbuzz...) from the
  build machine into the bundle. Those system libraries go too, but only the ones nothing
  else in the bundle needs (worked out from each ELF file's DT_NEEDED list).
- libraries every supported system has, which the package depends on instead: the build host's
  ``libstdc++`` and ``libgcc_s`` need a newer glibc (Debian 12's need GLIBC_2.36/2.35) than
  the oldest supported system has, and the system's own copy must be used.

Entries are PyInstaller TOC tuples ``(destination, source, typecode)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from elf import needed_libraries

DROPPED_PLUGINS = ("PySide6/Qt/plugins/platformthemes/libqgtk3",)
SYSTEM_PROVIDED = ("libstdc++.so", "libgcc_s.so", "libexpat.so")
SYSTEM_PREFIXES = ("/usr/lib", "/lib")

Entry = Sequence  # (destination, source, typecode)


def _destination(entry: Entry) -> str:
    return str(entry[0]).replace(os.sep, "/")


def is_system_library(entry: Entry) -> bool:
    """Copied from the build machine's system (not from a wheel or the Python installation)."""
    return str(entry[1]).startswith(SYSTEM_PREFIXES) and "site-packages" not in str(entry[1])


def _needed(entry: Entry, cache: dict[str, list[str]]) -> list[str]:
    source = str(entry[1])
    if source not in cache:
        try:
            with open(source, "rb") as handle:
                cache[source] = needed_libraries(handle.read())
        except OSError:
            cache[source] = []
    return cache[source]


def reachable_system_libraries(roots: Iterable[Entry], system: dict[str, Entry], cache: dict) -> set[str]:
    """Names of the system libraries ``roots`` need, directly or through each other."""
    seen: set[str] = set()
    queue = [name for root in roots for name in _needed(root, cache)]
    while queue:
        name = queue.pop()
        if name in seen or name not in system:
            continue
        seen.add(name)
        queue.extend(_needed(system[name], cache))
    return seen


def trimmed_binaries(binaries: list[Entry]) -> list[Entry]:
    """``binaries`` without the GTK theme plugin, the system libraries only it needed, and the
    libraries the system provides (SYSTEM_PROVIDED)."""
    dropped = [entry for entry in binaries if _destination(entry).startswith(DROPPED_PLUGINS)]
    system = {os.path.basename(_destination(entry)): entry for entry in binaries if is_system_library(entry)}
    others = [entry for entry in binaries if not is_system_library(entry)]
    kept_roots = [entry for entry in others if entry not in dropped]
    cache: dict[str, list[str]] = {}
    before = reachable_system_libraries(others, system, cache)
    after = reachable_system_libraries(kept_roots, system, cache)
    orphaned = before - after
    kept = []
    for entry in binaries:
        name = os.path.basename(_destination(entry))
        if entry in dropped or (is_system_library(entry) and name in orphaned):
            continue
        if name.startswith(SYSTEM_PROVIDED):
            continue
        kept.append(entry)
    return kept


def write_manifest(analysis, path: Path) -> dict:
    """Every bundled module, binary and data file with its source, for the licence notice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    def files(entries) -> list[list[str]]:
        # SYMLINK entries name another bundled file, not a source; some modules have no source.
        return [[_destination(e), str(e[1])] for e in entries if e[1] and e[2] != "SYMLINK"]

    manifest = {"pure": files(analysis.pure), "binaries": files(analysis.binaries), "datas": files(analysis.datas)}
    path.write_text(json.dumps(manifest, indent=0), encoding="utf-8")
    return manifest

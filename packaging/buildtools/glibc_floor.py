"""The newest glibc symbol version any bundled ELF file needs, checked against the declared floor.

A library copied from the build machine (e.g. Debian 12's libstdc++, which needs
``arc4random@GLIBC_2.36``) stops the whole application from starting on an older system
(Ubuntu 22.04 has glibc 2.35), while apt would happily install a package whose
``Depends: libc6`` names no version. This check reads every ELF file's version-needs section
(``.gnu.version_r``, the ``GLIBC_2.xx`` names the dynamic linker checks) in pure Python, and
fails when one needs more than the ``libc6 (>= X)`` the package declares.

    python packaging/buildtools/glibc_floor.py BUNDLE_DIR --control packaging/deb/control.in
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from elf import version_needs

GLIBC_VERSION = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$")
DEPENDS_LIBC6 = re.compile(r"\blibc6 \(>= (\d+)\.(\d+)\)")

Version = tuple[int, ...]


@dataclass(frozen=True)
class Need:
    """One bundled file and the newest glibc version it needs."""

    path: Path
    version: Version


def glibc_needed(data: bytes) -> Version | None:
    """The newest ``GLIBC_x.y[.z]`` among an ELF file's needs, or None."""
    versions = [
        tuple(int(part) for part in match.groups() if part is not None)
        for match in map(GLIBC_VERSION.match, version_needs(data))
        if match
    ]
    return max(versions) if versions else None


def bundle_needs(bundle: Path) -> list[Need]:
    """Every ELF file under ``bundle`` that needs some glibc version, newest first."""
    needs = []
    for path in sorted(bundle.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        with path.open("rb") as handle:
            if handle.read(4) != b"\x7fELF":
                continue
        version = glibc_needed(path.read_bytes())
        if version is not None:
            needs.append(Need(path, version))
    return sorted(needs, key=lambda need: need.version, reverse=True)


def declared_floor(control_text: str) -> Version:
    """The ``libc6 (>= X.Y)`` of a Debian control file (template)."""
    match = DEPENDS_LIBC6.search(control_text)
    if not match:
        raise ValueError("the control file's Depends has no 'libc6 (>= X.Y)'")
    return tuple(int(part) for part in match.groups())


def too_new(needs: list[Need], floor: Version) -> list[Need]:
    return [need for need in needs if need.version > floor]


def _text(version: Version) -> str:
    return ".".join(map(str, version))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--control", type=Path, required=True, help="control file declaring libc6 (>= X.Y)")
    args = parser.parse_args(argv)
    floor = declared_floor(args.control.read_text(encoding="utf-8"))
    needs = bundle_needs(args.bundle)
    newest = needs[0].version if needs else (0,)
    print(f"[glibc] declared libc6 (>= {_text(floor)}); the bundle needs glibc {_text(newest)} "
          f"({len(needs)} ELF files checked)")
    offenders = too_new(needs, floor)
    for need in offenders[:20]:
        print(f"[glibc] {need.path.relative_to(args.bundle)} needs GLIBC_{_text(need.version)}", file=sys.stderr)
    if offenders:
        print(f"[glibc] FAILED: {len(offenders)} bundled files need a newer glibc than declared", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

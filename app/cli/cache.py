"""``python main.py cache [--clear] [--add PATH ...]``: where the decoded-series cache is and what
it holds; ``--clear`` removes every entry and prints what was removed; ``--add`` decodes studies
into it now (a DICOM folder or file: its scan and every series; a NIfTI file), so that their
first opening in the viewer shows them from the cache: a reader study's cases before the
session, the demo study when it is installed. Nothing is read from a study but its files; a
study already cached is checked (file stats), not decoded again.

The entries are patient images (PHI at rest, see ``app.io.decoded_cache``): clear the cache
before handing the machine or the user account on. ``SYNTHVIEW_CACHE_DIR=off`` turns it off.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clear", action="store_true", help="remove every cached series (patient images)")
    parser.add_argument(
        "--add", nargs="+", metavar="PATH", default=[],
        help="decode these studies (DICOM folder or file: every series; NIfTI file) into the cache now",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="with --add: print only what failed")


def run(args: argparse.Namespace) -> int:
    from app.io.decoded_cache import ENV_VARIABLE, DecodedCache

    cache = DecodedCache.from_environment()
    if cache is None:
        print(f"decoded-series cache: off ({ENV_VARIABLE}=off)")
        if args.add:
            print("cache: nothing added: the cache is off", file=sys.stderr)
            return 1
        return 0
    if args.add:
        return _add(cache, args.add, args.quiet)
    if args.clear:
        removed = cache.clear()
        for folder, size in removed:
            print(f"removed {folder} ({_megabytes(size)})")
        print(
            f"{len(removed)} entries removed ({_megabytes(sum(size for _, size in removed))}) from {cache.folder}"
        )
        return 0
    entries = cache.entries()
    print(f"decoded-series cache: {cache.folder}")
    print(
        f"{len(entries)} entries, {_megabytes(sum(size for _, size, _ in entries))} of {_megabytes(cache.max_bytes)}"
    )
    return 0


def _add(cache, paths: list[str], quiet: bool) -> int:
    """Decode each path into ``cache``: 0 when every one is there, else 1 (one line each). One
    series in memory at a time (stored before the next is read): a study of many large series
    is never held whole."""
    from pathlib import Path

    from app.cli.file_services import CachedFiles, opens_with_a_scan
    from app.core.messages import one_line

    failed = 0
    for path in paths:
        if not Path(path).exists():
            print(f"cache: cannot add {path}: it does not exist", file=sys.stderr)
            failed += 1
            continue
        files = CachedFiles(cache)
        series_count, size = 0, 0
        try:
            if opens_with_a_scan(path):
                series_list = files.scan_beside(path).all_series()
                if not series_list:
                    raise ValueError("no image series found")
                for series in series_list:
                    size += files.load_scanned(series, path).voxels.nbytes
                    files.wait_for_writes()
                stored = cache.holds(path, scan=True) and all(cache.holds(path, s.uid) for s in series_list)
                series_count = len(series_list)
            else:
                size = files.load_volume(path).voxels.nbytes
                files.wait_for_writes()
                stored, series_count = cache.holds(path), 1
        except Exception as error:  # noqa: BLE001 - corrupt or unreadable input: one line, go on
            print(f"cache: cannot add {path}: {one_line(f'{type(error).__name__}: {error}')}", file=sys.stderr)
            failed += 1
            continue
        if not stored:
            print(
                f"cache: {path} was read but not stored (its files changed meanwhile, or the cache "
                "is full, off or not writable)",
                file=sys.stderr,
            )
            failed += 1
        elif not quiet:
            print(f"cached {path}: {series_count} series, {_megabytes(size)}")
    return 1 if failed else 0


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"

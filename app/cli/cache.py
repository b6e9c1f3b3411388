"""``python main.py cache [--clear]``: where the decoded-series cache is and what it holds;
``--clear`` removes every entry and prints what was removed.

The entries are patient images (PHI at rest, see ``app.io.decoded_cache``): clear the cache
before handing the machine or the user account on. ``SYNTHVIEW_CACHE_DIR=off`` turns it off.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clear", action="store_true", help="remove every cached series (patient images)")


def run(args: argparse.Namespace) -> int:
    from app.io.decoded_cache import ENV_VARIABLE, DecodedCache

    cache = DecodedCache.from_environment()
    if cache is None:
        print(f"decoded-series cache: off ({ENV_VARIABLE}=off)")
        return 0
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


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"

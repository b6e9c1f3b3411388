"""Dask worker preload (``dask worker --preload app.batch.worker_preload``).

- Imports what a case needs (torch, the runtime, the file readers, the checks) when the worker
  starts, so the first case does not carry seconds of imports.
- Gives glibc's allocator back its usual thresholds. Dask's nanny starts workers with
  ``MALLOC_TRIM_THRESHOLD_=65536``; setting it switches off glibc's dynamic mmap threshold, so
  every tensor above 128 KiB is mmap'ed and unmapped on each forward pass and its pages faulted
  in again: measured here, twice the CPU time per case of the same loop outside Dask.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import app.analysis.compare_run  # noqa: F401
import app.io.loader  # noqa: F401
import app.io.nifti  # noqa: F401
import app.plugins.runtime  # noqa: F401

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def _restore_allocator_thresholds() -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to undo
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, 64 << 20) and mallopt(M_TRIM_THRESHOLD, 256 << 20))


_restore_allocator_thresholds()

"""What the desktop application's process sets before it imports numpy.

numpy's OpenBLAS starts a pool of one thread per core when numpy is imported: 0.04 s of CPU on
this 2-core machine, 0.06-0.13 s of wall time when it is busy, in a start (process to first
image) that should take 0.3 s, and more threads on a workstation with more cores. The viewer's
numpy work is element-wise (windowing, resampling, statistics) with small linear algebra (3x3
geometry, a few-dozen-row fit): one BLAS thread is all it uses. Its heavy compute (GAN plugins)
runs in torch, whose threads this leaves alone. A value the user set is kept.

Python's cyclic garbage collector is off from here until the window's start is over
(``app.ui.application.start_interactive_window`` turns it back on once the tools built after the
first image are built, or ``START_WITHOUT_COLLECTION_S`` after the window was built): the imports and widgets
of a start allocate enough objects to run it about 100 times, 0.015-0.02 s on the way to the
first image, for almost no garbage (a start's objects live as long as the window).

The command-line tools (``main.py COMMAND``) keep numpy's default and the collector.
"""

from __future__ import annotations

import gc
import os

BLAS_THREADS = {"OPENBLAS_NUM_THREADS": "1"}


def prepare_desktop_process() -> None:
    """Before numpy's import (it reads the variable once, when OpenBLAS loads)."""
    for name, value in BLAS_THREADS.items():
        os.environ.setdefault(name, value)
    gc.disable()  # on again when the start is over: start_interactive_window

"""Run a Python snippet in a child process of the test run (its own QApplication and event loop).

A GUI test that calls ``app.exec()`` or renders through VTK's own window does it in a child, so
later tests' event loops are undisturbed; the child sees the repository on PYTHONPATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_python_child(script: str, *arguments: str, **environment: str) -> subprocess.CompletedProcess:
    """Run ``script`` with ``arguments``; fail the test with its stderr unless it exits 0."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **environment}
    result = subprocess.run(
        [sys.executable, "-c", script, *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result

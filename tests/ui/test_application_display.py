"""Starting the application on a machine with no display (SSH session, server, CI without Xvfb).

Qt itself aborts the process there (exit 134) with a message about its xcb plugin and
libxcb-cursor0 that sends users to reinstall libraries they have. The viewer must say what is
wrong instead, and a screenshot, which needs no screen, must still be written.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from app.ui import application

REPO_ROOT = Path(__file__).resolve().parents[2]


def _main_without_display(*arguments: str) -> subprocess.CompletedProcess:
    """``python main.py ARGUMENTS`` with DISPLAY, WAYLAND_DISPLAY and QT_QPA_PLATFORM unset."""
    hidden = ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    env = {k: v for k, v in os.environ.items() if k not in hidden}
    return subprocess.run(
        [sys.executable, "main.py", *arguments],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def small_nifti(tmp_path) -> Path:
    path = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(16 * 16 * 8, dtype=np.float32).reshape(16, 16, 8), np.eye(4)), path)
    return path


def test_has_display_follows_the_environment(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert not application.has_display()
    monkeypatch.setattr(application, "x_display_answers", lambda display: True)
    monkeypatch.setenv("DISPLAY", ":99")
    assert application.has_display()
    monkeypatch.delenv("DISPLAY")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert application.has_display()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland display variables are Linux's")
def test_viewer_without_display_says_so_instead_of_aborting(small_nifti):
    done = _main_without_display("view", str(small_nifti))
    assert done.returncode == 1, done.stderr
    assert "no display" in done.stderr and "xvfb-run" in done.stderr
    assert "xcb" not in done.stderr  # Qt's own abort message never appears


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland display variables are Linux's")
def test_screenshot_without_display_is_rendered_offscreen(small_nifti, tmp_path):
    out = tmp_path / "shot.png"
    done = _main_without_display("view", str(small_nifti), "--screenshot", str(out), "--size", "600x400")
    assert done.returncode == 0, done.stderr
    assert out.exists() and out.stat().st_size > 1000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 displays are Linux's here")
def test_an_x_display_that_does_not_answer_counts_as_none(small_nifti):
    """A dropped 'ssh -X' leaves DISPLAY set: Qt would abort with its xcb message."""
    assert not application.x_display_answers(":4242")  # no X server there
    if os.environ.get("DISPLAY"):  # under xvfb-run: the one this suite runs on answers
        assert application.x_display_answers(os.environ["DISPLAY"])
    done = subprocess.run(
        [sys.executable, "main.py", "view", str(small_nifti)],
        cwd=REPO_ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")},
            "DISPLAY": ":4242",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "does not answer" in done.stderr and "xcb" not in done.stderr

"""Starting the application on a machine with no display (SSH session, server, CI without Xvfb).

Qt itself aborts the process there (exit 134) with a message about its xcb plugin and
libxcb-cursor0 that sends users to reinstall libraries they have. The viewer must say what is
wrong instead, and a screenshot, which needs no screen, must still be written.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
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


def _fresh_xvfb(number: int) -> subprocess.Popen:
    """``Xvfb :number`` that no client has connected to yet (and no -noreset: it resets when its
    last client leaves). Readiness comes through -displayfd, not a test connection, whose
    departure would itself reset the server while the test connects."""
    ready, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", f":{number}", "-screen", "0", "640x480x24", "-nolisten", "tcp", "-displayfd", str(write_end)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write_end,),
    )
    os.close(write_end)
    server.ready_fd = ready  # open until the server stops: Xvfb dies of SIGPIPE writing to a closed one
    announced = b""
    while not announced.endswith(b"\n") and select.select([ready], [], [], 30)[0]:
        chunk = os.read(ready, 64)
        if not chunk:
            break
        announced += chunk
    if announced.strip() != str(number).encode():
        _stop(server)
        pytest.skip(f"Xvfb :{number} did not start")
    return server


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(10)
    os.close(server.ready_fd)


def _free_display_number(start: int = 300) -> int:
    """A display number nobody uses, from ``start`` (a new number per server: a number just freed
    by a stopped Xvfb was refused to the next one now and then)."""
    for number in range(start, start + 200):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            return number
    pytest.skip("no free X display number")


def _second_client_survives(display: str) -> bool:
    """Connect as Qt would, after the probe, and make a round trip once a reset would have hit."""
    import ctypes

    class Cookie(ctypes.Structure):
        _fields_ = [("sequence", ctypes.c_uint)]

    xcb = ctypes.CDLL("libxcb.so.1")
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    xcb.xcb_get_input_focus.argtypes = [ctypes.c_void_p]
    xcb.xcb_get_input_focus.restype = Cookie
    xcb.xcb_get_input_focus_reply.argtypes = [ctypes.c_void_p, Cookie, ctypes.c_void_p]
    xcb.xcb_get_input_focus_reply.restype = ctypes.c_void_p
    connection = xcb.xcb_connect(display.encode(), None)
    try:
        if xcb.xcb_connection_has_error(connection):
            return False
        application.release_display_probe()  # what create_application does once Qt is connected
        time.sleep(0.05)
        reply = xcb.xcb_get_input_focus_reply(connection, xcb.xcb_get_input_focus(connection), None)
        ctypes.CDLL(None).free(ctypes.c_void_p(reply))
        return bool(reply) and xcb.xcb_connection_has_error(connection) == 0
    finally:
        xcb.xcb_disconnect(connection)


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb")
def test_the_display_probe_cannot_reset_a_fresh_x_server(monkeypatch):
    """A fresh Xvfb resets when its only client leaves: a probe that connected and disconnected
    before Qt connected killed Qt's connection in about 4 starts of 10 (exit 134)."""
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    failures = 0
    for attempt in range(20):
        number = _free_display_number(300 + 5 * attempt)
        server = _fresh_xvfb(number)
        try:
            monkeypatch.setenv("DISPLAY", f":{number}")
            assert application.has_display()
            failures += not _second_client_survives(f":{number}")
        finally:
            application.release_display_probe()
            _stop(server)
    assert failures == 0


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb")
def test_the_viewer_starts_every_time_under_a_fresh_xvfb(small_nifti, tmp_path):
    """The whole start (probe, then Qt's xcb connection), as the smoke test repeats 50 times."""
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    for attempt in range(3):
        number = _free_display_number(450 + 5 * attempt)
        server = _fresh_xvfb(number)
        try:
            out = tmp_path / f"shot{attempt}.png"
            done = subprocess.run(
                [sys.executable, "main.py", "view", str(small_nifti), "--screenshot", str(out), "--size", "400x300"],
                cwd=REPO_ROOT, env={**env, "DISPLAY": f":{number}"}, capture_output=True, text=True, timeout=120,
            )
            assert done.returncode == 0 and out.exists(), done.stderr[-1000:]
        finally:
            _stop(server)

"""Outputs appear complete or not at all (app.io.atomic), under kills and full disks.

Found by hand before the fix: ``kill -9`` during ``export --dicom`` of 300 slices left 43 files,
a full disk left 23 and a 9-line OSError traceback, and ``info``/``convert``/``view`` then showed
them as a clean 43-slice volume; a killed ``convert`` left an 87 MB ``*.partial.nii.gz``.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io import atomic
from app.io.atomic import WriteFailed, atomic_file, atomic_folder, remove_stale_partials
from app.io.nifti import save_nifti
from main import main

REPO_ROOT = Path(__file__).resolve().parents[2]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def volume(shape=(6, 10, 8), seed=0) -> Volume:
    voxels = np.random.default_rng(seed).uniform(0, 500, shape).astype(np.float32)
    result = Volume(voxels, Geometry(np.zeros(3), np.ones(3), np.eye(3)), modality="MR")
    result.provenance = Provenance("eraser", "1.0")
    return result


def test_a_file_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "new" / "out.txt"
    with atomic_file(target) as partial:
        partial.write_text("complete")
        assert not target.exists() and partial.name.startswith(".out.txt.partial-")
    assert target.read_text() == "complete"
    with pytest.raises(RuntimeError), atomic_file(target) as partial:
        partial.write_text("half")
        raise RuntimeError("stopped")
    assert target.read_text() == "complete"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_a_folder_appears_whole_and_replaces_only_when_asked(tmp_path):
    target = tmp_path / "series"
    with atomic_folder(target) as partial:
        (partial / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    with pytest.raises(WriteFailed, match="already exists"), atomic_folder(target) as partial:
        (partial / "b").write_text("2")
    with atomic_folder(target, replace=True) as partial:
        (partial / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]


def test_sigterm_removes_the_partial_output(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(SystemExit) as stopped, atomic_file(target) as partial:
        partial.write_bytes(b"x" * 1000)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
    assert stopped.value.code == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_leftovers_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    dead, alive = dead_pid(), os.getppid()
    target = tmp_path / "out.nii.gz"
    stale = [
        tmp_path / f".out.nii.gz.partial-{dead}.nii.gz",
        tmp_path / f".out.nii.gz.{dead}.partial.nii.gz",  # the writer before app.io.atomic
        tmp_path / f".out.nii.gz.old-{dead}",
    ]
    for path in stale:
        path.write_bytes(b"87 MB once")
    live = tmp_path / f".out.nii.gz.partial-{alive}.nii.gz"
    live.write_bytes(b"being written")
    unrelated = [tmp_path / ".out.nii.gz.1", tmp_path / ".out.nii.gz.partial-notapid", tmp_path / "out.json"]
    for path in unrelated:
        path.write_bytes(b"keep")
    assert sorted(remove_stale_partials(target)) == sorted(stale)
    assert live.exists() and all(p.exists() for p in unrelated)


def test_convert_cleans_what_a_killed_convert_left(tmp_path, capsys):
    source = save_nifti(volume(), tmp_path / "in.nii.gz")
    leftover = tmp_path / "out" / f".x.nii.gz.partial-{dead_pid()}.nii.gz"
    leftover.parent.mkdir()
    leftover.write_bytes(b"\x1f\x8b half a file")
    assert main(["convert", str(source), str(tmp_path / "out" / "x.nii.gz")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.json", "x.nii.gz"]


def _enospc_after(calls: int, real):
    count = [0]

    def write(*args, **kwargs):
        count[0] += 1
        if count[0] > calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    return write


@pytest.mark.parametrize("command", ["export --dicom", "convert", "compare --json"])
def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch, command):
    import nibabel
    import pydicom

    source = save_nifti(volume(shape=(30, 10, 8)), tmp_path / "in.nii.gz")
    out = tmp_path / "out"
    if command == "export --dicom":
        monkeypatch.setattr(pydicom.Dataset, "save_as", _enospc_after(12, pydicom.Dataset.save_as))
        argv, target = ["export", str(source), "--dicom", str(out / "series")], out / "series"
    elif command == "convert":
        monkeypatch.setattr(nibabel, "save", _enospc_after(0, nibabel.save))
        argv, target = ["convert", str(source), str(out / "x.nii.gz")], out / "x.nii.gz"
    else:
        monkeypatch.setattr(atomic.Path, "write_text", _enospc_after(0, atomic.Path.write_text))
        argv, target = ["compare", str(source), str(source), "--json", str(out / "c.json")], out / "c.json"
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert err.strip().splitlines() == [err.strip()] and "Traceback" not in err, err
    assert f"cannot write {target}: No space left on device" in err
    assert [p.name for p in out.iterdir()] == []  # no output, no partial sibling


def _export_then_kill(tmp_path: Path, source: Path, delay_s: float) -> Path:
    out = tmp_path / f"series-{delay_s}"
    partial_glob = f".{out.name}.partial-*"
    child = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "main.py"), "export", str(source), "--dicom", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if any(any(p.iterdir()) for p in tmp_path.glob(partial_glob)) or out.exists():
            break  # the first file appeared
        time.sleep(0.005)
    time.sleep(delay_s)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    return out


@pytest.mark.slow
def test_kill_9_during_export_dicom_leaves_the_series_absent_or_complete(tmp_path):
    source = save_nifti(volume(shape=(300, 64, 64)), tmp_path / "in.nii.gz")
    delay_s = float(np.random.default_rng(13).uniform(0.0, 0.2))  # a "random" point, reproducible
    out = _export_then_kill(tmp_path, source, delay_s)
    files = sorted(out.iterdir()) if out.exists() else []
    assert len(files) in (0, 300), f"{len(files)} files after a kill {delay_s:.3f} s in"
    if not files:  # the usual case: the next run removes the partial folder and writes it all
        assert list(tmp_path.glob(f".{out.name}.partial-*"))
        assert main(["export", str(source), "--dicom", str(out)]) == 0
        assert len(list(out.iterdir())) == 300
        assert not list(tmp_path.glob(f".{out.name}.partial-*"))


@pytest.mark.slow
def test_sigterm_during_convert_leaves_no_partial_file(tmp_path):
    big = volume(shape=(160, 256, 256))  # 42 MB of float32 noise: seconds of gzip
    source = save_nifti(big, tmp_path / "in.nii")
    out = tmp_path / "out"
    out.mkdir()
    child = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "main.py"), "convert", str(source), str(out / "x.nii.gz")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        p.stat().st_size > 0 for p in out.glob(".x.nii.gz.partial-*")
    ):
        time.sleep(0.01)
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=30)
    assert child.returncode == 128 + signal.SIGTERM
    assert list(out.iterdir()) == []


def test_a_real_full_file_system(tmp_path):
    """A 1 MiB tmpfs (in a private mount namespace): export --dicom and convert run out of
    space partway; each says so in one line and leaves nothing on the full file system."""
    import shutil

    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    source = save_nifti(volume(shape=(60, 128, 128)), tmp_path / "in.nii")  # 3.9 MB of float32 noise
    full = tmp_path / "full"
    full.mkdir()
    main_py = REPO_ROOT / "main.py"
    script = (
        f"mount -t tmpfs -o size=1m none {full} || exit 77; "
        f"{sys.executable} {main_py} export {source} --dicom {full}/series; echo rc=$?; "
        f"{sys.executable} {main_py} convert {source} {full}/x.nii.gz; echo rc=$?; "
        f"ls -A {full}"
    )
    result = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True, timeout=120
    )
    if result.returncode == 77 or "unshare:" in result.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    assert result.stdout.split() == ["rc=2", "rc=1"], (result.stdout, result.stderr)  # and ls: nothing
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"export: cannot write {full}/series: No space left on device",
        f"error: cannot write {full}/x.nii.gz: No space left on device",
    ], result.stderr


@pytest.mark.parametrize("depth", ["out.json", "deeper/out.json"])
def test_a_file_where_a_folder_is_needed_is_named(tmp_path, depth):
    # The OS words were 'File exists' (making the folder) or 'Not a directory': misleading.
    from app.io.atomic import WriteFailed, write_text_atomic

    blocker = tmp_path / "notes"
    blocker.write_text("x")
    with pytest.raises(WriteFailed) as raised:
        write_text_atomic(blocker / depth, "{}")
    message = str(raised.value)
    assert message == f"cannot write {blocker / depth}: {blocker} is a file where a folder is needed"
    assert "\n" not in message and blocker.read_text() == "x"

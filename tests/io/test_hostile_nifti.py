"""Hostile NIfTI headers are refused before any voxel is read (app.io.nifti_checks).

Found by hand before the fix: a 16 GiB gzip bomb and a 32767^3 header were allocated without a
check (they failed only under a memory cap, as "not a readable NIfTI image ()"); an int64 or
uint64 NIfTI failed in ``convert`` with nibabel's ValueError; an RGB24 NIfTI passed ``info``
and ``convert`` and then raised TypeError in ``view``.
"""

from __future__ import annotations

import gzip
import resource
import subprocess
import sys
import time
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from app.io import memory
from app.io.errors import LoadError
from app.io.nifti import load_nifti
from main import main

REPO_ROOT = Path(__file__).resolve().parents[2]
GIB = 1 << 30


def gzip_bomb(path: Path, shape=(4096, 4096, 1024)) -> Path:
    """A .nii.gz that really holds 16 GiB of zeros in ~16 MB: a header member, then one
    maximally compressed 64 MiB member repeated (gzip readers join members)."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.uint8)
    chunk = 64 << 20
    zeros = gzip.compress(b"\0" * chunk, compresslevel=9)
    with path.open("wb") as handle:
        handle.write(gzip.compress(header.binaryblock + b"\0" * 4))
        for _ in range(int(np.prod(shape)) // chunk):
            handle.write(zeros)
    return path


def huge_header(path: Path) -> Path:
    header = nib.Nifti1Header()
    header.set_data_shape((32767, 32767, 32767))
    header.set_data_dtype(np.int16)
    path.write_bytes(header.binaryblock + b"\0" * 4 + b"\0" * 4096)
    return path


def test_a_huge_header_is_refused_naming_what_it_declares(tmp_path, capsys):
    path = huge_header(tmp_path / "huge.nii")
    started = time.perf_counter()
    assert main(["info", str(path)]) != 0
    err = capsys.readouterr().err
    assert "declares 32767 x 32767 x 32767 voxels of int16 (64.0 TiB)" in err
    assert len(err.strip().splitlines()) == 1
    assert time.perf_counter() - started < 5


def test_a_truncated_gzip_is_refused_before_decompressing(tmp_path):
    header = nib.Nifti1Header()
    header.set_data_shape((2048, 2048, 2048))
    header.set_data_dtype(np.float32)
    path = tmp_path / "short.nii.gz"
    path.write_bytes(gzip.compress(header.binaryblock + b"\0" * 4 + b"\0" * 100_000))
    with pytest.raises(
        LoadError, match=r"declares 2048 x 2048 x 2048 voxels of float32 \(32.0 GiB\), more than"
    ):
        load_nifti(path)


def test_a_gzip_bomb_is_refused_by_the_memory_it_would_need(tmp_path, monkeypatch, capsys):
    bomb = gzip_bomb(tmp_path / "bomb.nii.gz")
    assert bomb.stat().st_size < 20 << 20  # 16 GiB of zeros in ~16 MB
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 8 * GIB)
    started = time.perf_counter()
    assert main(["convert", str(bomb), str(tmp_path / "out.nii.gz")]) != 0
    err = capsys.readouterr().err
    assert "declares 4096 x 4096 x 1024 voxels of uint8 (16.0 GiB)" in err and "only 8.0 GiB" in err
    assert time.perf_counter() - started < 5
    assert not (tmp_path / "out.nii.gz").exists()


def test_a_gzip_bomb_under_a_memory_cap_in_a_child_process(tmp_path):
    """The real entry point, memory capped at 3 GiB: refused quickly, resident memory small."""
    bomb = gzip_bomb(tmp_path / "bomb.nii.gz")

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (3 * GIB, 3 * GIB))

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "main.py"), "info", str(bomb)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=cap,
        env={"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    elapsed = time.perf_counter() - started
    assert result.returncode != 0
    assert "declares 4096 x 4096 x 1024 voxels of uint8 (16.0 GiB)" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 30
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert peak_kib < 1_000_000 or peak_kib == before  # under 1 GB (the maximum over children)


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
@pytest.mark.parametrize("offset", [0, 2**40])
def test_int64_and_uint64_nifti_convert(tmp_path, capsys, dtype, offset):
    values = (np.arange(4 * 5 * 6).reshape(4, 5, 6) * 1000 + offset).astype(dtype)
    source = tmp_path / "in.nii.gz"
    nib.save(nib.Nifti1Image(values, np.eye(4), dtype=dtype), source)
    assert main(["info", str(source)]) == 0
    assert main(["convert", str(source), str(tmp_path / "out.nii.gz")]) == 0, capsys.readouterr().err
    written = nib.load(tmp_path / "out.nii.gz")
    np.testing.assert_array_equal(np.asanyarray(written.dataobj), values)  # exact, every value
    expected = np.dtype(dtype) if offset else np.dtype(np.int32)  # 0 .. 119000
    assert written.get_data_dtype() == expected  # smallest type that holds them, 64-bit when needed


@pytest.mark.parametrize(("kind", "fields"), [("RGBA", "RGBA")])  # RGB24 is read (colour volumes)
def test_colour_nifti_is_refused_alike_by_info_convert_and_view(tmp_path, capsys, kind, fields):
    data = np.zeros((4, 5, 6), dtype=[(c, "u1") for c in fields])
    source = tmp_path / "colour.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), source)
    message = f"colour.nii.gz: an {kind} colour NIfTI image"
    for argv in (
        ["info", str(source)],
        ["convert", str(source), str(tmp_path / "out.nii.gz")],
        ["view", str(source), "--screenshot", str(tmp_path / "shot.png")],
    ):
        assert main(argv) != 0
        err = capsys.readouterr().err
        assert message in err and "TypeError" not in err, (argv, err)


def test_rgb24_nifti_is_read_by_info_convert_and_view(tmp_path, capsys):
    data = np.zeros((4, 5, 6), dtype=[(c, "u1") for c in "RGB"])
    data["G"][1, 2, 3] = 200
    source = tmp_path / "colour.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), source)
    for argv in (
        ["info", str(source)],
        ["convert", str(source), str(tmp_path / "out.nii.gz")],
        ["view", str(source), "--screenshot", str(tmp_path / "shot.png")],
    ):
        assert main(argv) == 0, capsys.readouterr().err
    written = np.asanyarray(nib.load(tmp_path / "out.nii.gz").dataobj)
    assert written.dtype.names == ("R", "G", "B") and np.array_equal(written, data)


def test_deflate_bound_is_what_zlib_can_do():
    """The ratio the truncation check relies on: zlib's best is ~1032:1."""
    raw = b"\0" * (16 << 20)
    from app.io.dicom_checks import DEFLATE_MAX_RATIO

    assert len(raw) / len(zlib.compress(raw, 9)) < DEFLATE_MAX_RATIO

"""Tiny real and synthetic NIfTI cases and a created study, for the reader-study tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io.nifti import load_nifti, save_nifti
from app.readerstudy.definition import definition_from_folders
from app.readerstudy.package import create_study

PLUGIN_NAME = "toygan-pix2pix"


def phantom(rng: np.random.Generator, shape: tuple[int, int, int] = (4, 12, 10)) -> np.ndarray:
    """One head-like image on a 0-1 scale: a smooth blob of random size, place and brightness
    over a background, plus noise of a random level; real and synthetic cases are drawn alike."""
    k, j, i = np.indices(shape, dtype=float)
    centre = rng.uniform(0.35, 0.65, 3) * np.array(shape)
    width = rng.uniform(0.25, 0.4) * np.array(shape)
    blob = np.exp(
        -0.5
        * (
            ((k - centre[0]) / width[0]) ** 2
            + ((j - centre[1]) / width[1]) ** 2
            + ((i - centre[2]) / width[2]) ** 2
        )
    )
    return 0.15 + rng.uniform(0.5, 0.7) * blob + rng.normal(0, rng.uniform(0.03, 0.06), shape)


def write_cases(root: Path, real: int = 4, synthetic: int = 4) -> tuple[Path, Path]:
    """Real cases as an acquisition stores them: int16, 8-bit values scaled by 4 (at most 256
    levels, maximum near 1020), 1.0 x 1.0 x 2.0 mm voxels; synthetic ones as a generator writes
    them: float32, continuous values on another scale (maximum near 912), with a provenance
    sidecar naming the plugin. The same content for both: only what blinding must remove differs."""
    rng = np.random.default_rng(7)
    real_dir, synthetic_dir = root / "real_scans", root / "synthetic_scans"
    real_dir.mkdir(parents=True)
    synthetic_dir.mkdir(parents=True)
    for index in range(real):
        voxels = (np.clip(np.round(phantom(rng) * 255), 0, 255) * 4).astype(np.int16)
        volume = Volume(voxels, Geometry.identity((1.0, 1.0, 2.0)), modality="MR", name=f"patient{index}")
        save_nifti(volume, real_dir / f"sub-{index:02d}_T1w_SeriesDescription.nii.gz")
    for index in range(synthetic):
        voxels = (phantom(rng) * 912).astype(np.float32)
        volume = Volume(
            voxels,
            Geometry.identity((1.0, 1.0, 2.0)),
            modality="MR",
            name=f"fake{index}",
            provenance=Provenance(PLUGIN_NAME, "1.0", task="t1-from-t2"),
        )
        save_nifti(volume, synthetic_dir / f"sub-{index:02d}_{PLUGIN_NAME}_synthetic.nii.gz")
    return real_dir, synthetic_dir


@pytest.fixture
def case_folders(tmp_path):
    return write_cases(tmp_path / "sources")


@pytest.fixture
def created_study(tmp_path, case_folders):
    """A visual Turing test with one practice case per class; returns (CreatedStudy, definition)."""
    real_dir, synthetic_dir = case_folders
    definition = definition_from_folders(
        real_dir, synthetic_dir, "VTT of toygan", seed=1234, practice_per_class=1
    )
    created = create_study(definition, tmp_path / "study", load_nifti, save_nifti)
    return created, definition


POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL 15 server (initdb into a temp dir + pg_ctl), run as the ``postgres``
    user when the tests run as root. Skipped, with the reason, only when the binaries are absent."""
    import os
    import shutil
    import subprocess
    import tempfile

    if not (POSTGRES_BIN / "initdb").exists() or not (POSTGRES_BIN / "pg_ctl").exists():
        pytest.skip(f"PostgreSQL server binaries not installed ({POSTGRES_BIN}/initdb, pg_ctl)")
    root = Path(tempfile.mkdtemp(prefix="synthview-pg-"))
    data_dir, socket_dir, log = root / "data", root / "socket", root / "server.log"
    socket_dir.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:
        import pwd

        account = pwd.getpwnam("postgres")
        for path in (root, socket_dir):
            os.chown(path, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [
            *as_user,
            str(POSTGRES_BIN / "initdb"),
            "-D",
            str(data_dir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
    started = subprocess.run(
        [
            *as_user,
            str(POSTGRES_BIN / "pg_ctl"),
            "-D",
            str(data_dir),
            "-l",
            str(log),
            "-o",
            options,
            "-w",
            "start",
        ],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        text = log.read_text() if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {started.stderr}\n{text}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(POSTGRES_BIN / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def create_folders_study(case_folders: tuple[Path, Path], out_dir: Path) -> Path:
    """``main.py study create --real R --synthetic S OUT_DIR`` as a coordinator runs it; OUT_DIR."""
    from main import main

    real_dir, synthetic_dir = case_folders
    assert (
        main(["study", "create", "--real", str(real_dir), "--synthetic", str(synthetic_dir), str(out_dir)])
        == 0
    )
    return out_dir

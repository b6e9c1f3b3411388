"""The cohort on a real Dask cluster: a `dask scheduler` and two `dask worker` processes on free
ports. One worker is killed while it runs a case: its cases are redone on the other, and every
case ends exactly once with complete outputs and one row."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.batch.cohort_factory import write_cohort

ROOT = Path(__file__).resolve().parents[2]
DASK = str(Path(sys.executable).with_name("dask"))
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port}")


@pytest.fixture
def cluster(tmp_path):
    scheduler_port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = {}

    def start(name, *args):
        procs[name] = subprocess.Popen(
            [DASK, *args], cwd=ROOT, env=env, stdout=(logs / f"{name}.log").open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", str(scheduler_port), "--no-dashboard")
    wait_for_port(scheduler_port)
    address = f"tcp://127.0.0.1:{scheduler_port}"
    worker_ports = {}
    for name in ("worker-a", "worker-b"):
        worker_ports[name] = free_port()
        start(name, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
              "--host", "127.0.0.1", "--worker-port", str(worker_ports[name]), "--no-nanny",
              "--preload", "app.batch.worker_preload")  # fmt: skip
    for port in worker_ports.values():
        wait_for_port(port)
    yield address, procs, worker_ports
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_a_worker_killed_mid_case_loses_nothing_and_duplicates_nothing(cluster, tmp_path):
    from dask.distributed import Client

    address, procs, worker_ports = cluster
    inputs = tmp_path / "in"
    write_cohort(inputs, 12)
    out = tmp_path / "out"
    run = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "batch", "synthesize", "--plugin", "mr-t1-denoise", str(inputs),
         str(out), "--scheduler", address, "--retries", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    killed = None
    with Client(address, timeout="20s") as observer:
        deadline = time.monotonic() + 180
        while killed is None and time.monotonic() < deadline and run.poll() is None:
            done = len(list((out / "cases").glob("*/case.json"))) if (out / "cases").is_dir() else 0
            if done >= 2:
                for worker, keys in observer.processing().items():
                    name = next((n for n, p in worker_ports.items() if worker.endswith(f":{p}")), None)
                    if keys and name:
                        procs[name].send_signal(signal.SIGKILL)  # in the middle of a case
                        killed = name, list(keys)
                        break
            time.sleep(0.05)
    stdout, stderr = run.communicate(timeout=300)
    assert killed is not None, f"no worker was busy to be killed; run output: {stderr[-2000:]}"
    assert run.returncode == 0, stderr[-3000:]
    assert "12 case(s): 12 synthesized, 0 already complete, 0 failed" in stdout
    table = json.loads((out / "results.json").read_text())["rows"]
    ids = [r["case_id"] for r in table]
    assert sorted(ids) == [f"case{n:02d}" for n in range(12)]  # each case once
    assert {r["status"] for r in table} == {"done"}
    for case_id in ids:
        record = json.loads((out / "cases" / case_id / "case.json").read_text())
        assert all((out / "cases" / case_id / f).exists() for f in record["files"])
    assert not [p.name for p in (out / "cases").iterdir() if p.name.startswith(".")]  # no half-written case
    # The killed worker's case was finished by the surviving one.
    survivors = {r["worker"] for r in table if r["case_id"] in {k.split("-")[1] for k in killed[1]}}
    assert survivors and procs[killed[0]].poll() is not None
    assert "the cluster at tcp://127.0.0.1" in stderr
    # The same cohort on the embedded LocalCluster gives the same outputs (to float rounding: the
    # workers' thread counts differ, and so does the order of the convolutions' sums).
    import nibabel as nib
    import numpy as np

    embedded = tmp_path / "embedded"
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "batch", "synthesize", "--plugin", "mr-t1-denoise", str(inputs),
         str(embedded), "--workers", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0 and "12 case(s): 12 synthesized" in result.stdout, result.stderr[-2000:]
    for case_id in ids:
        a = nib.load(out / "cases" / case_id / "synthesized.nii.gz").get_fdata()
        b = nib.load(embedded / "cases" / case_id / "synthesized.nii.gz").get_fdata()
        assert np.allclose(a, b, rtol=0, atol=1e-4 * float(np.ptp(a))), (case_id, float(np.abs(a - b).max()))


def test_gpu_cases_are_refused_when_no_worker_declares_a_gpu(cluster, tmp_path):
    address, _, _ = cluster
    inputs = tmp_path / "in"
    write_cohort(inputs, 1)
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "batch", "synthesize", "--plugin", "mr-t1-denoise", str(inputs),
         str(tmp_path / "out"), "--scheduler", address, "--device", "cuda"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no worker of the cluster declares a GPU" in result.stderr and "--resources GPU=1" in result.stderr

"""A cohort on the embedded Dask cluster: outputs complete, one row per case, failures recorded,
re-runs skip finished cases and redo changed ones, the report and `batch status`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.batch.cohort_factory import write_cohort

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def batch(*args, check_rc=None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "batch", *map(str, args)],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )  # fmt: skip
    if check_rc is not None:
        assert result.returncode == check_rc, result.stderr[-3000:]
    return result


def rows(out_dir: Path) -> dict[str, dict]:
    return {r["case_id"]: r for r in json.loads((out_dir / "results.json").read_text())["rows"]}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cohort")
    inputs = folder / "in"
    write_cohort(inputs, 3)
    (inputs / "broken.nii.gz").write_bytes(b"not a NIfTI image at all")
    out = folder / "out"
    result = batch("synthesize", "--plugin", "mr-t1-denoise", inputs, out, "--compare", "--retries", "1",
                   "--report", folder / "report.html", "--json", folder / "table.json", check_rc=1)  # fmt: skip
    return inputs, out, folder, result


def test_every_case_ends_once_and_a_bad_case_is_recorded(first_run):
    inputs, out, folder, result = first_run
    table = rows(out)
    assert sorted(table) == ["broken", "case00", "case01", "case02"]
    assert table["broken"]["status"] == "failed"
    assert "broken.nii.gz" in table["broken"]["reason"] and "2 attempt(s)" in table["broken"]["reason"]
    assert "failed: broken:" in result.stderr
    for case_id in ("case00", "case01", "case02"):
        row = table[case_id]
        assert row["status"] == "done"
        case_dir = out / "cases" / case_id
        record = json.loads((case_dir / "case.json").read_text())
        assert all((case_dir / name).exists() for name in record["files"])
        sidecar = json.loads((case_dir / "synthesized.json").read_text())
        assert sidecar["Synthetic"] is True and sidecar["provenance"]["plugin_name"] == "mr-t1-denoise"
        assert row["region_count"] is not None and row["metrics"]["mae"] > 0
        assert row["worker_plugin_loads"] == 1  # one worker: the plugin was loaded once, not per case
    assert not [p for p in (out / "cases").iterdir() if p.name.startswith(".")]  # nothing half-written
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 5 and csv_lines[0].startswith("case_id,status,reason,region_count")
    assert json.loads((folder / "table.json").read_text())["summary"] == {"cases": 4, "done": 3, "skipped": 0, "failed": 1}


def test_the_report_shows_suspicious_cases_failures_and_provenance(first_run):
    _, _, folder, _ = first_run
    html = (folder / "report.html").read_text()
    assert "Most suspicious cases" in html and "data:image/png;base64," in html
    assert "Failures (1)" in html and "broken.nii.gz" in html
    assert "mr-t1-denoise" in html and "SYNTHETIC" in html


def test_status_lists_complete_failed_and_not_run(first_run):
    _, out, _, _ = first_run
    status = json.loads(batch("status", out, "--json", check_rc=0).stdout)
    assert (status["total"], status["complete"], status["failed"], status["not run"]) == (4, 3, 1, 0)
    text = batch("status", out, check_rc=0).stdout
    assert "3 complete, 1 failed, 0 not run" in text and "failed   broken" in text


def test_a_rerun_skips_complete_cases_and_redoes_changed_inputs(first_run):
    inputs, out, folder, _ = first_run
    before = {c: (out / "cases" / c / "case.json").stat().st_mtime_ns for c in ("case00", "case01", "case02")}
    (inputs / "broken.nii.gz").unlink()
    write_cohort(inputs / "again", 1)  # writes again/case00.nii.gz: a new case
    changed = inputs / "case01.nii.gz"
    (inputs / "again" / "case00.nii.gz").replace(changed)  # case01's content changes
    shutil.rmtree(inputs / "again")
    result = batch("synthesize", "--plugin", "mr-t1-denoise", inputs, out, "--compare", check_rc=0)
    assert "1 synthesized, 2 already complete, 0 failed" in result.stdout
    table = rows(out)
    assert table["case00"]["status"] == "skipped" and table["case02"]["status"] == "skipped"
    assert table["case01"]["status"] == "done"
    after = {c: (out / "cases" / c / "case.json").stat().st_mtime_ns for c in before}
    assert after["case00"] == before["case00"] and after["case01"] != before["case01"]


def test_outputs_that_overlap_the_input_or_exist_are_refused(first_run, tmp_path):
    inputs, out, folder, _ = first_run
    result = batch("synthesize", "--plugin", "mr-t1-denoise", inputs, inputs / "out", check_rc=2)
    assert "inside the input folder" in result.stderr  # the output policy (app.cli.writable)
    (tmp_path / "foreign.txt").write_text("x")
    result = batch("synthesize", "--plugin", "mr-t1-denoise", inputs, tmp_path, check_rc=2)
    assert "not empty and holds no batch run" in result.stderr
    result = batch("synthesize", "--plugin", "mr-t1-denoise", inputs, out, "--report", folder / "report.html", check_rc=2)
    assert "already exists (give --force" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_cases_without_a_gpu_are_refused_not_left_waiting(first_run, tmp_path):
    inputs, _, _, _ = first_run
    result = batch("synthesize", "--plugin", "mr-t1-denoise", inputs, tmp_path / "o", "--device", "cuda", check_rc=2)
    assert "no CUDA GPU is usable" in result.stderr and "Traceback" not in result.stderr

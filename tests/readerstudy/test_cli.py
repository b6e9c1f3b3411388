"""``python main.py study ...``: a coordinator creates a study from two folders, three readers take
it (one interrupted and resumed), and analyze/export produce the statistics and report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.readerstudy.package import load_package
from app.readerstudy.session import ReadingSession
from app.readerstudy.storage import StudyStore
from main import main
from tests.readerstudy.conftest import create_folders_study

REPO_ROOT = Path(__file__).resolve().parents[2]
VAN_DYKE = REPO_ROOT / "tests" / "data" / "vandyke-roc.imrmc"


def take_study(
    reading_dir: Path, reader: str, truth: dict, skill: float, stop_after: int | None = None
) -> int:
    package, folder = load_package(reading_dir)
    store = StudyStore(folder / package["database"], create=False)
    session = ReadingSession(package, folder, store, reader)
    rng = np.random.default_rng(sum(map(ord, reader)))
    answered = 0
    while not session.finished and (stop_after is None or answered < stop_after):
        is_synthetic = truth[session.current.item_id]["truth"] == "synthetic"
        correct = rng.random() < skill
        choice = "synthetic" if is_synthetic == correct else "real"
        confidence = int(rng.integers(1, 6))
        session.submit(
            {"call": {"choice": choice, "confidence": confidence}, "quality": int(rng.integers(1, 6))}, 3.0
        )
        answered += 1
    position = session.position
    store.close()
    return position


def test_create_read_analyze_export(tmp_path, case_folders, capsys):
    real_dir, synthetic_dir = case_folders
    out_dir = tmp_path / "study"
    code = main(
        [
            "study",
            "create",
            "--real",
            str(real_dir),
            "--synthetic",
            str(synthetic_dir),
            str(out_dir),
            "--seed",
            "5",
            "--practice",
            "1",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "seed 5" in printed and str(out_dir / "reading") in printed
    truth = json.loads((out_dir / "truth" / "truth.json").read_text())["items"]

    take_study(out_dir / "reading", "R1", truth, 0.9)
    take_study(out_dir / "reading", "R2", truth, 0.6)
    stopped_at = take_study(out_dir / "reading", "R3", truth, 0.5, stop_after=3)  # interrupted...
    assert take_study(out_dir / "reading", "R3", truth, 0.5) == len(truth)  # ...and resumed to the end
    assert stopped_at == 3

    json_out, report = tmp_path / "result.json", tmp_path / "report.html"
    assert (
        main(
            [
                "study",
                "analyze",
                str(out_dir / "answers.db"),
                "--json",
                str(json_out),
                "--report",
                str(report),
            ]
        )
        == 0
    )
    result = json.loads(json_out.read_text())
    section = result["modalities"]["default"]
    assert result["readers"] == ["R1", "R2", "R3"]
    assert section["cases"] == len(truth) - 2  # practice excluded
    assert set(section["binary"]["per_reader"]) == {"R1", "R2", "R3"}
    for key in ("accuracy", "sensitivity", "specificity", "fooling_rate"):
        entry = section["binary"]["pooled"][key]
        assert entry["ci_low"] <= entry["estimate"] <= entry["ci_high"]
    assert "fleiss" in section["agreement"] and len(section["agreement"]["cohen_pairwise"]) == 3
    assert section["likert"]["test_name"].startswith("Mann-Whitney")
    assert section["mean_time_per_case_s"] == pytest.approx(3.0)
    html = report.read_text()
    assert html.count("data:image/png;base64,") == 1
    for name in ("Clopper-Pearson", "exact two-sided binomial test", "DeLong", "Fleiss", "Mann-Whitney"):
        assert name in html

    csv_out = tmp_path / "long.csv"
    assert (
        main(
            [
                "study",
                "export-csv",
                str(out_dir / "answers.db"),
                str(csv_out),
                "--imrmc",
                str(tmp_path / "x.imrmc"),
            ]
        )
        == 0
    )
    header = csv_out.read_text().splitlines()[0]
    assert header.startswith("reader,modality,case,truth,rating,time_s")
    assert main(["study", "analyze", str(csv_out), "--json", str(tmp_path / "from_csv.json")]) == 0
    from_csv = json.loads((tmp_path / "from_csv.json").read_text())["modalities"]["default"]
    assert from_csv["binary"]["pooled"] == section["binary"]["pooled"]
    assert from_csv["roc"]["per_reader"] == section["roc"]["per_reader"]
    assert main(["study", "analyze", str(tmp_path / "x.imrmc")]) == 0


def test_analyze_van_dyke_as_a_subprocess_prints_the_published_figures(tmp_path):
    completed = subprocess.run(
        [sys.executable, "main.py", "study", "analyze", str(VAN_DYKE), "--json", str(tmp_path / "vd.json")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "F = 4.456, ndf = 1, ddf = 15.26, p = 0.0517" in completed.stdout
    assert "AUC 0.91964573" in completed.stdout and "AUC 0.99935588" in completed.stdout


def test_bad_input_gives_a_message_and_exit_code_2(tmp_path, capsys):
    assert main(["study", "analyze", str(tmp_path / "missing.db")]) == 2
    assert "no such file" in capsys.readouterr().err
    junk = tmp_path / "junk.txt"
    junk.write_text("not a study")
    assert main(["study", "analyze", str(junk)]) == 2
    assert "not a study database" in capsys.readouterr().err
    assert main(["study", "read", str(tmp_path), "--reader", "R1"]) == 2
    assert "not a reading package" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        main(["study", "create", "--real", str(empty), "--synthetic", str(empty), str(tmp_path / "out")]) == 2
    )
    assert "no image files" in capsys.readouterr().err


def test_study_read_opens_the_session_window(tmp_path, case_folders):
    out_dir = tmp_path / "study"
    create_folders_study(case_folders, out_dir)
    screenshot = tmp_path / "first.png"
    completed = subprocess.run(
        [
            sys.executable,
            "main.py",
            "study",
            "read",
            str(out_dir / "reading"),
            "--reader",
            "R9",
            "--screenshot",
            str(screenshot),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert completed.returncode == 0, completed.stderr
    assert screenshot.stat().st_size > 1000
    store = StudyStore(out_dir / "answers.db", create=False)
    assert store.readers(store.study_ids()[0]) == ["R9"]  # the reader's order is recorded
    store.close()


def test_outputs_that_cannot_be_written_give_a_message_not_a_traceback(tmp_path, case_folders, capsys):
    """--json, --report, OUT.csv and --imrmc below a file (not a folder): exit 2, one line.
    (A folder that does not exist is created, as by every command.)"""
    out_dir = tmp_path / "study"
    create_folders_study(case_folders, out_dir)
    truth = json.loads((out_dir / "truth" / "truth.json").read_text())["items"]
    take_study(out_dir / "reading", "R1", truth, skill=0.8)
    database = str(out_dir / "answers.db")
    missing = tmp_path / "no-such-folder"
    missing.write_text("a file, not a folder")
    capsys.readouterr()
    for arguments in (
        ["study", "analyze", database, "--report", str(missing / "r.html")],
        ["study", "analyze", database, "--json", str(missing / "r.json")],
        ["study", "export-csv", database, str(missing / "r.csv")],
        ["study", "export-csv", database, str(tmp_path / "ok.csv"), "--imrmc", str(missing / "r.imrmc")],
    ):
        assert main(arguments) == 2, arguments
        error = capsys.readouterr().err
        assert error.startswith("study: ") and "cannot write" in error and "no-such-folder" in error, error


def test_a_truth_file_of_another_study_is_named_plainly(tmp_path, case_folders, capsys):
    real_dir, synthetic_dir = case_folders
    for name in ("one", "two"):
        arguments = ["study", "create", "--real", str(real_dir), "--synthetic", str(synthetic_dir)]
        assert main([*arguments, str(tmp_path / name)]) == 0
    capsys.readouterr()
    other_truth = tmp_path / "two" / "truth" / "truth.json"
    arguments = ["study", "analyze", str(tmp_path / "one" / "answers.db"), "--truth", str(other_truth)]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    study_id = json.loads(other_truth.read_text())["study_id"]
    assert f"study {study_id} is not in this database" in error and "'" not in error, error


def test_analyze_prints_the_two_afc_result(tmp_path, capsys):
    """A 2AFC study's console summary named only the readers: its one result was in the report
    and JSON but not on the screen."""
    table = tmp_path / "pairs.csv"
    rows = ["reader,modality,case,truth,rating,decision,pair"]
    rows += [f"R1,default,c{i},1,,{int(i < 7)},pair{i}" for i in range(10)]  # 7 of 10 picked right
    table.write_text("\n".join(rows) + "\n")
    assert main(["study", "analyze", str(table)]) == 0
    out = capsys.readouterr().out
    # Exact two-sided binomial p of 7/10 against 1/2: (1 + 10 + 45 + 120) * 2 / 1024 = 0.34375.
    assert "[default] 2AFC: 7/10 picked the synthetic image (0.700), exact binomial p = 0.3438" in out

"""kill -9 during a reading session loses no confirmed answer, and the session resumes at the
first unanswered case. The reader runs in a subprocess (the Qt-free session the window drives),
prints CONFIRMED after each answer is recorded, and is killed with SIGKILL at a random moment."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from app.readerstudy.session import ReadingSession
from app.readerstudy.storage import StudyStore

from .child_output import confirmations, read_to_eof, read_until

REPO_ROOT = Path(__file__).resolve().parents[2]
ITEMS = 400
KILLS = 12

READER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from app.readerstudy.session import ReadingSession
    from app.readerstudy.storage import StudyStore
    package = json.loads(open(sys.argv[1]).read())
    session = ReadingSession(package, ".", StudyStore(sys.argv[2], create=False), "reader-k")
    print("START", session.position, flush=True)
    while not session.finished:
        item = session.current.item_id
        session.submit({"call": {"choice": "synthetic", "confidence": int(item[1:]) % 5 + 1}}, 0.25)
        print("CONFIRMED", item, flush=True)
    print("DONE", flush=True)
    """
)


def make_study(tmp_path: Path) -> tuple[dict, Path, Path]:
    """A package of many image-less items (the session never opens images) registered in SQLite."""
    package = {
        "format": "synthview-reading-package/1",
        "study_id": "SDURABLE",
        "seed": 42,
        "questions": [{"id": "call", "type": "real_synthetic", "text": "", "scale": "1-5", "required": True}],
        "options": {"shuffle": True},
        "items": [
            {"item_id": f"K{i:04d}", "image_ids": [f"I{i:04d}"], "practice": i < 2} for i in range(ITEMS)
        ],
    }
    package_path = tmp_path / "study.json"
    import json

    package_path.write_text(json.dumps(package))
    database = tmp_path / "answers.db"
    store = StudyStore(database)
    store.register_study("SDURABLE", package)  # no truth in the answers database
    store.close()
    return package, package_path, database


def test_confirmations_count_every_whole_line_and_no_partial_one():
    output = b"START 0\nCONFIRMED K0001\nCONFIRMED K0002\nCONFIRMED K00"
    assert confirmations(output) == ["K0001", "K0002"]
    assert confirmations(b"START 0\nCONFIRMED\n") == []


def test_sigkill_at_random_points_loses_no_confirmed_answer(tmp_path):
    package, package_path, database = make_study(tmp_path)
    rng = random.Random(2024)
    confirmed: list[str] = []
    runs_that_answered = 0
    unconfirmed_allowance = 0
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for _ in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, "-c", READER_SCRIPT, str(package_path), str(database)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,  # raw bytes straight from the pipe: nothing held in a Python buffer
            cwd=str(REPO_ROOT),
            env=environment,
        )
        # Wait for the first answer (a loaded machine may be slow to give one), then kill at a
        # random moment while the following answers are being committed.
        output = read_until(child, b"CONFIRMED ")
        if not output.startswith(b"START"):  # the reader died before starting: say why
            pytest.fail(f"the reader process did not start: {child.communicate(timeout=30)[1]!r}")
        time.sleep(rng.uniform(0.0, 0.08))
        child.send_signal(signal.SIGKILL)
        output += read_to_eof(child)  # every byte the child wrote before it died
        child.wait(timeout=30)
        child.stderr.close()
        this_run = confirmations(output)
        confirmed += this_run
        runs_that_answered += bool(this_run)

        store = StudyStore(database, create=False)
        stored = store.latest_answers("SDURABLE", "reader-k")
        assert set(confirmed) <= set(stored), "a confirmed answer was lost"
        # Every confirmation printed was read: at most the one answer being committed when the
        # kill came is stored without its confirmation (dropped lines would show up here).
        unconfirmed_allowance += 1
        assert len(stored) - len(confirmed) <= unconfirmed_allowance, "confirmations were not all read"
        for item_id in confirmed:
            assert stored[item_id]["call"]["confidence"] == int(item_id[1:]) % 5 + 1
        session = ReadingSession(package, tmp_path, store, "reader-k")
        order = [item.item_id for item in session.items]
        # Answers form a prefix of the order; the session resumes right after it.
        assert set(order[: len(stored)]) == set(stored)
        assert session.position == len(stored)
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        store.close()
    print(f"{KILLS} kills, {len(confirmed)} confirmed answers, {runs_that_answered} runs killed mid-session")
    assert len(set(confirmed)) == len(confirmed)
    assert runs_that_answered >= KILLS // 2  # most kills land while answers are being written

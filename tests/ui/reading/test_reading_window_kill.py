"""The reading window itself, killed with SIGKILL mid-study in a child process, then reopened:
no confirmed answer is lost, none is recorded twice, and the window resumes at the right case.

The child drives the real ReadingWindow with mouse clicks and Ctrl+Return (as a reader does)
and prints CONFIRMED after each Next returned with the next case on screen."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import sqlalchemy as sa

from app.io.nifti import load_nifti, save_nifti
from app.readerstudy.definition import definition_from_folders
from app.readerstudy.package import create_study, load_package
from app.readerstudy.session import ReadingSession
from app.readerstudy.storage import StudyStore, answers
from app.ui.reading.session_window import ReadingWindow
from tests.readerstudy.child_output import confirmations, read_to_eof, read_until
from tests.readerstudy.conftest import write_cases
from tests.ui.child_process import ROOT

READER = textwrap.dedent(
    """
    import sys
    from PySide6 import QtCore
    from PySide6.QtTest import QTest
    from app.io.nifti import load_nifti
    from app.readerstudy.package import load_package
    from app.readerstudy.session import ReadingSession
    from app.readerstudy.storage import StudyStore
    from app.ui.application import create_application
    from app.ui.reading.session_window import ReadingWindow

    app = create_application([])
    package, folder = load_package(sys.argv[1])
    session = ReadingSession(package, folder, StudyStore(sys.argv[2], create=False), "R1")
    window = ReadingWindow(session, load_nifti)
    window.resize(1200, 800)
    window.show()
    print("START", window.progress_label.text(), flush=True)

    def click(button):
        QTest.mouseClick(button, QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(8, button.height() // 2))

    while session.current is not None:
        item = session.current.item_id
        widgets = {w.question.id: w for w in window.question_widgets}
        choice, confidence = int(item[1:], 16) % 2, int(item[1:], 16) % 5
        click(widgets["call"].choice_group.button(choice))
        click(widgets["call"].confidence_group.button(confidence))
        click(widgets["quality"].group.button(2))
        QTest.keyClick(window, QtCore.Qt.Key.Key_Return, QtCore.Qt.KeyboardModifier.ControlModifier)
        assert session.current is None or session.current.item_id != item, window.message_label.text()
        print("CONFIRMED", item, flush=True)
    print("DONE", flush=True)
    """
)


def expected_call(item_id: str) -> dict:
    number = int(item_id[1:], 16)
    return {"choice": ("real", "synthetic")[number % 2], "confidence": number % 5 + 1}


def test_killed_reading_window_loses_nothing_and_resumes_at_the_right_case(qtbot, tmp_path):
    real_dir, synthetic_dir = write_cases(tmp_path / "sources", real=15, synthetic=15)
    definition = definition_from_folders(real_dir, synthetic_dir, "kill", seed=8, practice_per_class=1)
    created = create_study(definition, tmp_path / "study", load_nifti, save_nifti)
    database = str(tmp_path / "study" / "answers.db")
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    rng = random.Random(5)
    confirmed: list[str] = []
    for _ in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", READER, str(created.reading_dir), database],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,  # raw bytes from the pipe, read to EOF below: no confirmation dropped
            cwd=ROOT,
            env=environment,
        )
        wanted = rng.randint(1, 2)
        # Let it confirm a few answers, then kill it while it clicks on.
        output = b""
        while len(confirmations(output)) < wanted and b"DONE" not in output:
            more = read_until(child, b"\n", timeout_s=120)
            if not more:
                break
            output += more
        assert output.startswith(b"START"), output[-2000:]
        assert len(confirmations(output)) >= wanted, output[-2000:]
        time.sleep(rng.uniform(0.0, 0.02))
        child.send_signal(signal.SIGKILL)
        output += read_to_eof(child)
        child.wait(timeout=60)
        confirmed += confirmations(output)
        assert b"DONE" not in output

    store = StudyStore(database, create=False)
    stored = store.latest_answers(created.study_id, "R1")
    assert set(confirmed) <= set(stored), "a confirmed answer was lost"
    for item_id, values in stored.items():
        assert values["call"] == expected_call(item_id) and values["quality"] == 3
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(answers.c.item_id, answers.c.question_id, sa.func.count()).group_by(
                answers.c.item_id, answers.c.question_id
            )
        ).all()
    assert rows and all(count == 1 for _, _, count in rows), "an answer was recorded twice"

    package, folder = load_package(created.reading_dir)
    session = ReadingSession(package, folder, store, "R1")
    order = [item.item_id for item in session.items]
    assert set(order[: len(stored)]) == set(stored)  # answered cases are a prefix of the order
    window = ReadingWindow(session, load_nifti)
    qtbot.addWidget(window)
    assert window.session.current.item_id == order[len(stored)]
    practice = sum(item.practice for item in session.items)
    if len(stored) >= practice:
        expected = f"Case {len(stored) - practice + 1} of {len(order) - practice}"
    else:
        expected = f"Practice case {len(stored) + 1} of {practice}"
    assert window.progress_label.text() == expected
    print(f"{len(confirmed)} confirmed, {len(stored)} stored of {len(order)}, reopened at {expected!r}")
    store.close()

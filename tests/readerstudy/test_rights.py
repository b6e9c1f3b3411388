"""Who can change what: rules enforced by the database itself (SQLite), a second live session of
one reader, races and a full disk, each with a clear message rather than a driver error."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from app.readerstudy.package import load_package
from app.readerstudy.session import AnswerError, ReadingSession
from app.readerstudy.storage import StoreError, StudyStore, answers, case_times, sessions, studies

CALL = {"call": {"choice": "synthetic", "confidence": 4}, "quality": 3}
OTHER_CALL = {"call": {"choice": "real", "confidence": 2}, "quality": 3}


def _open(created, reader: str) -> ReadingSession:
    package, reading_dir = load_package(created.reading_dir)
    return ReadingSession(package, reading_dir, StudyStore(created.database_url, create=False), reader)


@pytest.mark.parametrize("table", [studies, sessions])
def test_studies_and_sessions_cannot_be_changed_or_removed(created_study, table):
    created, _ = created_study
    session = _open(created, "R1")
    engine = session.store.engine
    column = next(iter(table.c))
    for statement in (sa.update(table).values({column.name: "x"}), sa.delete(table)):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with engine.begin() as connection:
                connection.execute(statement)
    session.store.close()


def test_no_answer_modification_is_enforced_by_the_database(created_study):
    """The client's rule bypassed (a second revision written straight to the store) is refused."""
    created, _ = created_study
    session = _open(created, "R1")
    item = session.current.item_id
    session.submit(CALL, 1.0)
    with pytest.raises(StoreError, match="cannot be changed in this study"):
        session.store.record_answers(created.study_id, "R1", item, OTHER_CALL, 1.0)
    with session.store.engine.connect() as connection:
        revisions = connection.execute(
            sa.select(answers.c.revision).where(answers.c.item_id == item)
        ).scalars()
        assert set(revisions) == {1}
    session.store.close()


def test_a_second_live_session_takes_over_and_the_stale_one_is_refused(created_study):
    """The same reader open in two places: the stale one used to record a different answer as
    revision 2; now the newer session is the live one and the older is told so, recording nothing."""
    created, _ = created_study
    first = _open(created, "R1")
    first.submit(CALL, 1.0)
    second = _open(created, "R1")
    assert second.position == first.position  # resumes where the first left off
    item = first.current.item_id
    with pytest.raises(AnswerError, match="opened this study again elsewhere"):
        first.submit(OTHER_CALL, 1.0)
    second.submit(CALL, 1.0)
    stored = second.store.latest_answers(created.study_id, "R1")
    assert stored[item]["call"] == CALL["call"]
    with pytest.raises(AnswerError, match="again elsewhere"):
        first.leave(2.0)  # not even time is recorded from the stale window
    first.store.close()
    second.store.close()


def test_a_true_race_gives_a_clear_message_not_an_integrity_error(created_study):
    created, _ = created_study
    session = _open(created, "R1")
    item = session.current.item_id
    barrier = threading.Barrier(4)
    outcomes: list[object] = []

    def write(values):
        store = StudyStore(created.database_url, create=False)
        barrier.wait(timeout=30)
        try:
            store.record_answers(created.study_id, "R1", item, values, 1.0)
            outcomes.append("ok")
        except Exception as error:  # noqa: BLE001 - collected and checked below
            outcomes.append(error)
        store.close()

    threads = [threading.Thread(target=write, args=(v,)) for v in (CALL, OTHER_CALL, CALL, OTHER_CALL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert outcomes.count("ok") >= 1
    for outcome in outcomes:
        assert outcome == "ok" or (isinstance(outcome, StoreError) and "cannot be changed" in str(outcome))
    with session.store.engine.connect() as connection:
        rows = (
            connection.execute(sa.select(answers.c.revision).where(answers.c.item_id == item)).scalars().all()
        )
        times = connection.execute(sa.select(case_times.c.seconds).where(case_times.c.item_id == item)).all()
    assert sorted(rows) == [1, 1]  # one revision 1 per question, nothing doubled
    assert len(times) == outcomes.count("ok")  # a refused write records no time
    session.store.close()


def test_a_full_disk_gives_a_clear_message_and_records_nothing(created_study):
    created, _ = created_study
    session = _open(created, "R1")
    store = session.store
    with store.engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
    store.engine.dispose()
    # SQLite's own "database or disk is full" (SQLITE_FULL), as a full disk gives it.
    sa.event.listen(
        store.engine, "connect", lambda dbapi, _: dbapi.execute(f"PRAGMA max_page_count = {pages}")
    )
    item = session.current.item_id
    big = {**CALL, "comment": "x" * 200_000}
    with pytest.raises(AnswerError, match="disk holding the answers database is full") as raised:
        session.submit(big, 1.0)
    assert "OperationalError" not in str(raised.value)
    assert session.current.item_id == item  # still on the same case: nothing was recorded
    assert item not in store.latest_answers(created.study_id, "R1")
    store.close()

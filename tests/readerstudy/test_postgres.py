"""A PostgreSQL-backed study: two readers answering at the same time on a real server."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from app.io.nifti import load_nifti, save_nifti
from app.readerstudy.analysis import analyze
from app.readerstudy.definition import definition_from_folders
from app.readerstudy.package import create_study, load_package
from app.readerstudy.session import ReadingSession
from app.readerstudy.storage import StudyStore, answers

pytestmark = pytest.mark.postgres


def test_two_concurrent_readers_on_postgresql(tmp_path, case_folders, postgres_url):
    real_dir, synthetic_dir = case_folders
    definition = definition_from_folders(real_dir, synthetic_dir, "multi-site", seed=77, practice_per_class=1)
    created = create_study(definition, tmp_path / "study", load_nifti, save_nifti, database=postgres_url)
    assert created.database_url.startswith("postgresql+psycopg://")
    package, reading_dir = load_package(created.reading_dir)
    assert package["database"] is None  # the URL is given to readers, not stored in their package
    barrier = threading.Barrier(2)
    orders: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def read(reader: str, choice: str) -> None:
        try:
            store = StudyStore(postgres_url, create=False)
            session = ReadingSession(package, reading_dir, store, reader)
            orders[reader] = [item.item_id for item in session.items]
            barrier.wait(timeout=30)
            while not session.finished:
                session.submit({"call": {"choice": choice, "confidence": 3}, "quality": 3}, 1.0)
            store.close()
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [
        threading.Thread(target=read, args=(r, c))
        for r, c in (("site-a/R1", "real"), ("site-b/R2", "synthetic"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert orders["site-a/R1"] != orders["site-b/R2"]
    assert orders["site-a/R1"][:2] == orders["site-b/R2"][:2]  # the practice items come first for both

    store = StudyStore(postgres_url, create=False)
    assert set(store.readers(created.study_id)) == {"site-a/R1", "site-b/R2"}
    for reader in ("site-a/R1", "site-b/R2"):
        assert len(store.latest_answers(created.study_id, reader)) == len(definition.cases)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with store.engine.begin() as connection:
            connection.execute(sa.delete(answers))
    store.close()

    result = analyze(postgres_url, truth=created.truth_path)  # the server holds no truth
    section = result["modalities"]["default"]
    main = sum(1 for c in definition.cases if not c.practice)
    assert section["binary"]["per_reader"]["site-a/R1"]["specificity"]["estimate"] == 1.0
    assert section["binary"]["per_reader"]["site-b/R2"]["sensitivity"]["estimate"] == 1.0
    assert section["binary"]["pooled"]["accuracy"]["total"] == 2 * main


def test_reader_roles_can_only_insert_and_read_their_own_rows(tmp_path, case_folders, postgres_url, capsys):
    """``study create --db URL --readers R1,R2``: the coordinator role owns the schema; each reader
    logs in as its own role, and row-level security keeps it to its own rows."""
    import json
    import stat

    from app.readerstudy.storage import StoreError
    from main import main

    real_dir, synthetic_dir = case_folders
    out_dir = tmp_path / "rights"
    arguments = ["study", "create", "--real", str(real_dir), "--synthetic", str(synthetic_dir), str(out_dir)]
    assert main([*arguments, "--db", postgres_url, "--readers", "pgR1,pgR2"]) == 0, capsys.readouterr().err
    accounts_file = out_dir / "truth" / "reader_accounts.json"
    assert stat.S_IMODE(accounts_file.stat().st_mode) == 0o600
    assert set(json.loads(accounts_file.read_text())["accounts"]) == {"pgR1", "pgR2"}
    package, reading_dir = load_package(out_dir / "reading")
    study_id = package["study_id"]

    def as_reader(role: str) -> str:
        return postgres_url.replace("://postgres@", f"://{role}@")  # the test server trusts local logins

    stores = {}
    for reader, choice in (("pgR1", "real"), ("pgR2", "synthetic")):
        stores[reader] = StudyStore(as_reader(reader), create=False)
        session = ReadingSession(package, reading_dir, stores[reader], reader)
        session.submit({"call": {"choice": choice, "confidence": 3}, "quality": 3}, 1.0)
    mine = stores["pgR1"]
    # Its own session and answers only.
    assert mine.readers(study_id) == ["pgR1"]
    assert mine.latest_answers(study_id, "pgR2") == {}
    assert mine.latest_answers(study_id, "pgR1")
    refused = {
        "drop": "DROP TABLE answers",
        "update": "UPDATE sessions SET seed = 'x'",
        "delete": "DELETE FROM answers",
        "update studies": "UPDATE studies SET package_json = '{}'",
        "answer as another reader": (
            f"INSERT INTO answers (study_id, reader_id, item_id, question_id, value_json, revision,"
            f" recorded_utc) VALUES ('{study_id}', 'pgR2', 'K1', 'call', '1', 9, 'now')"
        ),
    }
    for what, statement in refused.items():
        with pytest.raises(sa.exc.DatabaseError), mine.engine.begin() as connection:
            connection.exec_driver_sql(statement)
        print(f"refused to a reader: {what}")
    # Recording as another reader id through the app: a clear message, not a driver error.
    with pytest.raises(StoreError, match="may only record and read its own"):
        ReadingSession(package, reading_dir, mine, "pgR2")
    # The no-change rule holds in the database (PostgreSQL trigger), past the client.
    item = next(iter(mine.latest_answers(study_id, "pgR1")))
    with pytest.raises(StoreError, match="cannot be changed in this study"):
        mine.record_answers(study_id, "pgR1", item, {"call": {"choice": "synthetic", "confidence": 1}}, 1.0)
    for store in stores.values():
        store.close()
    # The coordinator (the owner) still reads everything for the analysis.
    coordinator = StudyStore(postgres_url, create=False)
    assert set(coordinator.readers(study_id)) == {"pgR1", "pgR2"}
    coordinator.close()

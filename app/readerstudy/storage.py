"""Durable storage of reader-study answers with SQLAlchemy: SQLite (WAL) or PostgreSQL.

Durability rules:

* every call that records answers is one transaction, committed before it returns, so the UI
  shows the next case only after the answers are on disk (SQLite: WAL with ``synchronous=FULL``,
  which survives power loss; PostgreSQL: its default synchronous commit);
* ``answers``, ``case_times`` and ``audit`` are append-only: a changed answer is a new row with
  a higher revision, and database triggers refuse UPDATE and DELETE on them;
* every change writes an audit row saying who, when and what (old value -> new value).

No truth is stored here: the database is what readers write to (and, with a shared server, can
read), so the truth stays in the coordinator's truth file (``app.readerstudy.truth``) and the
analysis joins the two. The study's name is not stored either (it may say what is synthetic).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    DDL,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

metadata = MetaData()

studies = Table(
    "studies",
    metadata,
    Column("study_id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_utc", String(40), nullable=False),
    Column("package_json", Text, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("study_id", String(64), primary_key=True),
    Column("reader_id", String(200), primary_key=True),
    Column("seed", String(40), nullable=False),
    Column("order_json", Text, nullable=False),
    Column("created_utc", String(40), nullable=False),
)

answers = Table(
    "answers",
    metadata,
    Column("answer_id", Integer, primary_key=True, autoincrement=True),
    Column("study_id", String(64), nullable=False),
    Column("reader_id", String(200), nullable=False),
    Column("item_id", String(64), nullable=False),
    Column("question_id", String(64), nullable=False),
    Column("value_json", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("recorded_utc", String(40), nullable=False),
    UniqueConstraint("study_id", "reader_id", "item_id", "question_id", "revision"),
)

case_times = Table(
    "case_times",
    metadata,
    Column("time_id", Integer, primary_key=True, autoincrement=True),
    Column("study_id", String(64), nullable=False),
    Column("reader_id", String(200), nullable=False),
    Column("item_id", String(64), nullable=False),
    Column("seconds", Float, nullable=False),
    Column("recorded_utc", String(40), nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("audit_id", Integer, primary_key=True, autoincrement=True),
    Column("study_id", String(64), nullable=False),
    Column("who", String(200), nullable=False),
    Column("when_utc", String(40), nullable=False),
    Column("action", String(40), nullable=False),
    Column("item_id", String(64), nullable=True),
    Column("detail_json", Text, nullable=False),
)

# One row per opening of a reader's session: the newest claim is the live session; an older
# one (the same reader open in another place) is refused when it next writes (a clean takeover).
session_claims = Table(
    "session_claims",
    metadata,
    Column("claim_seq", Integer, primary_key=True, autoincrement=True),
    Column("claim_id", String(64), nullable=False, unique=True),
    Column("study_id", String(64), nullable=False),
    Column("reader_id", String(200), nullable=False),
    Column("claimed_utc", String(40), nullable=False),
)

# Nothing recorded is ever changed or removed; a study and a reader's order are fixed once written.
APPEND_ONLY_TABLES = ("studies", "sessions", "session_claims", "answers", "case_times", "audit")
NO_CHANGES_MESSAGE = "answers to this case cannot be changed in this study"
COORDINATOR_ROLE = "synthview_coordinator"  # PostgreSQL: owns the schema
READERS_ROLE = "synthview_readers"  # PostgreSQL: every reader's login role is a member
SERIAL_COLUMNS = (
    ("session_claims", "claim_seq"),
    ("answers", "answer_id"),
    ("case_times", "time_id"),
    ("audit", "audit_id"),
)

for _name in APPEND_ONLY_TABLES:
    for _verb in ("UPDATE", "DELETE"):
        event.listen(
            metadata,
            "after_create",
            DDL(
                f"CREATE TRIGGER IF NOT EXISTS {_name}_no_{_verb.lower()} BEFORE {_verb} ON {_name} "
                f"BEGIN SELECT RAISE(ABORT, '{_name} is append-only'); END"
            ).execute_if(dialect="sqlite"),
        )
# ``allow_answer_modification: false`` enforced by the database, not only by the client: a
# revision above 1 is refused unless the study's package allows changes.
event.listen(
    metadata,
    "after_create",
    DDL(
        "CREATE TRIGGER IF NOT EXISTS answers_no_modification BEFORE INSERT ON answers "
        "WHEN NEW.revision > 1 AND coalesce(json_extract((SELECT package_json FROM studies "
        "WHERE study_id = NEW.study_id), '$.options.allow_answer_modification'), 0) != 1 "
        f"BEGIN SELECT RAISE(ABORT, '{NO_CHANGES_MESSAGE}'); END"
    ).execute_if(dialect="sqlite"),
)
event.listen(
    metadata,
    "after_create",
    DDL(
        "CREATE OR REPLACE FUNCTION synthview_no_modification() RETURNS trigger AS $$ BEGIN "
        "IF NEW.revision > 1 AND NOT coalesce((SELECT (package_json::jsonb -> 'options' ->> "
        "'allow_answer_modification')::boolean FROM studies WHERE study_id = NEW.study_id), false) "
        f"THEN RAISE EXCEPTION '{NO_CHANGES_MESSAGE}'; END IF; RETURN NEW; END; $$ LANGUAGE plpgsql; "
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'answers_no_modification') "
        "THEN CREATE TRIGGER answers_no_modification BEFORE INSERT ON answers FOR EACH ROW "
        "EXECUTE FUNCTION synthview_no_modification(); END IF; END $$"
    ).execute_if(dialect="postgresql"),
)
event.listen(
    metadata,
    "after_create",
    DDL(
        "CREATE OR REPLACE FUNCTION synthview_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION '%% is append-only', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql"
    ).execute_if(dialect="postgresql"),
)
for _name in APPEND_ONLY_TABLES:
    event.listen(
        metadata,
        "after_create",
        DDL(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{_name}_append_only') "
            f"THEN CREATE TRIGGER {_name}_append_only BEFORE UPDATE OR DELETE ON {_name} "
            f"FOR EACH ROW EXECUTE FUNCTION synthview_append_only(); END IF; END $$"
        ).execute_if(dialect="postgresql"),
    )


class StoreError(RuntimeError):
    """Something the answers database refused or could not do, in words a reader can act on."""


class SessionTakenOver(StoreError):
    """This reader's session was opened again elsewhere: the newer one records, this one stops."""


def _explain(error: Exception) -> StoreError:
    """A database error as a one-line StoreError (no driver class names, no SQL)."""
    message = str(getattr(error, "orig", None) or error).strip().splitlines()[0] if str(error).strip() else ""
    lowered = message.lower()
    if NO_CHANGES_MESSAGE in lowered:
        return StoreError(NO_CHANGES_MESSAGE)
    if "disk is full" in lowered or "no space left" in lowered or "database or disk is full" in lowered:
        return StoreError(
            "the answer was NOT saved: the disk holding the answers database is full; tell the"
            " study coordinator (nothing recorded so far is lost)"
        )
    if "row-level security" in lowered or "permission denied" in lowered:
        return StoreError(
            "the answers database refused this: a reader's account may only record and read its own"
            " answers (is the reader id the one of this account?)"
        )
    if "unique" in lowered or "duplicate key" in lowered:
        return StoreError(
            "this reader's answer to this case was recorded at the same moment by another session;"
            " close this one and reopen the study"
        )
    if "append-only" in lowered:
        return StoreError(message)
    if "locked" in lowered or "busy" in lowered:
        return StoreError("the answers database is busy: try again in a moment")
    return StoreError(f"the answers database failed: {message or type(error).__name__}")


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def database_url(target: str | Path) -> str:
    """A SQLAlchemy URL from a URL or a path to a SQLite file."""
    text = str(target)
    if "://" in text:
        if text.startswith("postgresql://"):
            text = "postgresql+psycopg://" + text[len("postgresql://") :]
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def _configure_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # The wait first: switching to WAL needs a lock, which another reader's connection (or the
    # recovery after a killed one) may hold for a moment.
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # fsync the WAL at every commit: power-loss safe
    cursor.close()
    # Transactions begin with BEGIN IMMEDIATE (below): the check-then-write of a reader's answer
    # holds the write lock from its first read, so two sessions cannot both pass the check.
    dbapi_connection.isolation_level = None


def _begin_immediate(connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _audit(
    connection, study_id: str, who: str, action: str, item_id: str | None, detail: dict, when: str
) -> None:
    connection.execute(
        insert(audit).values(
            study_id=study_id,
            who=who,
            when_utc=when,
            action=action,
            item_id=item_id,
            detail_json=json.dumps(detail),
        )
    )


def _time(connection, study_id: str, reader_id: str, item_id: str, seconds: float, when: str) -> None:
    if seconds > 0:
        connection.execute(
            insert(case_times).values(
                study_id=study_id, reader_id=reader_id, item_id=item_id, seconds=seconds, recorded_utc=when
            )
        )


@dataclass(frozen=True)
class StoredAnswer:
    item_id: str
    question_id: str
    value: object
    revision: int
    recorded_utc: str


class StudyStore:
    """All reads and writes of one study database (many studies may share it)."""

    def __init__(self, target: str | Path, create: bool = True) -> None:
        self.url = database_url(target)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite and not create:
            path = Path(self.url[len("sqlite:///") :])
            if not path.exists():
                raise FileNotFoundError(f"no study database at {path}")
        self.engine: Engine = create_engine(self.url, future=True)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _configure_sqlite)
            event.listen(self.engine, "begin", _begin_immediate)
        # Created once (by the coordinator); readers and the analysis only check they are there.
        if not inspect(self.engine).has_table("audit"):
            if not create:
                self.engine.dispose()
                raise ValueError(
                    f"no reader-study tables in {self.engine.url.render_as_string(hide_password=True)}"
                )
            metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # ----- PostgreSQL rights -----------------------------------------------------------------
    def provision_roles(self, readers: list[str]) -> dict[str, str]:
        """PostgreSQL only, run by the coordinator (a role that may create roles): the role
        ``synthview_coordinator`` owns every table; the group ``synthview_readers`` may read the
        studies' packages and INSERT and SELECT in the other tables, and row-level security limits
        each reader to the rows of its own reader id (= its login role): it cannot read another
        reader's answers or session, record answers as someone else, or UPDATE, DELETE or DROP
        anything. One LOGIN role per reader id, with a new random password; returns them."""
        if self.is_sqlite:
            raise ValueError("reader accounts need a PostgreSQL database (SQLite has no users)")
        passwords = {reader: secrets.token_urlsafe(18) for reader in readers}
        own = {
            "sessions": "reader_id",
            "session_claims": "reader_id",
            "answers": "reader_id",
            "case_times": "reader_id",
            "audit": "who",
        }
        with self.engine.begin() as connection:
            run = connection.exec_driver_sql
            for role in (COORDINATOR_ROLE, READERS_ROLE):
                run(
                    f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') "
                    f"THEN CREATE ROLE {role} NOLOGIN; END IF; END $$"
                )
            run(f"GRANT {COORDINATOR_ROLE} TO CURRENT_USER")
            run(f"GRANT USAGE ON SCHEMA public TO {READERS_ROLE}")
            for table in metadata.tables:
                run(f"ALTER TABLE {table} OWNER TO {COORDINATOR_ROLE}")
                run(f"REVOKE ALL ON {table} FROM PUBLIC")
            run(f"GRANT SELECT ON studies TO {READERS_ROLE}")
            for table, column in own.items():
                run(f"GRANT SELECT, INSERT ON {table} TO {READERS_ROLE}")
                run(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
                run(f"DROP POLICY IF EXISTS own_rows ON {table}")
                run(
                    f"CREATE POLICY own_rows ON {table} FOR ALL TO {READERS_ROLE} "
                    f"USING ({column} = current_user) WITH CHECK ({column} = current_user)"
                )
            # Only this schema's own id sequences (the no-modification trigger reads the study's
            # options as the inserting reader, through the SELECT on studies above).
            for table, column in SERIAL_COLUMNS:
                sequence = connection.execute(
                    text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": column}
                ).scalar()
                if sequence:
                    run(f"GRANT USAGE ON SEQUENCE {sequence} TO {READERS_ROLE}")
            for reader, password in passwords.items():
                quoted = '"' + reader.replace('"', '""') + '"'
                literal = "'" + password.replace("'", "''") + "'"
                exists = connection.execute(
                    text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": reader}
                ).first()
                verb = "ALTER" if exists else "CREATE"
                run(f"{verb} ROLE {quoted} LOGIN PASSWORD {literal}")
                run(f"GRANT {READERS_ROLE} TO {quoted}")
        return passwords

    # ----- coordinator ---------------------------------------------------------------------
    def register_study(self, study_id: str, package: dict, truth_rows: object = None) -> None:
        """Store the reader-facing package under the opaque study id (the coordinator's study name
        is never stored: readers would see it); the truth is refused: it belongs in the truth file."""
        if truth_rows:
            raise ValueError("the truth is kept in the coordinator's truth file, not the answers database")
        with self.engine.begin() as connection:
            connection.execute(
                insert(studies).values(
                    study_id=study_id, name=study_id, created_utc=utc_now(), package_json=json.dumps(package)
                )
            )
            _audit(
                connection,
                study_id,
                "coordinator",
                "create-study",
                None,
                {"items": len(package.get("items", []))},
                utc_now(),
            )

    def study_ids(self) -> list[str]:
        with self.engine.connect() as connection:
            return [r[0] for r in connection.execute(select(studies.c.study_id).order_by(studies.c.study_id))]

    def package(self, study_id: str) -> dict:
        with self.engine.connect() as connection:
            text = connection.execute(
                select(studies.c.package_json).where(studies.c.study_id == study_id)
            ).scalar_one_or_none()
        if text is None:
            raise KeyError(f"study {study_id} is not in this database")
        return json.loads(text)

    # ----- reader sessions -----------------------------------------------------------------
    def session_order(self, study_id: str, reader_id: str) -> tuple[str, list[dict]] | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(sessions.c.seed, sessions.c.order_json).where(
                    (sessions.c.study_id == study_id) & (sessions.c.reader_id == reader_id)
                )
            ).first()
        return None if row is None else (row.seed, json.loads(row.order_json))

    def start_session(self, study_id: str, reader_id: str, seed: str, order: list[dict]) -> list[dict]:
        """Record a reader's order once (serialised per reader: a second start, at the same
        moment or later, returns the recorded one)."""
        with self._reader_transaction(study_id, reader_id) as connection:
            exists = connection.execute(
                select(sessions.c.reader_id).where(
                    (sessions.c.study_id == study_id) & (sessions.c.reader_id == reader_id)
                )
            ).first()
            if exists is None:
                connection.execute(
                    insert(sessions).values(
                        study_id=study_id,
                        reader_id=reader_id,
                        seed=seed,
                        order_json=json.dumps(order),
                        created_utc=utc_now(),
                    )
                )
                _audit(connection, study_id, reader_id, "start-session", None, {"seed": seed}, utc_now())
        recorded = self.session_order(study_id, reader_id)
        assert recorded is not None
        return recorded[1]

    def claim_session(self, study_id: str, reader_id: str) -> str:
        """Make this opening of the reader's session the live one; an older one still open (the
        same reader in another place) is refused at its next write. Returns the claim id."""
        claim_id = secrets.token_hex(16)
        with self._reader_transaction(study_id, reader_id) as connection:
            connection.execute(
                insert(session_claims).values(
                    claim_id=claim_id, study_id=study_id, reader_id=reader_id, claimed_utc=utc_now()
                )
            )
            _audit(connection, study_id, reader_id, "open-session", None, {"claim": claim_id}, utc_now())
        return claim_id

    def _lock_reader(self, connection, study_id: str, reader_id: str) -> None:
        """Serialise one reader's writes: SQLite's BEGIN IMMEDIATE already holds the write lock;
        PostgreSQL takes a transaction-scoped advisory lock on (study, reader)."""
        if not self.is_sqlite:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"{study_id}\x1f{reader_id}"}
            )

    @staticmethod
    def _check_claim(connection, study_id: str, reader_id: str, claim_id: str | None) -> None:
        if claim_id is None:
            return
        latest = connection.execute(
            select(session_claims.c.claim_id, session_claims.c.claimed_utc)
            .where((session_claims.c.study_id == study_id) & (session_claims.c.reader_id == reader_id))
            .order_by(session_claims.c.claim_seq.desc())
            .limit(1)
        ).first()
        if latest is not None and latest.claim_id != claim_id:
            raise SessionTakenOver(
                f"reader {reader_id} opened this study again elsewhere (at {latest.claimed_utc[:19]} UTC);"
                " this window no longer records answers: continue in the newer one"
            )

    def readers(self, study_id: str) -> list[str]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(sessions.c.reader_id)
                .where(sessions.c.study_id == study_id)
                .order_by(sessions.c.reader_id)
            )
            return [r[0] for r in rows]

    @contextlib.contextmanager
    def _reader_transaction(self, study_id: str, reader_id: str, claim_id: str | None = None):
        """One committed transaction of one reader's writes: serialised with the reader's other
        writes, refused when another session took over, database errors as StoreErrors."""
        try:
            with self.engine.begin() as connection:
                self._lock_reader(connection, study_id, reader_id)
                self._check_claim(connection, study_id, reader_id, claim_id)
                yield connection
        except DBAPIError as error:
            raise _explain(error) from None

    def record_answers(
        self,
        study_id: str,
        reader_id: str,
        item_id: str,
        values: dict[str, object],
        seconds: float,
        claim_id: str | None = None,
    ) -> None:
        """Append the answers to one item (new revisions where they change) and the time spent,
        with audit rows, in one committed transaction. Refused with a StoreError (nothing
        recorded) when another session of the reader took over, when the study does not allow a
        change, on a race, or when the disk is full."""
        now = utc_now()
        with self._reader_transaction(study_id, reader_id, claim_id) as connection:
            latest = self._latest(connection, study_id, reader_id, item_id)
            for question_id, value in values.items():
                previous = latest.get(question_id)
                if previous is not None and previous.value == value:
                    continue
                revision = 1 if previous is None else previous.revision + 1
                connection.execute(
                    insert(answers).values(
                        study_id=study_id,
                        reader_id=reader_id,
                        item_id=item_id,
                        question_id=question_id,
                        value_json=json.dumps(value),
                        revision=revision,
                        recorded_utc=now,
                    )
                )
                detail = {
                    "question": question_id,
                    "old": None if previous is None else previous.value,
                    "new": value,
                    "revision": revision,
                }
                action = "answer" if previous is None else "change-answer"
                _audit(connection, study_id, reader_id, action, item_id, detail, now)
            _time(connection, study_id, reader_id, item_id, seconds, now)

    def record_time(
        self,
        study_id: str,
        reader_id: str,
        item_id: str,
        seconds: float,
        action: str,
        claim_id: str | None = None,
    ) -> None:
        """Time spent on an item without answering it (pause, close, navigating away)."""
        now = utc_now()
        with self._reader_transaction(study_id, reader_id, claim_id) as connection:
            _time(connection, study_id, reader_id, item_id, seconds, now)
            _audit(connection, study_id, reader_id, action, item_id, {"seconds": seconds}, now)

    @staticmethod
    def _latest(connection, study_id: str, reader_id: str, item_id: str | None = None) -> dict:
        query = select(answers).where((answers.c.study_id == study_id) & (answers.c.reader_id == reader_id))
        if item_id is not None:
            query = query.where(answers.c.item_id == item_id)
        latest: dict = {}
        for row in connection.execute(query.order_by(answers.c.revision)):
            key = row.question_id if item_id is not None else (row.item_id, row.question_id)
            latest[key] = StoredAnswer(
                row.item_id, row.question_id, json.loads(row.value_json), row.revision, row.recorded_utc
            )
        return latest

    def latest_answers(self, study_id: str, reader_id: str) -> dict[str, dict[str, object]]:
        """item -> question -> latest value, for one reader."""
        with self.engine.connect() as connection:
            latest = self._latest(connection, study_id, reader_id)
        result: dict[str, dict[str, object]] = {}
        for (item_id, question_id), stored in latest.items():
            result.setdefault(item_id, {})[question_id] = stored.value
        return result

    def time_spent(self, study_id: str, reader_id: str) -> dict[str, float]:
        """item -> total seconds over every visit."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(case_times.c.item_id, func.sum(case_times.c.seconds))
                .where((case_times.c.study_id == study_id) & (case_times.c.reader_id == reader_id))
                .group_by(case_times.c.item_id)
            )
            return {r[0]: float(r[1]) for r in rows}

    def audit_trail(self, study_id: str) -> list[dict]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(audit).where(audit.c.study_id == study_id).order_by(audit.c.audit_id)
            )
            return [dict(r._mapping) for r in rows]

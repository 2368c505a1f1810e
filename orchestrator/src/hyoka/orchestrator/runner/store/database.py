"""`RunStore`: runs, per-item model outputs and scored records in SQLite or PostgreSQL, through one
SQLAlchemy Core code path. Every write is its own committed transaction.

SQLite (the default; one file): WAL journal, `synchronous=NORMAL` (a commit survives the process
being killed, which is what resuming needs; only an OS crash can lose the last commits, and
the engine commits after every few answers, so FULL's fsync per commit would hold the event loop
up), a 30 s busy timeout, and every
transaction begun IMMEDIATE (it takes the write lock up front, so concurrent writers wait for
each other instead of failing on a lock upgrade). PostgreSQL (`postgresql://USER@HOST:PORT/DB`,
psycopg 3): for several orchestrator replicas sharing state; migrations under an advisory lock.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Insert, create_engine, event, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry

from hyoka.orchestrator.runner.store import schema

RUN_STATES = ("queued", "running", "succeeded", "failed", "cancelled")

_SQLITE_BUSY_TIMEOUT_S = 30.0
_PG_CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    request: dict[str, Any]  # the run's request as JSON (opaque to the store)
    state: str  # one of RUN_STATES
    created_at: float  # unix seconds
    updated_at: float
    error: str | None = None
    results: dict[str, Any] | None = None  # JSON payload of the finished run


@dataclass(frozen=True)
class StoredOutput:
    """A model's raw answer to one item: `output` is {"completions": [...], "logprobs": [...]}."""

    item_id: str
    prompt_hash: str
    settings_hash: str
    output: dict[str, Any]


@dataclass(frozen=True)
class StoredRecord:
    """A scored per-item record (the JSONL export's line) and the request its output answered."""

    item_id: str
    prompt_hash: str
    settings_hash: str
    record: dict[str, Any]


class StoreError(RuntimeError):
    """The store cannot be used: a bad URL, an unreachable database, a failed query."""


class RunConflictError(ValueError):
    """A run with this id exists with a different request."""


class RunNotFoundError(KeyError):
    """No run with this id."""

    def __str__(self) -> str:
        return f"no run {self.args[0]!r}"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _normalised(value: dict[str, Any]) -> dict[str, Any]:
    """`value` as it reads back from JSON (tuples become lists), for comparisons."""
    loaded: dict[str, Any] = json.loads(_dumps(value))
    return loaded


def _check_state(state: str) -> None:
    if state not in RUN_STATES:
        raise ValueError(f"unknown run state {state!r}; one of {', '.join(RUN_STATES)}")


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None)
    message = str(orig if orig is not None else error).strip()
    return message.splitlines()[0] if message else type(error).__name__


class RunStore:
    """The run store over an SQLAlchemy engine (built by `open_store`, which migrates first)."""

    def __init__(self, engine: Engine, *, display_url: str) -> None:
        self.engine = engine
        self.url = display_url  # without the password
        self.dialect = engine.dialect.name
        self._closed = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RunStore({self.url})"

    # --- plumbing -----------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        if self._closed:
            raise StoreError(f"run store {self.url} is closed")
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StoreError(f"run store {self.url}: {_first_line(e)}") from e

    def _insert(self, table: Any) -> Any:
        dialect = pg_dialect if self.dialect == "postgresql" else sqlite_dialect
        return dialect.insert(table)

    @functools.cached_property
    def _statements(self) -> dict[str, Any]:
        """The item writes' upserts, built once: the engine writes after every few answers, and
        building an upsert costs more than executing it."""
        outputs, records = schema.outputs, schema.records
        save_outputs = self._insert(outputs).on_conflict_do_nothing(
            index_elements=[
                outputs.c.model,
                outputs.c.task,
                outputs.c.item_id,
                outputs.c.prompt_hash,
                outputs.c.settings_hash,
            ]
        )
        base = self._insert(records)
        keys = [records.c.fingerprint, records.c.item_id]
        updated = {c: getattr(base.excluded, c) for c in ("prompt_hash", "settings_hash", "record", "created_at")}
        return {
            "save_outputs": save_outputs,
            "replace_records": base.on_conflict_do_update(index_elements=keys, set_=updated),
            "keep_records": base.on_conflict_do_nothing(index_elements=keys),
        }

    def migrate(self) -> int:
        """Bring the schema up to date (idempotent); the schema version."""
        try:
            with self._transaction() as conn:
                return schema.migrate(conn)
        except schema.SchemaTooNewError as e:
            raise StoreError(f"run store {self.url}: {e}") from e

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self.engine.dispose()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- runs ---------------------------------------------------------------------------------

    @staticmethod
    def _run(row: Any) -> RunRecord:
        return RunRecord(
            run_id=row.run_id,
            request=json.loads(row.request),
            state=row.state,
            created_at=row.created_at,
            updated_at=row.updated_at,
            error=row.error,
            results=json.loads(row.results) if row.results is not None else None,
        )

    def create_run(self, run_id: str, request: dict[str, Any]) -> tuple[RunRecord, bool]:
        """Record a new run in state `queued`: (the record, True). The same id with the same
        request again: (the existing record, False); with another request: RunConflictError."""
        if not run_id:
            raise ValueError("a run id must not be empty")
        now = time.time()
        t = schema.runs
        stmt: Insert = (
            self._insert(t)
            .values(run_id=run_id, request=_dumps(request), state="queued", created_at=now, updated_at=now, error=None)
            .on_conflict_do_nothing(index_elements=[t.c.run_id])
            .returning(t.c.seq)
        )
        with self._transaction() as conn:
            created = conn.execute(stmt).first() is not None
            row = conn.execute(select(t).where(t.c.run_id == run_id)).one()
        record = self._run(row)
        if not created and record.request != _normalised(request):
            raise RunConflictError(f"run {run_id!r} exists with a different request")
        return record, created

    def get_run(self, run_id: str) -> RunRecord | None:
        t = schema.runs
        with self._transaction() as conn:
            row = conn.execute(select(t).where(t.c.run_id == run_id)).one_or_none()
        return None if row is None else self._run(row)

    def list_runs(self, *, limit: int = 100, states: Sequence[str] | None = None) -> list[RunRecord]:
        """The newest `limit` runs first, optionally only those in `states`."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        t = schema.runs
        query = select(t).order_by(t.c.created_at.desc(), t.c.seq.desc()).limit(limit)
        if states is not None:
            for s in states:
                _check_state(s)
            query = query.where(t.c.state.in_(list(states)))
        with self._transaction() as conn:
            rows = conn.execute(query).all()
        return [self._run(r) for r in rows]

    def update_run(
        self,
        run_id: str,
        *,
        state: str,
        error: str | None = None,
        results: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Set a run's state, error and results (None clears them); RunNotFoundError if unknown."""
        _check_state(state)
        t = schema.runs
        stmt = (
            update(t)
            .where(t.c.run_id == run_id)
            .values(
                state=state,
                error=error,
                results=_dumps(results) if results is not None else None,
                updated_at=time.time(),
            )
        )
        with self._transaction() as conn:
            row = conn.execute(stmt.returning(*t.c)).one_or_none()
        if row is None:
            raise RunNotFoundError(run_id)
        return self._run(row)

    # --- items --------------------------------------------------------------------------------

    def load_outputs(self, model: str, task: str) -> list[StoredOutput]:
        """Every output stored for `model` on `task` (all prompt and settings variants)."""
        t = schema.outputs
        query = select(t.c.item_id, t.c.prompt_hash, t.c.settings_hash, t.c.output).where(
            t.c.model == model, t.c.task == task
        )
        with self._transaction() as conn:
            rows = conn.execute(query).all()
        return [StoredOutput(r.item_id, r.prompt_hash, r.settings_hash, json.loads(r.output)) for r in rows]

    def save_outputs(self, model: str, task: str, items: Sequence[StoredOutput]) -> None:
        """Store outputs (committed on return); an output already stored under the same key is kept."""
        if not items:
            return
        now = time.time()
        rows = [
            {
                "model": model,
                "task": task,
                "item_id": o.item_id,
                "prompt_hash": o.prompt_hash,
                "settings_hash": o.settings_hash,
                "output": _dumps(o.output),
                "created_at": now,
            }
            for o in items
        ]
        with self._transaction() as conn:
            conn.execute(self._statements["save_outputs"], rows)

    def load_records(self, fingerprint: str) -> dict[str, StoredRecord]:
        """The scored records stored under a settings fingerprint, by item id."""
        t = schema.records
        query = select(t.c.item_id, t.c.prompt_hash, t.c.settings_hash, t.c.record).where(
            t.c.fingerprint == fingerprint
        )
        with self._transaction() as conn:
            rows = conn.execute(query).all()
        return {r.item_id: StoredRecord(r.item_id, r.prompt_hash, r.settings_hash, json.loads(r.record)) for r in rows}

    def save_records(
        self, fingerprint: str, task: str, records: Sequence[StoredRecord], *, replace: bool = True
    ) -> None:
        """Store scored records (committed on return). A record already stored for the item under
        this fingerprint is replaced, or kept with `replace=False`."""
        if not records:
            return
        now = time.time()
        rows = [
            {
                "fingerprint": fingerprint,
                "item_id": r.item_id,
                "task": task,
                "prompt_hash": r.prompt_hash,
                "settings_hash": r.settings_hash,
                "record": _dumps(r.record),
                "created_at": now,
            }
            for r in records
        ]
        with self._transaction() as conn:
            conn.execute(self._statements["replace_records" if replace else "keep_records"], rows)


# --- opening --------------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """`url` with its password (if any) shown as ***; a path as it is."""
    return _safe(url) if "://" in url else url


def _safe(url: URL | str) -> str:
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable URL>"


def _sqlite_engine(path: Path) -> Engine:
    path = path.expanduser().absolute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"run store {path}: cannot create its folder: {e}") from e
    engine = create_engine(
        URL.create("sqlite+pysqlite", database=str(path)),
        connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S},
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # The driver's own transaction handling off: the "begin" hook below opens each one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(_SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: URL) -> Engine:
    url = url.set(drivername="postgresql+psycopg")
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=2,
        max_overflow=4,
        connect_args={"connect_timeout": _PG_CONNECT_TIMEOUT_S, "application_name": "hyoka"},
    )


STORE_URL_HELP = "sqlite:///PATH (a file; sqlite:////abs/path for an absolute one), a plain file path, or postgresql://USER[:PASSWORD]@HOST[:PORT]/DB"


def open_store(url: str | None, *, default_path: Path) -> RunStore:
    """The run store at `url`, migrated: None -> an SQLite file at `default_path`; `sqlite:///PATH`
    or a plain path -> that SQLite file; `postgresql://USER@HOST:PORT/DB` -> PostgreSQL (psycopg 3).
    Raises StoreError (naming the URL without its password) when it cannot be opened."""
    if url is None or not url.strip():
        engine = _sqlite_engine(default_path)
        display = str(default_path)
    elif "://" not in url:
        engine = _sqlite_engine(Path(url))
        display = url
    else:
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError) as e:
            raise StoreError(f"run store URL {_safe(url)!r} is not a URL: give {STORE_URL_HELP}") from e
        display = _safe(parsed)
        backend, _, driver = parsed.drivername.partition("+")
        if backend == "sqlite" and driver in ("", "pysqlite"):
            if not parsed.database or parsed.database == ":memory:":
                raise StoreError(f"run store {display}: give a database file (sqlite:///PATH), not an in-memory one")
            engine = _sqlite_engine(Path(parsed.database))
        elif backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
            if not parsed.database:
                raise StoreError(f"run store {display}: name the database (postgresql://USER@HOST:PORT/DB)")
            engine = _postgres_engine(parsed)
        else:
            raise StoreError(f"unsupported run store URL {display}: give {STORE_URL_HELP}")
    store = RunStore(engine, display_url=display)
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store

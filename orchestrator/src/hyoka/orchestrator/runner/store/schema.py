"""The run store's tables and their migrations.

Every table is prefixed `hyoka_`, so the store can share a PostgreSQL database with others.
`hyoka_schema_version` holds one row per applied migration; `migrate` applies the missing ones in
one transaction, serialised between processes (PostgreSQL: an advisory lock; SQLite: every
transaction of the store begins IMMEDIATE, so it holds the write lock), so two processes opening
the same new database at once both end up with one schema.

A new migration is appended to `MIGRATIONS` and never edits an earlier one: the tables below are
the current schema, and `_v1` creates them as they were at version 1 (update `_v1`'s table list
into explicit definitions the day a later migration alters one of them).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import (
    Column,
    Connection,
    Double,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)

metadata = MetaData()

schema_version = Table(
    "hyoka_schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", Double, nullable=False),
)

# One row per run (what the gRPC EvaluationService and `hyoka eval --run-id` record).
runs = Table(
    "hyoka_runs",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # insertion order: ties of created_at
    Column("run_id", String(255), nullable=False, unique=True),
    Column("request", Text, nullable=False),  # JSON
    Column("state", String(16), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("error", Text, nullable=True),
    Column("results", Text, nullable=True),  # JSON
    Index("hyoka_runs_created", "created_at"),
)

# The model's raw answer per item, before scoring: kept across task-definition changes that do not
# change what was sent (a metric fix), so re-scoring never asks the model again.
outputs = Table(
    "hyoka_outputs",
    metadata,
    Column("model", Text, nullable=False),
    Column("task", Text, nullable=False),
    Column("item_id", Text, nullable=False),
    Column("prompt_hash", String(64), nullable=False),
    Column("settings_hash", String(64), nullable=False),
    Column("output", Text, nullable=False),  # JSON: {"completions": [...], "logprobs": [...]}
    Column("created_at", Double, nullable=False),
    PrimaryKeyConstraint("model", "task", "item_id", "prompt_hash", "settings_hash", name="hyoka_outputs_pk"),
)

# The scored per-item records (the JSONL export's lines), by the settings fingerprint of the model
# and the task definition (`engine.settings_fingerprint`).
records = Table(
    "hyoka_records",
    metadata,
    Column("fingerprint", String(64), nullable=False),
    Column("item_id", Text, nullable=False),
    Column("task", Text, nullable=False),
    # what the record's output answered (`keys`): a record of another request is not resumed
    Column("prompt_hash", String(64), nullable=False),
    Column("settings_hash", String(64), nullable=False),
    Column("record", Text, nullable=False),  # JSON
    Column("created_at", Double, nullable=False),
    PrimaryKeyConstraint("fingerprint", "item_id", name="hyoka_records_pk"),
)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=[runs, outputs, records], checkfirst=True)


MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_v1,)
SCHEMA_VERSION = len(MIGRATIONS)

# pg_advisory_xact_lock key of the migrations: any fixed 64-bit number ("hyoka" in ASCII).
_PG_LOCK_KEY = 0x6879_6F6B_61


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer hyoka."""


def migrate(conn: Connection) -> int:
    """Apply the missing migrations inside the caller's transaction; the schema version after."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(select(func.max(schema_version.c.version))).scalar() or 0
    if current > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"the database has schema version {current}, this hyoka knows up to {SCHEMA_VERSION}: upgrade hyoka"
        )
    for version in range(current + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[version - 1](conn)
        conn.execute(insert(schema_version).values(version=version, applied_at=time.time()))
    return SCHEMA_VERSION

"""The run engine: one bounded in-flight window per model shared by a run's tasks, per-item
outputs and records kept in the run store (`runner.store`: SQLite or PostgreSQL) so a run
resumes, JSONL record exports, aggregate scores."""

from hyoka.orchestrator.runner.engine import (
    TaskJob,
    TaskResult,
    TaskRunFailure,
    check_settings,
    run_task,
    run_tasks,
    settings_fingerprint,
)
from hyoka.orchestrator.runner.records import RecordsError, RecordStore
from hyoka.orchestrator.runner.store import RunStore, StoreError, open_store

__all__ = [
    "RecordStore",
    "RecordsError",
    "RunStore",
    "StoreError",
    "TaskJob",
    "TaskResult",
    "TaskRunFailure",
    "check_settings",
    "open_store",
    "run_task",
    "run_tasks",
    "settings_fingerprint",
]

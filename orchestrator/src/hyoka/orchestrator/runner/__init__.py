"""The run engine: one bounded in-flight window per model shared by a run's tasks, resumable
per-item records, aggregate scores."""

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

__all__ = [
    "RecordStore",
    "RecordsError",
    "TaskJob",
    "TaskResult",
    "TaskRunFailure",
    "check_settings",
    "run_task",
    "run_tasks",
    "settings_fingerprint",
]

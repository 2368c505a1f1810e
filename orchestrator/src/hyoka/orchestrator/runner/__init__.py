"""The run engine: batches sized by the backend, resumable per-item records, aggregate scores."""

from hyoka.orchestrator.runner.engine import TaskResult, check_settings, run_task, settings_fingerprint
from hyoka.orchestrator.runner.records import RecordsError, RecordStore

__all__ = ["RecordStore", "RecordsError", "TaskResult", "check_settings", "run_task", "settings_fingerprint"]

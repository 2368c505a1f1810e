"""The run store: runs, per-item model outputs and scored records, in SQLite (the embedded default,
one file) or PostgreSQL (state shared by several orchestrator replicas).

- runs: `create_run` / `get_run` / `list_runs` / `update_run` (`RunRecord`, `RUN_STATES`);
- outputs: the model's raw answer per item, keyed by (model, task, item id, prompt hash,
  generation-settings hash) (`keys.prompt_hash`, `keys.generation_hash`), stored before scoring;
- records: the scored per-item records, keyed by (settings fingerprint, item id), with the hashes
  of the request they answer (a record of another request is not resumed).

A killed run resumes from the records and outputs; a run whose task definition changed in a way
that does not change what is sent (a metric fix) re-scores the stored outputs without asking the
model again. `open_store(url, default_path=...)` opens (and migrates) one.
"""

from hyoka.orchestrator.runner.store.database import (
    RUN_STATES,
    STORE_URL_HELP,
    RunConflictError,
    RunNotFoundError,
    RunRecord,
    RunStore,
    StoredOutput,
    StoredRecord,
    StoreError,
    open_store,
    redact_url,
)
from hyoka.orchestrator.runner.store.keys import generation_hash, prompt_hash
from hyoka.orchestrator.runner.store.schema import SCHEMA_VERSION

__all__ = [
    "RUN_STATES",
    "SCHEMA_VERSION",
    "STORE_URL_HELP",
    "RunConflictError",
    "RunNotFoundError",
    "RunRecord",
    "RunStore",
    "StoreError",
    "StoredOutput",
    "StoredRecord",
    "generation_hash",
    "open_store",
    "prompt_hash",
    "redact_url",
]

"""Evaluation runs as a gRPC service (hyoka.v1.EvaluationService, served by `hyoka serve`):
`requests` checks what a client asks for, `runs` runs it with the engine of `hyoka eval` and
tracks it in the run store, `placement` places a finished run among the 35 reference models,
`servicer` converts to and from the wire schema."""

from __future__ import annotations

from hyoka.orchestrator.evaluation.runs import RunManager, RunSettings
from hyoka.orchestrator.runner.store import RunStore, open_store

__all__ = ["RunManager", "RunSettings", "open_run_store"]


def open_run_store(settings: RunSettings) -> RunStore:
    """The run store of `settings` (its URL, or the SQLite file in the state directory), migrated;
    StoreError when it cannot be opened."""
    return open_store(settings.store(), default_path=settings.state_dir / "runs.db")

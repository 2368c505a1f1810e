"""Fixtures shared by the orchestrator's tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from hyoka.orchestrator.runner.store.testing import PostgresUnavailableError, TempPostgres
from hyoka.orchestrator.tasks import CorpusScore, TextScore


class InProcessMetrics:
    """The metrics service's own code (`hyoka.metrics`), called in this process: the real metrics
    for tests of the run engine that need no gRPC server (the gRPC path has its own tests)."""

    async def score(
        self,
        metric: str,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]],
        options: Mapping[str, str] | None = None,
    ) -> list[TextScore]:
        from hyoka.metrics import Item, score

        result = score(metric, [Item(p, tuple(r)) for p, r in zip(predictions, references, strict=True)], options)
        return [TextScore(v, result.signature.text) for v in result.item_scores]

    async def corpus(
        self,
        metric: str,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]],
        options: Mapping[str, str] | None = None,
    ) -> CorpusScore:
        from hyoka.metrics import Item, score

        result = score(metric, [Item(p, tuple(r)) for p, r in zip(predictions, references, strict=True)], options)
        return CorpusScore(result.corpus_score, result.signature.text, dict(result.details))


@pytest.fixture
def inprocess_metrics() -> InProcessMetrics:
    return InProcessMetrics()


# --- the run store: SQLite and a real, throwaway PostgreSQL ----------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[TempPostgres]:
    """A PostgreSQL server for this session (initdb + pg_ctl in a temporary folder, loopback, free
    port). Missing server binaries fail the test: CI installs them (.ci/apt-packages.txt)."""
    try:
        server = TempPostgres().start()
    except PostgresUnavailableError as e:
        pytest.fail(f"cannot start a throwaway PostgreSQL: {e}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty run store: an SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    server: TempPostgres = request.getfixturevalue("postgres")
    return server.create_database(f"hyoka_test_{uuid.uuid4().hex[:12]}")

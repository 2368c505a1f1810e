"""Fixtures for cross-service tests: the real metrics and sandbox servers, started as
subprocesses (`hyoka-metrics serve --port P`, `hyoka-sandbox serve --port P`) on free loopback
ports once per session, and stopped at the end."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyoka.orchestrator.services.local import METRICS, SANDBOX, LocalService, LocalServiceSpec, start_local_service


def _serve(spec: LocalServiceSpec, log_dir: Path) -> Iterator[LocalService]:
    service = asyncio.run(start_local_service(spec, log_dir=log_dir))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def metrics_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """A real `hyoka-metrics serve` on a free port; `.target` is its host:port."""
    yield from _serve(METRICS, tmp_path_factory.mktemp("metrics-log"))


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """A real `hyoka-sandbox serve` on a free port (full isolation; it refuses to start without)."""
    yield from _serve(SANDBOX, tmp_path_factory.mktemp("sandbox-log"))

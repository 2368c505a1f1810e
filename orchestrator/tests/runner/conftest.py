"""Fixtures of the run engine's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from hyoka.orchestrator.services.local import METRICS, start_local_service


@pytest.fixture(scope="module")
def metrics_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a real `hyoka-metrics serve` for `hyoka eval` subprocesses (--metrics-url): a
    run killed with SIGKILL would leave a metrics server it started itself running."""
    service = asyncio.run(start_local_service(METRICS, log_dir=tmp_path_factory.mktemp("metrics-log")))
    try:
        yield service.target
    finally:
        service.stop()

"""Fixtures for the metrics tests: generated Japanese/English prediction-reference pairs and a
real metrics server on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hyoka.metrics.synthetic import generate_pairs


@pytest.fixture(scope="session")
def pairs() -> list[tuple[str, str]]:
    return generate_pairs(2000)


@pytest.fixture
async def metrics_server() -> AsyncIterator[tuple[str, object]]:
    """A real metrics server on a free loopback port: yields (target, running server)."""
    from hyoka.metrics.server import MetricsServerConfig, start_metrics_server

    running = await start_metrics_server(MetricsServerConfig(port=0, max_batch_items=500, max_stream_items=5000))
    try:
        yield f"127.0.0.1:{running.port}", running
    finally:
        await running.stop(0)

"""Fixtures for the gRPC fuzzers: the real metrics and analysis servers, started in this process
as their own tests start them, but each on an event loop in a background thread, so that
hypothesis drives them from plain (synchronous) test functions through a grpc channel."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

#: Examples per fuzz test. CI runs the default (the whole tests/fuzz run takes about half a
#: minute); `HYOKA_FUZZ_EXAMPLES=5000 pytest tests/fuzz` runs a long campaign.
FUZZ_EXAMPLES = int(os.environ.get("HYOKA_FUZZ_EXAMPLES", "400"))

# Fixed seed (derandomize: the examples depend only on the test), no example database (nothing
# carried between runs), no per-example deadline (a gRPC deadline bounds every call instead).
settings.register_profile(
    "hyoka-fuzz",
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
FUZZ = settings.get_profile("hyoka-fuzz")


class ThreadedServer:
    """A grpc.aio server running on its own event loop in a daemon thread."""

    def __init__(self, start: Callable[[], Awaitable[Any]]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fuzz-server", daemon=True)
        self._thread.start()
        self.server = self.run(start())
        self.target = f"127.0.0.1:{self.server.port}"

    def run(self, coroutine: Awaitable[Any]) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]
        return future.result(timeout=60)

    def stop(self) -> None:
        try:
            self.run(self.server.stop(0))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


def _serve(start: Callable[[], Awaitable[Any]]) -> Iterator[ThreadedServer]:
    server = ThreadedServer(start)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def metrics_server() -> Iterator[ThreadedServer]:
    from hyoka.metrics.server import MetricsServerConfig, start_metrics_server

    # Small limits, so that the fuzzers reach them, and the scoring pool of production (1 thread).
    config = MetricsServerConfig(port=0, max_batch_items=50, max_stream_items=200, max_text_chars=2000, grace_seconds=0)
    yield from _serve(lambda: start_metrics_server(config))


@pytest.fixture(scope="module")
def analysis_server() -> Iterator[ThreadedServer]:
    import matplotlib

    matplotlib.use("Agg")
    from hyoka.orchestrator.analysis.servicer import registration
    from hyoka.rpc import ServerConfig, start_server

    yield from _serve(lambda: start_server(ServerConfig(grace_seconds=0), [registration()]))


@pytest.fixture(scope="module")
def authed_metrics_server() -> Iterator[ThreadedServer]:
    from hyoka.metrics.server import MetricsServerConfig, start_metrics_server

    config = MetricsServerConfig(port=0, auth_token="fuzz-token", grace_seconds=0)
    yield from _serve(lambda: start_metrics_server(config))

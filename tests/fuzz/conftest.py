"""Fixtures for the gRPC fuzzers: the real metrics, analysis and evaluation servers, started in
this process as their own tests start them, but each on an event loop in a background thread, so
that hypothesis drives them from plain (synchronous) test functions through a grpc channel; and
the sandbox service in a process of its own."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

#: Examples per fuzz test. CI runs the default (the whole tests/fuzz run takes under a minute);
#: `HYOKA_FUZZ_EXAMPLES=5000 pytest tests/fuzz` runs a long campaign.
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


class _Cleanup(ThreadedServer):
    """A ThreadedServer that also closes what the server ran over (a sandbox's workers, a run
    manager), on the server's own loop, once the server has stopped."""

    def __init__(self, start: Callable[[], Awaitable[Any]], close: Callable[[], Awaitable[Any]]) -> None:
        self._close = close
        super().__init__(start)

    def stop(self) -> None:
        try:
            self.run(self.server.stop(0))
            self.run(self._close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


@dataclass
class SandboxProcess:
    """A `hyoka-sandbox serve` process: its service installs a SIGCHLD handler, which asyncio
    allows only on the main thread, so it cannot share this process as the other servers do.
    Its log (with any server traceback) is `log_path`."""

    proc: subprocess.Popen[bytes]
    target: str
    log_path: Path


@pytest.fixture(scope="module")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """The sandbox service, started as its own tests start it (sandbox/tests/conftest.py), with
    few workers and few waiting places (more: RESOURCE_EXHAUSTED, a defined status). The fuzzers
    keep every run short themselves (test_fuzz_services.py: wall limits of at most 1 s)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    log_path = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    env = {k: v for k, v in os.environ.items() if k != "HYOKA_SANDBOX_TOKEN"}
    args = ["--port", str(port), "--workers", "2", "--max-queued-runs", "16", "--max-queued-calls", "8"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hyoka.sandbox", "serve", *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = SandboxProcess(proc, f"127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                text = log_path.read_text(errors="replace")
                if "refusing to start" in text:
                    pytest.skip(f"no sandbox isolation on this host: {text[-500:]}")
                raise RuntimeError(f"sandbox service exited: {text}")
            try:
                with grpc.insecure_channel(server.target) as channel:
                    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"sandbox service did not become healthy: {log_path.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def evaluation_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    """EvaluationService as `hyoka serve` mounts it, over a fresh SQLite run store in a temporary
    state directory, at most one active run, no metrics or sandbox service (a run that needed one
    fails: the fuzzers' runs never get that far)."""
    from hyoka.orchestrator.evaluation import RunManager, RunSettings, open_run_store
    from hyoka.orchestrator.evaluation.servicer import registration
    from hyoka.rpc import ServerConfig, start_server

    state = tmp_path_factory.mktemp("evaluation")
    data_dir = os.environ.get("HYOKA_DATA_DIR")
    settings = RunSettings(
        state_dir=state / "state",
        data_dir=Path(data_dir) if data_dir else state / "data",
        store_url=f"sqlite:///{state / 'store.sqlite'}",
        max_active_runs=1,
    )
    store = open_run_store(settings)
    holder: dict[str, Any] = {}

    async def start() -> Any:
        holder["manager"] = manager = RunManager(store, settings)
        return await start_server(ServerConfig(grace_seconds=0), [registration(manager)])

    async def close() -> None:
        await holder["manager"].close()

    server = _Cleanup(start, close)
    try:
        yield server
    finally:
        server.stop()
        store.close()

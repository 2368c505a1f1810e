"""Fixtures for EvaluationService tests: a real metrics server and a real grpc.aio server with
EvaluationService on loopback over the run store of `store_url` (SQLite, then PostgreSQL); the
model is a simulated OpenAI-compatible server (`backends/testing/sim_server.py`) that each test
starts itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hyoka.orchestrator.evaluation import RunManager, RunSettings, open_run_store
from hyoka.orchestrator.evaluation.servicer import registration
from hyoka.orchestrator.runner.store import RunStore
from hyoka.rpc import ChannelConfig, RunningServer, ServerConfig, aio_channel, start_server
from hyoka.v1 import evaluation_pb2_grpc


@pytest.fixture
async def metrics_target() -> AsyncIterator[str]:
    from hyoka.metrics.server import MetricsServerConfig, start_metrics_server

    running = await start_metrics_server(MetricsServerConfig(port=0, grace_seconds=0))
    try:
        yield f"127.0.0.1:{running.port}"
    finally:
        await running.stop(0)


@dataclass
class Service:
    stub: evaluation_pb2_grpc.EvaluationServiceStub
    manager: RunManager
    settings: RunSettings
    store: RunStore


@pytest.fixture
async def service(store_url: str, metrics_target: str, data_dir: Path, tmp_path: Path) -> AsyncIterator[Service]:
    settings = RunSettings(
        state_dir=tmp_path / "state", data_dir=data_dir, store_url=store_url, metrics_url=metrics_target
    )
    store = open_run_store(settings)
    manager = RunManager(store, settings)
    running: RunningServer = await start_server(ServerConfig(grace_seconds=0), [registration(manager)])
    try:
        async with aio_channel(ChannelConfig(f"127.0.0.1:{running.port}")) as channel:
            yield Service(evaluation_pb2_grpc.EvaluationServiceStub(channel), manager, settings, store)
    finally:
        await manager.close()
        await running.stop(0)
        store.close()

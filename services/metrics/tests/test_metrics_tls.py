"""The metrics server with TLS and mutual TLS, end to end: the real server (in process, and as
`hyoka-metrics serve --tls-*`), called through hyoka's own clients (the orchestrator's
MetricsClient, hyoka.rpc channels), with certificates the test makes (hyoka.rpc.testing)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyoka.metrics.server import MetricsServer, MetricsServerConfig, start_metrics_server
from hyoka.rpc.client import ChannelConfig, sync_channel
from hyoka.rpc.testing import TestPKI, make_test_pki
from hyoka.v1 import metrics_pb2, metrics_pb2_grpc

services = pytest.importorskip("hyoka.orchestrator.services")
from hyoka.orchestrator.services._common import ServiceClient, ServiceUnavailableError  # noqa: E402
from hyoka.orchestrator.services.metrics import MetricsClient, ServiceCallError  # noqa: E402

TOKEN = "tls-and-token"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(params=[None, TOKEN], ids=["no-token", "token"])
async def mtls_server(request: pytest.FixtureRequest, pki: TestPKI) -> AsyncIterator[tuple[MetricsServer, str | None]]:
    config = MetricsServerConfig(port=0, auth_token=request.param, tls=pki.server_tls(), health_port=0, grace_seconds=0)
    running = await start_metrics_server(config)
    yield running, request.param
    await running.stop(0)


def _target(running: MetricsServer) -> str:
    return f"127.0.0.1:{running.port}"


async def test_metrics_client_with_a_certificate(mtls_server: tuple[MetricsServer, str | None], pki: TestPKI) -> None:
    running, token = mtls_server
    async with MetricsClient(_target(running), auth_token=token, tls=pki.client_tls(), timeout=10) as client:
        await client.health()
        scores = await client.score("exact_match", ["a", "b"], [["a"], ["c"]])
        assert [s.value for s in scores] == [1.0, 0.0]
        sentence = "the cat sat on the mat today"
        corpus = await client.corpus("bleu", [sentence], [[sentence]])
        assert corpus.value == pytest.approx(1.0)


async def test_health_over_tls_needs_no_token(mtls_server: tuple[MetricsServer, str | None], pki: TestPKI) -> None:
    running, token = mtls_server
    async with MetricsClient(_target(running), tls=pki.client_tls(), timeout=10) as client:
        await client.health()  # no token: health is open (the certificate is still needed)
        if token is not None:
            with pytest.raises(ServiceCallError, match="UNAUTHENTICATED"):
                await client.score("exact_match", ["a"], [["a"]])


@pytest.mark.parametrize("with_tls", [False, True], ids=["plaintext", "tls-without-cert"])
async def test_clients_without_a_certificate_are_refused(
    mtls_server: tuple[MetricsServer, str | None], pki: TestPKI, with_tls: bool
) -> None:
    running, token = mtls_server
    tls = pki.client_tls(with_cert=False) if with_tls else None
    async with MetricsClient(_target(running), auth_token=token, tls=tls, timeout=5) as client:
        with pytest.raises(ServiceUnavailableError):
            await client.health(deadline=2)
        with pytest.raises(ServiceCallError, match="UNAVAILABLE"):
            await client.score("exact_match", ["a"], [["a"]])
    async with MetricsClient(_target(running), auth_token=token, tls=pki.client_tls(), timeout=10) as client:
        assert [s.value for s in await client.score("exact_match", ["a"], [["a"]])] == [1.0]


async def test_plaintext_health_port_for_probes(mtls_server: tuple[MetricsServer, str | None]) -> None:
    running, _ = mtls_server
    assert running.running.health_port is not None
    probe = ServiceClient(f"127.0.0.1:{running.running.health_port}")
    probe.service_name = "hyoka.v1.MetricsService"
    try:
        await probe.health()
    finally:
        await probe.aclose()


def _start_cli(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "hyoka.metrics", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )
    lines: list[str] = []

    def read_until_serving() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "hyoka-metrics serving" in line:
                return

    reader = threading.Thread(target=read_until_serving)
    reader.start()
    reader.join(60)
    return process, lines


def test_serve_command_with_mtls_flags_and_env(pki: TestPKI) -> None:
    # certificate and key as flags, the client CA and the health port from the environment
    env = {"HYOKA_TLS_CLIENT_CA": str(pki.ca), "HYOKA_HEALTH_PORT": "0", "HYOKA_METRICS_AUTH_TOKEN": TOKEN}
    process, lines = _start_cli(["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)], env)
    try:
        match = re.search(
            r"hyoka-metrics serving on 127\.0\.0\.1:(\d+) \(plaintext health on port (\d+)\)", "".join(lines)
        )
        assert match, lines
        port, health_port = int(match[1]), int(match[2])
        config = ChannelConfig(f"127.0.0.1:{port}", auth_token=TOKEN, tls=pki.client_tls())
        with sync_channel(config) as channel:
            reply = metrics_pb2_grpc.MetricsServiceStub(channel).ListMetrics(
                metrics_pb2.ListMetricsRequest(), timeout=10
            )
            assert reply.metrics
        with sync_channel(ChannelConfig(f"127.0.0.1:{port}", auth_token=TOKEN)) as plaintext:
            with pytest.raises(grpc.RpcError) as raised:
                metrics_pb2_grpc.MetricsServiceStub(plaintext).ListMetrics(metrics_pb2.ListMetricsRequest(), timeout=5)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        with sync_channel(ChannelConfig(f"127.0.0.1:{health_port}")) as probe:
            status = health_pb2_grpc.HealthStub(probe).Check(health_pb2.HealthCheckRequest(), timeout=10).status
            assert status == health_pb2.HealthCheckResponse.SERVING
    finally:
        process.terminate()
        output = "".join(lines) + process.communicate(timeout=30)[0]
    assert TOKEN not in output  # the token is never logged
    assert "tls mutual" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "/nonexistent/server.crt", "--tls-key", "/nonexistent/server.key"], "cannot be read"),
        (["--tls-cert", "/nonexistent/server.crt"], "go together"),
    ],
)
def test_serve_command_rejects_bad_tls_settings(args: list[str], message: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hyoka.metrics", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("HYOKA_TLS_")},
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


async def test_in_process_server_refuses_to_start_with_a_bad_key(pki: TestPKI, tmp_path: Path) -> None:
    from hyoka.rpc.tls import ServerTLS, TLSConfigError

    with pytest.raises(TLSConfigError):
        await start_metrics_server(MetricsServerConfig(tls=ServerTLS(pki.server_cert, tmp_path / "missing.key")))
    await asyncio.sleep(0)

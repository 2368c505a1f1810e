"""The sandbox server with mutual TLS, end to end: the real `hyoka-sandbox serve --tls-*` (flags
and environment), called through hyoka's own clients (the orchestrator's SandboxClient, hyoka.rpc
channels), with certificates the test makes (hyoka.rpc.testing). Clients without a certificate
the CA signed fail the handshake; the bearer token is still required on top; health answers in
plaintext on --health-port for probes; the token never reaches the log."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyoka.rpc.client import ChannelConfig, sync_channel
from hyoka.rpc.tls import ClientTLS
from hyoka.v1 import sandbox_pb2, sandbox_pb2_grpc

testing = pytest.importorskip("hyoka.rpc.testing")  # needs cryptography (requirements/dev.txt)
from hyoka.rpc.testing import TestPKI, make_test_pki  # noqa: E402

from .conftest import DATA_DIR, free_port  # noqa: E402

pb = sandbox_pb2


@dataclass
class TLSService:
    proc: subprocess.Popen[bytes]
    port: int
    health_port: int
    token: str
    log_path: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def _health(target: str, tls: ClientTLS | None = None) -> int:
    with sync_channel(ChannelConfig(target, tls=tls)) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return int(reply.status)


@pytest.fixture(scope="module")
def mtls_service(tmp_path_factory: pytest.TempPathFactory, pki: TestPKI) -> Iterator[TLSService]:
    tmp = tmp_path_factory.mktemp("sandbox-tls")
    port, health_port, token = free_port(), free_port(), secrets.token_hex(16)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("HYOKA_TLS_")},
        "HYOKA_SANDBOX_TOKEN": token,
        "HYOKA_DATA_DIR": str(DATA_DIR),
        # certificate and key as flags, the client CA and the health port from the environment
        "HYOKA_TLS_CLIENT_CA": str(pki.ca),
        "HYOKA_HEALTH_PORT": str(health_port),
    }
    log_path = tmp / "sandbox.log"
    argv = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), "--workers", "2"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hyoka.sandbox", "serve", "--port", str(port), *argv],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
        )
    service = TLSService(proc, port, health_port, token, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:  # the plaintext health port is how a probe without a certificate sees it
            if proc.poll() is not None:
                pytest.fail(f"hyoka-sandbox serve exited {proc.returncode}:\n{log_path.read_text()}")
            with contextlib.suppress(grpc.RpcError):
                if _health(f"127.0.0.1:{health_port}") == health_pb2.HealthCheckResponse.SERVING:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"hyoka-sandbox serve not healthy after 60 s:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield service
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_started_with_mutual_tls_and_a_plaintext_health_port(mtls_service: TLSService) -> None:
    log = mtls_service.log_path.read_text()
    assert "tls mutual" in log
    assert f"hyoka-sandbox listening on 127.0.0.1:{mtls_service.port} (plaintext health on port" in log
    # The health-only port serves nothing else.
    with sync_channel(ChannelConfig(f"127.0.0.1:{mtls_service.health_port}", auth_token=mtls_service.token)) as ch:
        with pytest.raises(grpc.RpcError) as raised:
            sandbox_pb2_grpc.SandboxServiceStub(ch).GetSandboxInfo(pb.GetSandboxInfoRequest(), timeout=10)  # type: ignore[no-untyped-call]
        assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_sandbox_client_with_certificate_and_token(mtls_service: TLSService, pki: TestPKI) -> None:
    SandboxClient = pytest.importorskip("hyoka.orchestrator.services.sandbox").SandboxClient  # noqa: N806
    from hyoka.orchestrator.tasks.scoring import CodeSubmission

    solved = CodeSubmission(
        "p",
        "def add(a, b):\n",
        ("    return a + b\n", "    return a - b\n"),
        "def check(candidate):\n    assert candidate(2, 3) == 5\n",
        "add",
    )
    async with SandboxClient(
        mtls_service.target, auth_token=mtls_service.token, tls=pki.client_tls(), timeout=60
    ) as client:
        await client.health()
        info = await client.info()
        assert not info.insecure
        (verdict,) = await client.check([solved])
    assert verdict.passed == (True, False) and verdict.pass_at_1 == pytest.approx(0.5)


def test_the_token_is_still_required_over_mtls(mtls_service: TLSService, pki: TestPKI) -> None:
    for token in (None, "wrong"):
        with sync_channel(ChannelConfig(mtls_service.target, auth_token=token, tls=pki.client_tls())) as channel:
            with pytest.raises(grpc.RpcError) as raised:
                sandbox_pb2_grpc.SandboxServiceStub(channel).GetSandboxInfo(pb.GetSandboxInfoRequest(), timeout=10)  # type: ignore[no-untyped-call]
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # health needs the certificate, not the token
    assert _health(mtls_service.target, pki.client_tls()) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("client", ["plaintext", "no-certificate", "rogue-certificate"])
def test_clients_without_a_trusted_certificate_fail_the_handshake(
    mtls_service: TLSService, pki: TestPKI, client: str
) -> None:
    tls = {
        "plaintext": None,
        "no-certificate": pki.client_tls(with_cert=False),
        "rogue-certificate": pki.client_tls(rogue=True),
    }[client]
    with sync_channel(ChannelConfig(mtls_service.target, auth_token=mtls_service.token, tls=tls)) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            sandbox_pb2_grpc.SandboxServiceStub(channel).GetSandboxInfo(pb.GetSandboxInfoRequest(), timeout=10)  # type: ignore[no-untyped-call]
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.RpcError):  # health too: the handshake is for the whole port
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)


def test_the_token_never_reaches_the_log(mtls_service: TLSService, pki: TestPKI) -> None:
    with (
        sync_channel(
            ChannelConfig(mtls_service.target, auth_token="not-" + mtls_service.token, tls=pki.client_tls())
        ) as ch,
        pytest.raises(grpc.RpcError),
    ):
        sandbox_pb2_grpc.SandboxServiceStub(ch).GetSandboxInfo(pb.GetSandboxInfoRequest(), timeout=10)  # type: ignore[no-untyped-call]
    assert mtls_service.token not in mtls_service.log_path.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "/nonexistent/server.crt", "--tls-key", "/nonexistent/server.key"], "cannot be read"),
        (["--tls-cert", "/nonexistent/server.crt"], "go together"),
        (["--tls-client-ca", "/nonexistent/ca.crt"], "needs --tls-cert and --tls-key"),
    ],
)
def test_bad_tls_settings_are_a_usage_error(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hyoka.sandbox", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("HYOKA_TLS_")},
    )
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr

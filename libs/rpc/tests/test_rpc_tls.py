"""TLS and mutual TLS on the shared server and client plumbing, with certificates made by the test
(hyoka.rpc.testing): clients with a certificate get in (with or without a bearer token as the
server wants), clients without one and plaintext clients are refused, health stays reachable
(over TLS without a token, and on the plaintext health-only port), and tokens never reach the log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyoka.rpc import (
    ChannelConfig,
    ClientTLS,
    ServerConfig,
    ServerTLS,
    ServiceRegistration,
    TLSConfigError,
    aio_channel,
    start_server,
    sync_channel,
)
from hyoka.rpc.server import RunningServer
from hyoka.rpc.testing import SERVER_NAME, TestPKI, make_test_pki

from .conftest import SERVICE, TOKEN, EchoServicer, _add

ECHO = f"/{SERVICE}/Echo"
ECHO_STREAM = f"/{SERVICE}/EchoStream"
REFUSED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


async def _start(
    pki: TestPKI, *, token: str | None = None, mutual: bool = True, health_port: int | None = None
) -> RunningServer:
    config = ServerConfig(auth_token=token, tls=pki.server_tls(mutual=mutual), grace_seconds=0, health_port=health_port)
    return await start_server(config, [ServiceRegistration(SERVICE, _add, EchoServicer())])


@pytest.fixture(params=[None, TOKEN], ids=["no-token", "token"])
async def mtls_server(request: pytest.FixtureRequest, pki: TestPKI) -> AsyncIterator[tuple[RunningServer, str | None]]:
    running = await _start(pki, token=request.param, health_port=0)
    yield running, request.param
    await running.stop(0)


def _channel(running: RunningServer, tls: ClientTLS | None, token: str | None = None) -> grpc.aio.Channel:
    return aio_channel(ChannelConfig(f"127.0.0.1:{running.port}", auth_token=token, tls=tls))


async def _echo(channel: grpc.aio.Channel, payload: bytes = b"hi") -> bytes:
    result: bytes = await channel.unary_unary(ECHO)(payload, timeout=5)
    return result


async def _health(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return int(reply.status)


async def test_client_with_certificate_is_served(mtls_server: tuple[RunningServer, str | None], pki: TestPKI) -> None:
    running, token = mtls_server
    async with _channel(running, pki.client_tls(), token) as channel:
        assert await _echo(channel) == b"hi"
        assert [item async for item in channel.unary_stream(ECHO_STREAM)(b"s", timeout=5)] == [b"s0", b"s1", b"s2"]
    # the target's host is 127.0.0.1 (in the certificate); a name override checks the DNS name
    tls = ClientTLS(pki.ca, pki.client_cert, pki.client_key, server_name=SERVER_NAME)
    async with aio_channel(ChannelConfig(f"127.0.0.1:{running.port}", auth_token=token, tls=tls)) as channel:
        assert await _echo(channel) == b"hi"


async def test_token_is_still_required_over_mtls(pki: TestPKI) -> None:
    running = await _start(pki, token=TOKEN)
    try:
        for wrong in (None, "wrong-token"):
            async with _channel(running, pki.client_tls(), wrong) as channel:
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await _echo(channel)
                assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
                # health needs a certificate (the handshake does) but no token
                assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
    finally:
        await running.stop(0)


@pytest.mark.parametrize(
    "client",
    [
        pytest.param(lambda pki: None, id="plaintext"),
        pytest.param(lambda pki: pki.client_tls(with_cert=False), id="tls-without-cert"),
        pytest.param(lambda pki: pki.client_tls(rogue=True), id="cert-from-another-ca"),
        pytest.param(lambda pki: ClientTLS(pki.rogue_ca, pki.client_cert, pki.client_key), id="server-not-trusted"),
    ],
)
async def test_clients_without_a_trusted_certificate_are_refused(
    mtls_server: tuple[RunningServer, str | None], pki: TestPKI, client: object
) -> None:
    running, token = mtls_server
    tls = client(pki)  # type: ignore[operator]
    async with _channel(running, tls, token) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _echo(channel)
        assert raised.value.code() in REFUSED
        with pytest.raises(grpc.aio.AioRpcError):
            await _health(channel)
    # and the server is still serving the clients it should
    async with _channel(running, pki.client_tls(), token) as channel:
        assert await _echo(channel, b"ok") == b"ok"


async def test_plaintext_health_port_answers_probes(mtls_server: tuple[RunningServer, str | None]) -> None:
    running, _ = mtls_server
    assert running.health_port is not None and running.health_port != running.port
    async with aio_channel(ChannelConfig(f"127.0.0.1:{running.health_port}")) as channel:
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
        # only health there: the service itself is not reachable without TLS
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _echo(channel)
        assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    await running.stop(0)
    async with aio_channel(ChannelConfig(f"127.0.0.1:{running.health_port}")) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await _health(channel)


async def test_server_only_tls(pki: TestPKI) -> None:
    running = await _start(pki, mutual=False)
    try:
        async with _channel(running, pki.client_tls(with_cert=False)) as channel:
            assert await _echo(channel) == b"hi"
            assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
        async with _channel(running, None) as plaintext:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await _echo(plaintext)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await running.stop(0)


async def test_sync_channel_over_mtls(pki: TestPKI) -> None:
    running = await _start(pki, token=TOKEN)

    def call(tls: ClientTLS) -> bytes:
        with sync_channel(ChannelConfig(f"127.0.0.1:{running.port}", auth_token=TOKEN, tls=tls)) as channel:
            result: bytes = channel.unary_unary(ECHO)(b"sync", timeout=5)
            return result

    try:
        assert await asyncio.to_thread(call, pki.client_tls()) == b"sync"
        with pytest.raises(grpc.RpcError) as raised:
            await asyncio.to_thread(call, pki.client_tls(with_cert=False))
        assert raised.value.code() in REFUSED
    finally:
        await running.stop(0)


def test_settings_from_paths_and_env(tmp_path: Path) -> None:
    assert ServerTLS.from_paths(None, None, None) is None
    assert ServerTLS.from_paths("c.pem", "k.pem") == ServerTLS(Path("c.pem"), Path("k.pem"))
    assert ServerTLS.from_paths("c.pem", "k.pem", "ca.pem").mutual  # type: ignore[union-attr]
    with pytest.raises(TLSConfigError, match="go together"):
        ServerTLS.from_paths("c.pem", None)
    with pytest.raises(TLSConfigError, match="needs --tls-cert"):
        ServerTLS.from_paths(None, None, "ca.pem")
    env = {"HYOKA_TLS_CERT": "c", "HYOKA_TLS_KEY": "k", "HYOKA_TLS_CLIENT_CA": "ca"}
    assert ServerTLS.from_env(env) == ServerTLS(Path("c"), Path("k"), Path("ca"))
    assert ServerTLS.from_env({}) is None
    assert ClientTLS.from_env({}) is None
    assert ClientTLS.from_env({"HYOKA_TLS_CA": "ca"}) == ClientTLS(Path("ca"))
    assert ClientTLS.from_paths(enabled=True) == ClientTLS()
    with pytest.raises(TLSConfigError, match="go together"):
        ClientTLS(cert=Path("c"))


async def test_unreadable_files_fail_at_start(tmp_path: Path, pki: TestPKI) -> None:
    missing = ServerTLS(tmp_path / "none.crt", pki.server_key)
    with pytest.raises(TLSConfigError, match=r"--tls-cert .*cannot be read"):
        await start_server(ServerConfig(tls=missing), [])
    not_pem = tmp_path / "x.crt"
    not_pem.write_text("hello")
    with pytest.raises(TLSConfigError, match="not a PEM file"):
        await start_server(ServerConfig(tls=ServerTLS(not_pem, pki.server_key)), [])


async def test_tokens_never_reach_the_log(authed_echo_server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    presented = "presented-secret-9f3a"
    for token in (presented, None):
        async with aio_channel(ChannelConfig(f"127.0.0.1:{authed_echo_server.port}", auth_token=token)) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await _echo(channel)
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert presented not in (raised.value.details() or "") and TOKEN not in (raised.value.details() or "")
    async with aio_channel(ChannelConfig(f"127.0.0.1:{authed_echo_server.port}", auth_token=TOKEN)) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await _echo(channel, b"crash")  # an unexpected error is logged: without the token
    assert caplog.records, "expected the crash to be logged"
    assert presented not in caplog.text and TOKEN not in caplog.text


async def test_token_comparison_is_constant_time(
    authed_echo_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hmac

    from hyoka.rpc import auth

    compared: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    async with aio_channel(ChannelConfig(f"127.0.0.1:{authed_echo_server.port}", auth_token="guess")) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await _echo(channel)
    assert compared == [(b"Bearer guess", f"Bearer {TOKEN}".encode())]

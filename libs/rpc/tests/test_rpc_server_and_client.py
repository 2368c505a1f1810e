"""The shared plumbing against a real grpc.aio server: health, reflection, auth, error details,
message limits, and the client channels (aio and sync)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from hyoka.rpc import ChannelConfig, aio_channel, field_violations, sync_channel
from hyoka.rpc.server import RunningServer

from .conftest import SERVICE, TOKEN

ECHO = f"/{SERVICE}/Echo"
ECHO_STREAM = f"/{SERVICE}/EchoStream"


def target(server: RunningServer) -> str:
    return f"127.0.0.1:{server.port}"


async def echo(channel: grpc.aio.Channel, payload: bytes) -> bytes:
    result: bytes = await channel.unary_unary(ECHO)(payload, timeout=5)
    return result


async def test_health_reports_serving_for_server_and_each_service(echo_server: RunningServer) -> None:
    async with aio_channel(ChannelConfig(target(echo_server))) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", SERVICE):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_stop_reports_not_serving_before_draining() -> None:
    from .conftest import start_echo

    running = await start_echo()
    await running.stop(0)
    assert (await running.health.Check(health_pb2.HealthCheckRequest(service=SERVICE), None)).status == (
        health_pb2.HealthCheckResponse.NOT_SERVING
    )


async def test_reflection_lists_the_services(echo_server: RunningServer) -> None:
    async with aio_channel(ChannelConfig(target(echo_server))) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        names = set()
        async for reply in stub.ServerReflectionInfo(iter([request]), timeout=5):
            names.update(s.name for s in reply.list_services_response.service)
        assert {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names


async def test_echo_round_trip(echo_server: RunningServer) -> None:
    async with aio_channel(ChannelConfig(target(echo_server))) as channel:
        assert await echo(channel, "評価".encode()) == "評価".encode()


async def test_invalid_argument_carries_the_field(echo_server: RunningServer) -> None:
    async with aio_channel(ChannelConfig(target(echo_server))) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await echo(channel, b"bad")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == {"payload": "must not be 'bad'"}


async def test_streaming_error_after_some_items_carries_every_violation(echo_server: RunningServer) -> None:
    received = []
    async with aio_channel(ChannelConfig(target(echo_server))) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for item in channel.unary_stream(ECHO_STREAM)(b"bad", timeout=5):
                received.append(item)
    assert received == [b"bad0"]
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == {"payload": "must not be 'bad'", "count": "too large"}


async def test_resource_exhausted_and_internal_errors_leave_the_server_serving(echo_server: RunningServer) -> None:
    async with aio_channel(ChannelConfig(target(echo_server))) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as full:
            await echo(channel, b"full")
        assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(grpc.aio.AioRpcError) as crash:
            await echo(channel, b"crash")
        assert crash.value.code() == grpc.StatusCode.INTERNAL
        assert "secret internals" not in (crash.value.details() or "")
        assert await echo(channel, b"still here") == b"still here"


async def test_oversize_message_is_refused_with_resource_exhausted(echo_server: RunningServer) -> None:
    async with aio_channel(ChannelConfig(target(echo_server))) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await echo(channel, b"x" * (2 * 1024 * 1024))
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert await echo(channel, b"small") == b"small"


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_auth_rejects_missing_or_wrong_token(authed_echo_server: RunningServer, token: str | None) -> None:
    async with aio_channel(ChannelConfig(target(authed_echo_server), auth_token=token)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as unary:
            await echo(channel, b"hi")
        assert unary.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as stream:
            async for _ in channel.unary_stream(ECHO_STREAM)(b"hi", timeout=5):
                pass
        assert stream.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_auth_accepts_the_token_and_leaves_health_open(authed_echo_server: RunningServer) -> None:
    async with aio_channel(ChannelConfig(target(authed_echo_server), auth_token=TOKEN)) as channel:
        assert await echo(channel, b"hi") == b"hi"
        assert [item async for item in channel.unary_stream(ECHO_STREAM)(b"s", timeout=5)] == [b"s0", b"s1", b"s2"]
    async with aio_channel(ChannelConfig(target(authed_echo_server))) as anonymous:
        reply = await health_pb2_grpc.HealthStub(anonymous).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_sync_channel_sends_the_token(authed_echo_server: RunningServer) -> None:
    def call(token: str | None) -> bytes:
        channel = sync_channel(ChannelConfig(target(authed_echo_server), auth_token=token))
        try:
            result: bytes = channel.unary_unary(ECHO)(b"sync", timeout=5)
            return result
        finally:
            channel.close()

    assert await asyncio.to_thread(call, TOKEN) == b"sync"
    with pytest.raises(grpc.RpcError) as raised:
        await asyncio.to_thread(call, None)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_client_retries_while_the_server_is_starting() -> None:
    """UNAVAILABLE is retried by the channel's service config: a call made before the server
    listens still succeeds once it does (within the retry budget)."""
    from .conftest import start_echo

    probe = await start_echo()
    port = probe.port
    await probe.stop(0)
    async with aio_channel(ChannelConfig(f"127.0.0.1:{port}")) as channel:
        call = asyncio.ensure_future(channel.unary_unary(ECHO)(b"early", timeout=10, wait_for_ready=True))
        await asyncio.sleep(0.3)
        from hyoka.rpc import ServerConfig, ServiceRegistration, start_server

        from .conftest import EchoServicer, _add

        running = await start_server(
            ServerConfig(port=port, grace_seconds=0), [ServiceRegistration(SERVICE, _add, EchoServicer())]
        )
        try:
            assert await call == b"early"
        finally:
            await running.stop(0)

"""A tiny echo service registered through generic handlers, so the shared plumbing is tested on
a real grpc.aio server without depending on any hyoka service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from hyoka.rpc import InvalidArgument, ResourceExhausted, ServerConfig, ServiceRegistration, handle_errors, start_server
from hyoka.rpc.server import RunningServer

SERVICE = "hyoka.test.EchoService"
TOKEN = "s3cret-token"


class EchoServicer:
    """Echoes bytes; special payloads trigger each error path."""

    @handle_errors
    async def Echo(self, request: bytes, context: Any) -> bytes:  # noqa: N802 - gRPC method name
        if request == b"bad":
            raise InvalidArgument("payload", "must not be 'bad'")
        if request == b"full":
            raise ResourceExhausted("queue is full")
        if request == b"crash":
            raise RuntimeError("boom: secret internals")
        return request

    @handle_errors
    async def EchoStream(self, request: bytes, context: Any) -> AsyncIterator[bytes]:  # noqa: N802
        for index in range(3):
            if request == b"bad" and index == 1:
                raise InvalidArgument.of([("payload", "must not be 'bad'"), ("count", "too large")])
            yield request + str(index).encode()


def _add(servicer: EchoServicer, server: grpc.aio.Server) -> None:
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(servicer.Echo),
            "EchoStream": grpc.unary_stream_rpc_method_handler(servicer.EchoStream),
        },
    )
    server.add_generic_rpc_handlers((handler,))


async def start_echo(auth_token: str | None = None, max_message_bytes: int = 1024 * 1024) -> RunningServer:
    config = ServerConfig(auth_token=auth_token, max_message_bytes=max_message_bytes, grace_seconds=0)
    return await start_server(config, [ServiceRegistration(SERVICE, _add, EchoServicer())])


@pytest.fixture
async def echo_server() -> AsyncIterator[RunningServer]:
    running = await start_echo()
    yield running
    await running.stop(0)


@pytest.fixture
async def authed_echo_server() -> AsyncIterator[RunningServer]:
    running = await start_echo(auth_token=TOKEN)
    yield running
    await running.stop(0)

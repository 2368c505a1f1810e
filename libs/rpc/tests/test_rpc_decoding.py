"""Requests that do not parse answer INVALID_ARGUMENT on the field "request" (grpc.aio alone
answers UNKNOWN with protobuf's exception text), on every method of a hyoka server: health,
reflection and the services' own, unary and streaming; with a token, unauthenticated garbage is
UNAUTHENTICATED. Found by tests/fuzz."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from hyoka.rpc import ChannelConfig, ServerConfig, ServiceRegistration, aio_channel, field_violations, start_server
from hyoka.rpc.server import RunningServer

SERVICE = "hyoka.test.TypedService"
NOT_UTF8 = b"\x0a\x01\xff"  # field 1 (a string) holding 0xff
CORRUPT = b"\xff\xff\xff"
TOKEN = "decoding-token"


class TypedServicer:
    async def Unary(self, request: Any, context: Any) -> Any:  # noqa: N802
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    async def ClientStream(self, requests: AsyncIterator[Any], context: Any) -> Any:  # noqa: N802
        count = 0
        async for _ in requests:
            count += 1
        return health_pb2.HealthCheckResponse(status=count)

    async def ServerStream(self, request: Any, context: Any) -> AsyncIterator[Any]:  # noqa: N802
        yield health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


def _add(servicer: TypedServicer, server: grpc.aio.Server) -> None:
    kwargs = {
        "request_deserializer": health_pb2.HealthCheckRequest.FromString,
        "response_serializer": health_pb2.HealthCheckResponse.SerializeToString,
    }
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(servicer.Unary, **kwargs),
        "ClientStream": grpc.stream_unary_rpc_method_handler(servicer.ClientStream, **kwargs),
        "ServerStream": grpc.unary_stream_rpc_method_handler(servicer.ServerStream, **kwargs),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


@pytest.fixture(params=[None, TOKEN], ids=["open", "token"])
async def typed_server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[RunningServer, str | None]]:
    config = ServerConfig(auth_token=request.param, grace_seconds=0)
    running = await start_server(config, [ServiceRegistration(SERVICE, _add, TypedServicer())])
    yield running, request.param
    await running.stop(0)


async def _code(call: Any) -> tuple[grpc.StatusCode, dict[str, str]]:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code(), field_violations(error)
    return grpc.StatusCode.OK, {}


@pytest.mark.parametrize("payload", [NOT_UTF8, CORRUPT])
async def test_undecodable_requests_are_invalid_argument(
    typed_server: tuple[RunningServer, str | None], payload: bytes
) -> None:
    running, token = typed_server
    async with aio_channel(ChannelConfig(f"127.0.0.1:{running.port}", auth_token=token)) as channel:

        async def drain(call: Any) -> None:
            async for _ in call:
                pass

        calls = {
            "Unary": channel.unary_unary(f"/{SERVICE}/Unary")(payload, timeout=5),
            "ClientStream": channel.stream_unary(f"/{SERVICE}/ClientStream")(iter([b"", payload]), timeout=5),
            "ServerStream": drain(channel.unary_stream(f"/{SERVICE}/ServerStream")(payload, timeout=5)),
            "Health/Check": channel.unary_unary("/grpc.health.v1.Health/Check")(payload, timeout=5),
            "Health/Watch": drain(channel.unary_stream("/grpc.health.v1.Health/Watch")(payload, timeout=5)),
            "Reflection": drain(
                channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")(
                    iter([payload]), timeout=5
                )
            ),
        }
        for name, call in calls.items():
            code, fields = await _code(call)
            assert code == grpc.StatusCode.INVALID_ARGUMENT, name
            assert "request" in fields and "not a valid request message" in fields["request"], name
        # and valid requests still work
        assert (await _code(channel.unary_unary(f"/{SERVICE}/Unary")(b"", timeout=5)))[0] == grpc.StatusCode.OK


async def test_unauthenticated_garbage_is_unauthenticated(typed_server: tuple[RunningServer, str | None]) -> None:
    running, token = typed_server
    if token is None:
        return
    async with aio_channel(ChannelConfig(f"127.0.0.1:{running.port}")) as channel:
        for payload in (NOT_UTF8, CORRUPT):
            code, _ = await _code(channel.unary_unary(f"/{SERVICE}/Unary")(payload, timeout=5))
            assert code == grpc.StatusCode.UNAUTHENTICATED
            code, _ = await _code(channel.stream_unary(f"/{SERVICE}/ClientStream")(iter([payload]), timeout=5))
            assert code == grpc.StatusCode.UNAUTHENTICATED

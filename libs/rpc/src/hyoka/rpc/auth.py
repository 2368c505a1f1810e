"""Bearer-token authentication as a server interceptor.

Health checks stay open so that Kubernetes probes and load balancers need no secret; every other
method, reflection included, requires `authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/",)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, token: str, open_method_prefixes: tuple[str, ...] = OPEN_METHOD_PREFIXES) -> None:
        if not token:
            raise ValueError("the bearer token must not be empty")
        self._expected = f"Bearer {token}".encode()
        self._open = open_method_prefixes

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        if handler is None or method.startswith(self._open):
            return handler
        metadata = handler_call_details.invocation_metadata or ()  # type: ignore[attr-defined]
        presented = next((value for key, value in metadata if key == "authorization"), "")
        if isinstance(presented, str):
            presented = presented.encode()
        if hmac.compare_digest(presented, self._expected):
            return handler
        return _deny_like(handler)


async def _deny(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")


async def _deny_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
    yield  # pragma: no cover - makes this an async generator, as streaming handlers must be


def _deny_like(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same streaming shape as `handler` that rejects the call."""
    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(_deny_stream, **kwargs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(_deny, **kwargs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(_deny_stream, **kwargs)
    return grpc.unary_unary_rpc_method_handler(_deny, **kwargs)

"""Requests that do not parse answer INVALID_ARGUMENT, on every method of every hyoka server.

grpc.aio calls a method's request deserialiser before any servicer code runs, and a payload that
is not a valid message (corrupt wire format, a `string` field that is not UTF-8) makes it raise:
gRPC then answers UNKNOWN with protobuf's exception text. This interceptor, installed by
`start_server` on every server, wraps each handler's deserialiser so that such a payload becomes an
`UndecodableRequest`, and the handler's behaviour so that receiving one ends the call with
INVALID_ARGUMENT and a google.rpc.BadRequest violation on the field "request". It covers services
whose servicers hyoka does not write (health, reflection). Services with their own lenient
deserialisers (the metrics service, which names the offending field) never produce one.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from hyoka.rpc.errors import InvalidArgument

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UndecodableRequest:
    """A request payload its method's deserialiser rejected."""

    method: str
    reason: str

    def error(self) -> InvalidArgument:
        return InvalidArgument("request", f"is not a valid request message for {self.method} ({self.reason})")


def _safe_deserializer(method: str, deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def safe(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as error:  # DecodeError, and whatever a custom deserialiser raises
            reason = str(error).rpartition(": ")[2] or type(error).__name__
            return UndecodableRequest(method, reason[:200])

    return safe


async def _abort(context: grpc.aio.ServicerContext[Any, Any], request: UndecodableRequest) -> None:
    await context.abort_with_status(request.error().to_status())


async def _checked(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
    async for request in requests:
        if isinstance(request, UndecodableRequest):
            await _abort(context, request)
        yield request


def _wrap_behavior(behavior: Callable[..., Any], request_streaming: bool) -> Callable[..., Any]:
    """`behavior` with its request (or each streamed request) checked first."""

    def arguments(request: Any, context: Any) -> Any:
        return _checked(request, context) if request_streaming else request

    async def reject_unary(request: Any, context: Any) -> bool:
        if not request_streaming and isinstance(request, UndecodableRequest):
            await _abort(context, request)
            return True
        return False

    if inspect.isasyncgenfunction(behavior):

        async def stream_behavior(request: Any, context: Any) -> AsyncIterator[Any]:
            await reject_unary(request, context)
            async for item in behavior(arguments(request, context), context):
                yield item

        return stream_behavior

    async def behavior_(request: Any, context: Any) -> Any:
        await reject_unary(request, context)
        result = behavior(arguments(request, context), context)
        return await result if inspect.isawaitable(result) else result

    return behavior_


def _wrap(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    behavior = handler.stream_stream or handler.stream_unary or handler.unary_stream or handler.unary_unary
    if not (inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)):
        return handler  # a synchronous servicer (none in hyoka): left as grpc runs it
    kwargs: dict[str, Any] = {
        "request_deserializer": _safe_deserializer(method, handler.request_deserializer),
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(_wrap_behavior(handler.stream_stream, True), **kwargs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(_wrap_behavior(handler.stream_unary, True), **kwargs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(_wrap_behavior(handler.unary_stream, False), **kwargs)
    return grpc.unary_unary_rpc_method_handler(_wrap_behavior(handler.unary_unary, False), **kwargs)


class RequestDecodingInterceptor(grpc.aio.ServerInterceptor):
    """Undecodable requests answer INVALID_ARGUMENT instead of UNKNOWN (see the module doc)."""

    def __init__(self) -> None:
        # method -> (the handler found, its wrapped form): handlers are looked up on every call
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = _wrap(method, handler)
        if len(self._wrapped) < 1024:  # bounded: method names come from clients
            self._wrapped[method] = (handler, wrapped)
        return wrapped

"""The error convention of every hyoka service.

Domain code raises a `ServiceError` subclass; servicer methods wrapped in `handle_errors` turn it
into a gRPC status carrying google.rpc details (BadRequest field violations for bad input), so a
client learns exactly which field was wrong. Anything unexpected becomes INTERNAL without leaking
a traceback, and the server keeps serving.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, ClassVar, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class ServiceError(Exception):
    """An application error with a gRPC status code and optional field violations."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, violations: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.violations = tuple(violations)

    def to_status(self) -> grpc.Status:
        status = status_pb2.Status(code=_CODE_NUMBERS[self.code], message=self.message)
        if self.violations:
            bad_request = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
                    for field, description in self.violations
                ]
            )
            detail = any_pb2.Any()
            detail.Pack(bad_request)
            status.details.append(detail)
        return rpc_status.to_status(status)


class InvalidArgument(ServiceError):
    """Bad input. Build it from one field (`InvalidArgument("items[2].prediction", "is empty")`)
    or from several violations at once (`InvalidArgument.of([...])`)."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}", [(field, description)])

    @classmethod
    def of(cls, violations: Sequence[tuple[str, str]]) -> InvalidArgument:
        if not violations:
            raise ValueError("InvalidArgument.of needs at least one violation")
        error = cls(*violations[0])
        error.violations = tuple(violations)
        error.message = "; ".join(f"{f}: {d}" for f, d in violations)
        error.args = (error.message,)
        return error


class ResourceExhausted(ServiceError):
    """Too large a request, or a full queue: the client may retry later or send less."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


_CODE_NUMBERS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: code_pb2.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED: code_pb2.RESOURCE_EXHAUSTED,
    grpc.StatusCode.NOT_FOUND: code_pb2.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION: code_pb2.FAILED_PRECONDITION,
    grpc.StatusCode.INTERNAL: code_pb2.INTERNAL,
}


async def _abort_for(context: grpc.aio.ServicerContext[Any, Any], error: Exception, method: str) -> None:
    """End the call for `error`: its own status for a ServiceError; INTERNAL, logged but not
    sent, for anything unexpected. An abort already under way passes through."""
    if isinstance(error, grpc.aio.AbortError):
        raise error
    if isinstance(error, ServiceError):
        await context.abort_with_status(error.to_status())
    log.exception("unexpected error in %s", method, exc_info=error)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}; see the server log")


def handle_errors(method: F) -> F:
    """Wrap an async servicer method (unary or streaming response) so `ServiceError`s become
    statuses with details and unexpected exceptions become INTERNAL."""

    name = method.__qualname__
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream_wrapper(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
            try:
                async for item in method(self, request, context):
                    yield item
            except Exception as error:
                await _abort_for(context, error, name)

        return stream_wrapper  # type: ignore[return-value]

    @functools.wraps(method)
    async def unary_wrapper(self: Any, request: Any, context: Any) -> Any:
        try:
            return await method(self, request, context)
        except Exception as error:
            await _abort_for(context, error, name)

    return unary_wrapper  # type: ignore[return-value]


def field_violations(error: grpc.RpcError) -> dict[str, str]:
    """Client side: the BadRequest field violations carried by a failed call, field -> description."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        return {}
    found: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            for violation in bad_request.field_violations:
                found[violation.field] = violation.description
    return found

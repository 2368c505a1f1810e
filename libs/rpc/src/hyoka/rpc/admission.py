"""Admission control: a bounded, FIFO queue in front of every hyoka service.

Without it a grpc.aio server starts a handler for every call that arrives, so a burst of 10,000
calls holds 10,000 requests and tasks at once. With it (`ServerConfig.admission`, the
`--max-concurrent-calls` and `--max-queued-calls` flags of each `serve` command), per service
(per proto service name: AnalysisService and EvaluationService in one server are limited apart):

* at most `max_concurrent` calls run their handler at once, and at most `max_queued` more wait,
  in arrival order;
* a call beyond that is refused at once with RESOURCE_EXHAUSTED, a readable message and a
  `google.rpc.RetryInfo` detail (in `grpc-status-details-bin`, read with
  `grpc_status.rpc_status.from_call` or `retry_delay(error)`) saying when to try again: the
  recent mean call time times the calls ahead, divided by `max_concurrent`, within 0.1-30 s;
* a call that would have to wait, and by the recent mean call time would still be waiting when its
  deadline passes, is refused at once the same way (the client learns now, not at its deadline);
* a queued call whose deadline passes before it starts all the same ends DEADLINE_EXCEEDED; its
  handler never runs. A queued call its client cancels leaves the queue.

Small calls are not starved by large ones. Each call has a cost (`METHOD_COSTS`: a metrics Score
costs one unit per 100 items, a sandbox ExecuteBatch or CheckCompletions one per program; every
other call 1); a call costing more than `small_cost` is *large*, as is every call that streams
its requests (ScoreStream: its size is unknown when it starts, and it is the path for big
batches). Large calls may hold at most half (rounded up) of the `max_concurrent` slots and at
most half (rounded up) of the `max_queued` places; the rest is left to small calls. The queue is
FIFO across both kinds, except that a large call that may not start yet (its half is full) does
not hold up the small calls behind it. So however many large calls are waiting, small calls keep
at least max_concurrent // 2 slots and max_queued // 2 places (with max_concurrent = 1 they share
the one slot, in arrival order), and large calls are not starved either: when a slot frees, the
oldest call that may take it does.

A call counts while its handler runs: a streaming call (WatchRun, ExecuteBatch, ScoreStream) holds
its slot until its stream ends, so `max_concurrent` must leave room for the streams a service
keeps open. Health and reflection are exempt. Admission happens after the request is decoded
(its cost needs it), so memory is bounded by (max_concurrent + max_queued) requests of at most
`ServerConfig.max_message_bytes` each; a refused call's request is dropped at once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

log = logging.getLogger(__name__)

#: Methods never queued or refused: probes must see a full server as SERVING.
EXEMPT_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

MIN_RETRY_DELAY_S = 0.1
MAX_RETRY_DELAY_S = 30.0

Cost = Callable[[Any], int]


def _length(request: Any, *path: str) -> int:
    value = request
    for name in path:
        value = getattr(value, name, None)
        if value is None:
            return 0
    try:
        return len(value)
    except TypeError:
        return 0


def _score_cost(request: Any) -> int:
    items = _length(request, "items") + _length(request, "columns", "predictions")
    return max(1, math.ceil(items / 100))


#: Cost of a call by full method name, from its decoded request (anything a lenient deserialiser
#: returns must be accepted: a request that is not a message costs 1); methods not listed cost 1.
METHOD_COSTS: Mapping[str, Cost] = MappingProxyType(
    {
        "/hyoka.v1.MetricsService/Score": _score_cost,
        "/hyoka.v1.SandboxService/ExecuteBatch": lambda request: max(1, _length(request, "programs")),
        "/hyoka.v1.SandboxService/CheckCompletions": lambda request: max(1, _length(request, "completions")),
    }
)


@dataclass(frozen=True)
class AdmissionLimits:
    """The limits of each service of one server (see the module doc)."""

    max_concurrent: int
    max_queued: int
    #: Calls costing more than this are large (limited to half the slots and half the queue).
    small_cost: int = 1
    costs: Mapping[str, Cost] = field(default_factory=lambda: METHOD_COSTS)
    exempt_prefixes: tuple[str, ...] = EXEMPT_METHOD_PREFIXES

    def __post_init__(self) -> None:
        if self.max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, not {self.max_concurrent}")
        if self.max_queued < 0:
            raise ValueError(f"max_queued must be at least 0, not {self.max_queued}")

    @property
    def max_large_concurrent(self) -> int:
        return (self.max_concurrent + 1) // 2

    @property
    def max_large_queued(self) -> int:
        return (self.max_queued + 1) // 2


class Refused(Exception):
    """The queue is full: carries the retry delay and a message for the client."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def to_status(self) -> grpc.Status:
        seconds = int(self.retry_after)
        nanos = round((self.retry_after - seconds) * 1e9)
        info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds, nanos=nanos))
        detail = any_pb2.Any()
        detail.Pack(info)
        status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=self.message, details=[detail])
        return rpc_status.to_status(status)


class _Waiter:
    __slots__ = ("future", "large", "seq")

    def __init__(self, seq: int, large: bool) -> None:
        self.seq = seq
        self.large = large
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()


@dataclass
class AdmissionStats:
    admitted: int = 0
    refused: int = 0
    expired: int = 0  # deadline passed (or cancelled) while queued
    peak_running: int = 0
    peak_queued: int = 0


class ServiceAdmission:
    """The slots and queue of one service."""

    def __init__(self, name: str, limits: AdmissionLimits) -> None:
        self.name = name
        self.limits = limits
        self.running = 0
        self.running_large = 0
        self._small: deque[_Waiter] = deque()
        self._large: deque[_Waiter] = deque()
        self._seq = 0
        self._mean_seconds = 0.1  # exponentially weighted mean handler time
        self.stats = AdmissionStats()

    @property
    def queued(self) -> int:
        return len(self._small) + len(self._large)

    def retry_after(self) -> float:
        ahead = self.queued + self.running
        estimate = self._mean_seconds * ahead / self.limits.max_concurrent
        return round(min(MAX_RETRY_DELAY_S, max(MIN_RETRY_DELAY_S, estimate)), 3)

    def expected_wait(self) -> float:
        """Seconds a call queued now would wait, by the recent mean call time."""
        return self._mean_seconds * (self.queued + 1) / self.limits.max_concurrent

    def _refuse(self, large: bool, deadline_s: float | None = None) -> Refused:
        self.stats.refused += 1
        kind = "large " if large else ""
        limit = self.limits.max_large_queued if large else self.limits.max_queued
        delay = self.retry_after()
        why = (
            f"a {kind}call queued now would wait about {self.expected_wait():.1f} s, past its deadline "
            f"({deadline_s:.1f} s)"
            if deadline_s is not None
            else f"no room for another {kind}call (at most {limit} may wait)"
        )
        return Refused(
            f"{self.name} is busy: {self.running} calls running and {self.queued} queued, {why}; retry in {delay:g} s",
            delay,
        )

    def _dispatch(self) -> None:
        """Start the oldest waiters that may start, while slots are free."""
        limits = self.limits
        while self.running < limits.max_concurrent:
            small = self._small[0] if self._small else None
            large = self._large[0] if self._large and self.running_large < limits.max_large_concurrent else None
            if small is None and large is None:
                return
            if large is not None and (small is None or large.seq < small.seq):
                self._large.popleft()
                self.running_large += 1
                chosen = large
            else:
                assert small is not None
                self._small.popleft()
                chosen = small
            self.running += 1
            self.stats.admitted += 1
            chosen.future.set_result(None)
        self.stats.peak_running = max(self.stats.peak_running, self.running)

    def release(self, large: bool, seconds: float | None) -> None:
        """Free the slot a call held for `seconds` (None: it never ran) and start whoever may."""
        self.running -= 1
        if large:
            self.running_large -= 1
        if seconds is not None:
            self._mean_seconds += 0.2 * (seconds - self._mean_seconds)
        self._dispatch()

    async def acquire(self, large: bool, deadline_s: float | None = None) -> None:
        """Wait for a slot (cancelled, under `asyncio.timeout` say, it leaves the queue); raise
        Refused at once when the queue has no room, or when the call would wait past `deadline_s`
        (seconds left; None: no deadline). The caller must `release` the slot."""
        limits = self.limits
        queue = self._large if large else self._small
        full = self.queued >= limits.max_queued or (large and len(queue) >= limits.max_large_queued)
        may_start = self.running < limits.max_concurrent and not (
            large and self.running_large >= limits.max_large_concurrent
        )
        if full and (queue or not may_start):  # a call that could start now needs no place in the queue
            raise self._refuse(large)
        if not may_start and deadline_s is not None and self.expected_wait() > deadline_s:
            raise self._refuse(large, deadline_s)
        self._seq += 1
        waiter = _Waiter(self._seq, large)
        queue.append(waiter)
        self._dispatch()
        self.stats.peak_queued = max(self.stats.peak_queued, self.queued)
        if waiter.future.done():
            return
        try:
            await asyncio.shield(waiter.future)
        except BaseException:  # the deadline passed, or the call was cancelled, while queued
            if waiter.future.done():  # admitted at that very moment: hand the slot on
                self.release(large, None)
            else:
                queue.remove(waiter)
                waiter.future.cancel()
            self.stats.expired += 1
            raise


class AdmissionInterceptor(grpc.aio.ServerInterceptor):
    """Applies `AdmissionLimits` to every non-exempt method (see the module doc). Install it
    last (innermost), after authentication and request decoding: `start_server` does."""

    def __init__(self, limits: AdmissionLimits) -> None:
        self.limits = limits
        self.services: dict[str, ServiceAdmission] = {}
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def service(self, name: str) -> ServiceAdmission:
        found = self.services.get(name)
        if found is None:
            found = self.services[name] = ServiceAdmission(name, self.limits)
        return found

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        if handler is None or method.startswith(self.limits.exempt_prefixes):
            return handler
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)  # bounded: only methods that have a handler
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        behavior = handler.stream_stream or handler.stream_unary or handler.unary_stream or handler.unary_unary
        if not (inspect.iscoroutinefunction(behavior) or inspect.isasyncgenfunction(behavior)):
            return handler  # a synchronous handler (none in hyoka): not limited
        admission = self.service(method.lstrip("/").partition("/")[0])
        cost_of = self.limits.costs.get(method)
        small_cost = self.limits.small_cost
        request_streaming = handler.request_streaming

        def is_large(request: Any) -> bool:
            if request_streaming:
                return True
            if cost_of is None:
                return False
            try:
                return cost_of(request) > small_cost
            except Exception:  # a request the cost function does not understand: the handler will say why
                return False

        async def admit(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> bool | None:
            """Wait for a slot: whether the call is large; None when it was refused or expired
            (the call is then aborted)."""
            large = is_large(request)
            try:
                remaining = context.time_remaining()
                async with asyncio.timeout(remaining):
                    await admission.acquire(large, remaining)
            except Refused as refused:
                log.debug("refused %s: %s", method, refused.message)
                await context.abort_with_status(refused.to_status())
                return None
            except TimeoutError:
                await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"the deadline passed while {method} was queued")
                return None
            return large

        if inspect.isasyncgenfunction(behavior):

            async def stream_behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                large = await admit(request, context)
                if large is None:
                    return
                started = time.monotonic()
                try:
                    async for item in behavior(request, context):
                        yield item
                finally:
                    admission.release(large, time.monotonic() - started)

            new_behavior: Callable[..., Any] = stream_behavior
        else:

            async def unary_behavior(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                large = await admit(request, context)
                if large is None:
                    return None
                started = time.monotonic()
                try:
                    result = behavior(request, context)
                    return await result if inspect.isawaitable(result) else result
                finally:
                    admission.release(large, time.monotonic() - started)

            new_behavior = unary_behavior
        kwargs: dict[str, Any] = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(new_behavior, **kwargs)
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(new_behavior, **kwargs)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(new_behavior, **kwargs)
        return grpc.unary_unary_rpc_method_handler(new_behavior, **kwargs)


def retry_delay(error: grpc.RpcError) -> float | None:
    """Client side: the RetryInfo delay (seconds) a RESOURCE_EXHAUSTED carries; None if none."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    return None

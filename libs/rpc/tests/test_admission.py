"""Admission control (hyoka.rpc.admission) on a real grpc.aio server: a gated test service whose
calls block until the test lets them go, so every assertion is on counts and order, not timing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyoka.rpc.admission import AdmissionLimits, Refused, ServiceAdmission, retry_delay
from hyoka.rpc.server import RunningServer, ServerConfig, ServiceRegistration, start_server

SERVICE = "hyoka.test.GatedService"
WORK = f"/{SERVICE}/Work"
WATCH = f"/{SERVICE}/Watch"
UPLOAD = f"/{SERVICE}/Upload"


class Gated:
    """Work(payload) records that it started, then waits for the gate of its kind: payloads
    starting with b"L" are large (their cost is their length), others small (cost 1)."""

    def __init__(self) -> None:
        self.started: list[bytes] = []
        self.small_gate = asyncio.Event()
        self.large_gate = asyncio.Event()

    async def Work(self, request: bytes, context: Any) -> bytes:  # noqa: N802 - gRPC method name
        self.started.append(request)
        await (self.large_gate if request.startswith(b"L") else self.small_gate).wait()
        return request

    async def Watch(self, request: bytes, context: Any) -> AsyncIterator[bytes]:  # noqa: N802
        self.started.append(request)
        yield b"first"
        await self.small_gate.wait()
        yield b"last"

    async def Upload(self, requests: AsyncIterator[bytes], context: Any) -> bytes:  # noqa: N802
        chunks = [chunk async for chunk in requests]
        self.started.append(b"upload")
        await self.large_gate.wait()
        return b"".join(chunks)


def _add(servicer: Gated, server: grpc.aio.Server) -> None:
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Work": grpc.unary_unary_rpc_method_handler(servicer.Work),
            "Watch": grpc.unary_stream_rpc_method_handler(servicer.Watch),
            "Upload": grpc.stream_unary_rpc_method_handler(servicer.Upload),
        },
    )
    server.add_generic_rpc_handlers((handler,))


Start = Callable[..., Any]


def _cost(request: bytes) -> int:
    return len(request) if request.startswith(b"L") else 1


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    running: list[tuple[RunningServer, grpc.aio.Channel]] = []

    async def _start(max_concurrent: int, max_queued: int) -> tuple[Gated, RunningServer, grpc.aio.Channel]:
        servicer = Gated()
        limits = AdmissionLimits(max_concurrent, max_queued, costs={WORK: _cost})
        server = await start_server(
            ServerConfig(grace_seconds=0, admission=limits), [ServiceRegistration(SERVICE, _add, servicer)]
        )
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        running.append((server, channel))
        return servicer, server, channel

    yield _start
    for server, channel in running:
        await channel.close()
        await server.stop(0)


def stats(server: RunningServer) -> ServiceAdmission:
    assert server.admission is not None
    return server.admission.service(SERVICE)


async def until(condition: Callable[[], bool]) -> None:
    """Wait (at most 10 s) for the server to reach a state; the calls are in flight meanwhile."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the server never reached the expected state")


async def arrived(admission: ServiceAdmission, call: asyncio.Task[bytes]) -> asyncio.Task[bytes]:
    """`call` once the server has admitted or queued it, so that calls arrive in a known order."""
    seen = admission.running + admission.queued
    await until(lambda: admission.running + admission.queued > seen)
    return call


def work(channel: grpc.aio.Channel, payload: bytes, timeout: float = 20) -> asyncio.Task[bytes]:
    return asyncio.ensure_future(channel.unary_unary(WORK)(payload, timeout=timeout))


async def test_calls_beyond_running_and_queued_are_refused_with_retry_info(start: Start) -> None:
    servicer, server, channel = await start(2, 3)
    admission = stats(server)
    calls = [await arrived(admission, work(channel, f"s{i}".encode())) for i in range(5)]
    assert (admission.running, admission.queued) == (2, 3)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await channel.unary_unary(WORK)(b"one too many", timeout=10)
    error = raised.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "busy" in (error.details() or "") and "retry in" in (error.details() or "")
    delay = retry_delay(error)
    assert delay is not None and 0.1 <= delay <= 30
    assert b"one too many" not in servicer.started
    servicer.small_gate.set()
    assert sorted(await asyncio.gather(*calls)) == [f"s{i}".encode() for i in range(5)]
    assert servicer.started == [f"s{i}".encode() for i in range(5)]  # FIFO
    assert (admission.stats.admitted, admission.stats.refused) == (5, 1)
    assert admission.running == admission.queued == 0


async def test_a_queued_call_past_its_deadline_never_runs(start: Start) -> None:
    servicer, server, channel = await start(1, 5)
    holder = work(channel, b"holder")
    admission = stats(server)
    await until(lambda: admission.running == 1)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await work(channel, b"late", timeout=0.5)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await until(lambda: admission.queued == 0)
    assert admission.stats.expired == 1
    servicer.small_gate.set()
    assert await holder == b"holder"
    assert await work(channel, b"after") == b"after"
    assert servicer.started == [b"holder", b"after"]  # "late" never ran


async def test_health_and_reflection_stay_open_while_full(start: Start) -> None:
    servicer, server, channel = await start(1, 0)
    holder = work(channel, b"holder")
    admission = stats(server)
    await until(lambda: admission.running == 1)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await work(channel, b"refused")
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", SERVICE):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    servicer.small_gate.set()
    assert await holder == b"holder"


async def test_small_calls_are_not_starved_by_large_ones(start: Start) -> None:
    servicer, server, channel = await start(2, 10)
    admission = stats(server)
    large = [await arrived(admission, work(channel, large_payload(i))) for i in range(6)]  # cost 5 each
    # One runs (large calls get half the 2 slots), five wait (half the 10 places).
    assert (admission.running_large, admission.queued) == (1, 5)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await work(channel, b"L-seventh")
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Small calls, sent after the queued large ones, pass them on the slot large calls may not take.
    servicer.small_gate.set()
    small = [await work(channel, f"s{i}".encode()) for i in range(8)]
    assert small == [f"s{i}".encode() for i in range(8)]
    assert [p for p in servicer.started if p.startswith(b"L")] == [large_payload(0)]
    assert admission.queued == 5
    # And the large ones all run in turn, in arrival order.
    servicer.large_gate.set()
    assert await asyncio.gather(*large) == [large_payload(i) for i in range(6)]
    assert [p for p in servicer.started if p.startswith(b"L")] == [large_payload(i) for i in range(6)]


def large_payload(i: int) -> bytes:
    return b"L" + bytes([65 + i]) * 4


async def test_large_calls_keep_their_turn_among_small_ones(start: Start) -> None:
    servicer, server, channel = await start(2, 10)
    admission = stats(server)
    first = [work(channel, b"s-a"), work(channel, b"s-b")]  # both slots
    await until(lambda: admission.running == 2)
    queued = [work(channel, large_payload(0))]
    await until(lambda: admission.queued == 1)
    queued += [work(channel, b"s-c")]
    await until(lambda: admission.queued == 2)
    servicer.small_gate.set()
    servicer.large_gate.set()
    await asyncio.gather(*first, *queued)
    assert servicer.started.index(large_payload(0)) < servicer.started.index(b"s-c")


async def test_streams_hold_their_slot_until_they_end(start: Start) -> None:
    servicer, server, channel = await start(1, 0)
    admission = stats(server)
    stream = channel.unary_stream(WATCH)(b"watch", timeout=10)
    assert await stream.read() == b"first"
    assert admission.running == 1
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await work(channel, b"refused")
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in channel.unary_stream(WATCH)(b"second watch", timeout=10):
            pass
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert retry_delay(raised.value) is not None
    servicer.small_gate.set()
    assert await stream.read() == b"last"
    await until(lambda: admission.running == 0)
    assert await work(channel, b"after") == b"after"


async def test_request_streams_are_large(start: Start) -> None:
    servicer, server, channel = await start(2, 0)
    admission = stats(server)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    upload = asyncio.ensure_future(channel.stream_unary(UPLOAD)(chunks(), timeout=10))
    await until(lambda: admission.running_large == 1)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await channel.stream_unary(UPLOAD)(chunks(), timeout=10)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    servicer.small_gate.set()
    assert await work(channel, b"small") == b"small"  # the other slot
    servicer.large_gate.set()
    assert await upload == b"ab"


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        AdmissionLimits(0, 10)
    with pytest.raises(ValueError, match="max_queued"):
        AdmissionLimits(1, -1)
    limits = AdmissionLimits(5, 9)
    assert (limits.max_large_concurrent, limits.max_large_queued) == (3, 5)


def test_default_costs_of_hyoka_methods() -> None:
    from hyoka.rpc.admission import METHOD_COSTS
    from hyoka.v1 import metrics_pb2, sandbox_pb2

    score = METHOD_COSTS["/hyoka.v1.MetricsService/Score"]
    assert score(metrics_pb2.ScoreRequest(items=[metrics_pb2.ScoreItem()] * 100)) == 1
    assert score(metrics_pb2.ScoreRequest(columns=metrics_pb2.ScoreColumns(predictions=["a"] * 1000))) == 10
    assert score(object()) == 1  # a lenient deserialiser's "invalid payload"
    batch = METHOD_COSTS["/hyoka.v1.SandboxService/ExecuteBatch"]
    assert batch(sandbox_pb2.ExecuteBatchRequest(programs=[sandbox_pb2.ExecuteRequest()] * 3)) == 3


async def test_a_call_that_would_wait_past_its_deadline_is_refused_at_once() -> None:
    """Admission estimates the wait from the recent mean call time: a call that would still be
    queued at its deadline gets RESOURCE_EXHAUSTED now (with a retry delay), not DEADLINE_EXCEEDED
    later; one whose deadline leaves room is queued."""
    admission = ServiceAdmission("hyoka.v1.TestService", AdmissionLimits(max_concurrent=1, max_queued=10))
    for _ in range(30):  # calls that took 5 s each
        await admission.acquire(False)
        admission.release(False, 5.0)
    await admission.acquire(False)  # the one slot is taken
    with pytest.raises(Refused) as refused:
        await admission.acquire(False, deadline_s=1.0)
    assert "past its deadline (1.0 s)" in refused.value.message and refused.value.retry_after > 0
    waiting = asyncio.ensure_future(admission.acquire(False, deadline_s=60.0))
    await asyncio.sleep(0)
    assert admission.queued == 1 and not waiting.done()
    admission.release(False, 5.0)  # the slot goes to the queued call
    await waiting
    admission.release(False, 5.0)

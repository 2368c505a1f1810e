"""What both service clients share: channel setup, health checks, error wording, and calls sent
again while the service is unreachable.

Reconnecting: a service restarted (metrics) or a replica gone (two sandbox replicas behind one
target, e.g. `ipv4:10.0.0.1:50052,10.0.0.2:50052`; the channel fails over to the next address)
answers UNAVAILABLE until the channel is connected again. The channel itself retries UNAVAILABLE a
few times within a fraction of a second (`hyoka.rpc.client`); past that, `ServiceClient.call` sends
the call again with exponential backoff and full jitter for up to `retry_for_s` seconds, and the
channel tries to reconnect at least every 2 s (gRPC's default backoff grows to 120 s), so a
restart of a few seconds costs a few seconds. A service that is full answers RESOURCE_EXHAUSTED with
a retry delay (`hyoka.rpc.admission`): the call is sent again after that delay (with jitter) for up
to `busy_retry_for_s`. Every call here is idempotent (scoring and running pure programs). Other
status codes (RESOURCE_EXHAUSTED without a delay: a message over the size limit) are the call's
fault and are not retried.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyoka.rpc.admission import retry_delay
from hyoka.rpc.client import ChannelConfig, aio_channel
from hyoka.rpc.errors import field_violations
from hyoka.rpc.tls import ClientTLS

T = TypeVar("T")

#: Status codes after which a call is sent again: the server could not be reached, or went away.
RETRY_CODES = frozenset({grpc.StatusCode.UNAVAILABLE})


class ServiceUnavailableError(RuntimeError):
    """A scoring service cannot be reached or is not serving."""


class ServiceCallError(RuntimeError):
    """A scoring service rejected a call; the message names the service, status and fields."""


@dataclass(frozen=True)
class _ReconnectingChannelConfig(ChannelConfig):
    """The channel of `hyoka.rpc.client`, reconnecting to a lost server at least every 2 s."""

    def options(self) -> list[tuple[str, Any]]:
        return [
            *super().options(),
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]


def describe(service: str, error: grpc.aio.AioRpcError) -> str:
    fields = field_violations(error)
    where = f" ({'; '.join(f'{k}: {v}' for k, v in fields.items())})" if fields else ""
    return f"{service}: {error.code().name}: {error.details()}{where}"


class ServiceClient:
    """An aio channel to one service. Use as `async with`, or call `aclose()`. `tls`: None for
    plaintext, else the CA to trust and the client certificate for servers that require one
    (`ClientTLS.from_env()` reads HYOKA_TLS_CA, HYOKA_TLS_CLIENT_CERT, HYOKA_TLS_CLIENT_KEY)."""

    service_name: str = ""  # e.g. "hyoka.v1.MetricsService"
    #: How long a call is sent again while the service is UNAVAILABLE (module docstring), and the
    #: backoff between attempts (full jitter: a wait is uniform up to the ceiling, which doubles).
    retry_for_s: float = 60.0
    #: How long a call is sent again while the service answers it is full (RESOURCE_EXHAUSTED with
    #: a retry delay): a busy service is working, so this is long.
    busy_retry_for_s: float = 1800.0
    retry_backoff_s: float = 0.1
    retry_backoff_max_s: float = 2.0

    def __init__(
        self, target: str, *, auth_token: str | None = None, timeout: float = 30.0, tls: ClientTLS | None = None
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.channel = aio_channel(_ReconnectingChannelConfig(target=target, auth_token=auth_token, tls=tls))
        self.retries = 0  # calls sent again (each attempt after a call's first), for tests and logs

    async def health(self, deadline: float = 5.0) -> None:
        """Raise ServiceUnavailableError unless the server reports the service SERVING."""
        stub = health_pb2_grpc.HealthStub(self.channel)
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=self.service_name), timeout=deadline, wait_for_ready=True
            )
        except grpc.aio.AioRpcError as e:
            raise ServiceUnavailableError(
                f"cannot reach {self.service_name} at {self.target}: {e.code().name} ({e.details()})"
            ) from e
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            raise ServiceUnavailableError(f"{self.service_name} at {self.target} is {status}")

    async def call(self, what: str, send: Callable[[], Awaitable[T]]) -> T:
        """`await send()` (one gRPC call), sent again while it fails UNAVAILABLE (module docstring);
        a failure raises ServiceCallError naming `what`, the status and, when retries are spent,
        the target."""
        first_failure: float | None = None
        attempt = 0
        while True:
            try:
                return await send()
            except grpc.aio.AioRpcError as e:
                first_failure = first_failure if first_failure is not None else time.monotonic()
                await self.backoff(what, e, attempt, first_failure)
            attempt += 1

    async def backoff(self, what: str, error: grpc.aio.AioRpcError, attempt: int, first_failure: float) -> None:
        """Wait before sending again a call that failed with `error`, `attempt + 1` times in a row
        since `first_failure` (monotonic); raise ServiceCallError when `error` is not worth
        retrying or the time for retries (`retry_for_s` from the first failure) is spent."""
        if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            delay = retry_delay(error)
            spent = time.monotonic() - first_failure
            if delay is None:
                raise ServiceCallError(describe(what, error)) from error
            wait = delay * random.uniform(0.5, 1.5)
            if spent + wait > self.busy_retry_for_s:
                raise ServiceCallError(
                    f"{describe(what, error)}; {self.target} still full after {attempt + 1} attempt(s) in {spent:.0f} s"
                ) from error
            self.retries += 1
            await asyncio.sleep(wait)
            return
        if error.code() not in RETRY_CODES:
            raise ServiceCallError(describe(what, error)) from error
        ceiling = min(self.retry_backoff_max_s, self.retry_backoff_s * 2**attempt)
        wait = random.uniform(0.0, ceiling)
        spent = time.monotonic() - first_failure
        if spent + wait > self.retry_for_s:
            raise ServiceCallError(
                f"{describe(what, error)}; {self.target} still unreachable after {attempt + 1} attempt(s) "
                f"in {spent:.1f} s"
            ) from error
        self.retries += 1
        await asyncio.sleep(wait)

    async def aclose(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

"""What both service clients share: channel setup, health checks, error wording."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyoka.rpc.client import ChannelConfig, aio_channel
from hyoka.rpc.errors import field_violations
from hyoka.rpc.tls import ClientTLS


class ServiceUnavailableError(RuntimeError):
    """A scoring service cannot be reached or is not serving."""


class ServiceCallError(RuntimeError):
    """A scoring service rejected a call; the message names the service, status and fields."""


def describe(service: str, error: grpc.aio.AioRpcError) -> str:
    fields = field_violations(error)
    where = f" ({'; '.join(f'{k}: {v}' for k, v in fields.items())})" if fields else ""
    return f"{service}: {error.code().name}: {error.details()}{where}"


class ServiceClient:
    """An aio channel to one service. Use as `async with`, or call `aclose()`. `tls`: None for
    plaintext, else the CA to trust and the client certificate for servers that require one
    (`ClientTLS.from_env()` reads HYOKA_TLS_CA, HYOKA_TLS_CLIENT_CERT, HYOKA_TLS_CLIENT_KEY)."""

    service_name: str = ""  # e.g. "hyoka.v1.MetricsService"

    def __init__(
        self, target: str, *, auth_token: str | None = None, timeout: float = 30.0, tls: ClientTLS | None = None
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.channel = aio_channel(ChannelConfig(target=target, auth_token=auth_token, tls=tls))

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

    async def aclose(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> ServiceClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

"""Bootstrap for hyoka's grpc.aio servers: health, reflection, auth, message limits, admission
control (a bounded queue per service, see hyoka.rpc.admission), connection ageing (so that
scale-out behind a Kubernetes Service rebalances), graceful stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hyoka.rpc.admission import AdmissionInterceptor, AdmissionLimits
from hyoka.rpc.auth import BearerTokenInterceptor
from hyoka.rpc.decoding import RequestDecodingInterceptor
from hyoka.rpc.tls import ServerTLS

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` now, for a server started in another process (`--port`); a
    server in this process binds port 0 instead and reads RunningServer.port."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 picks a free port; RunningServer.port says which
    auth_token: str | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_connection_age_ms: int = 5 * 60 * 1000
    #: gRPC's own cap on calls in progress (health included), refused RESOURCE_EXHAUSTED without
    #: retry information; None: none. `admission` is the finer, per-service limit.
    max_concurrent_rpcs: int | None = None
    #: Per-service admission control (hyoka.rpc.admission); None: every call runs at once.
    admission: AdmissionLimits | None = None
    grace_seconds: float = 5.0
    #: TLS on the service port (None: plaintext); with a client CA, clients need certificates.
    tls: ServerTLS | None = None
    #: A second, plaintext port serving only grpc.health.v1.Health, for probes that cannot present
    #: a client certificate or speak TLS (Kubernetes' gRPC probe); None: no such port, 0: any free one.
    health_port: int | None = None

    @property
    def address(self) -> str:
        return self._address(self.port)

    def _address(self, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{port}"


@dataclass(frozen=True)
class ServiceRegistration:
    """One servicer to mount: its full proto name (e.g. "hyoka.v1.MetricsService") and the
    generated `add_XServicer_to_server` function."""

    name: str
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    servicer: object


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    services: tuple[str, ...] = field(default=())
    #: The plaintext health-only server and its port, when ServerConfig.health_port was set.
    health_server: grpc.aio.Server | None = None
    health_port: int | None = None
    #: The admission controller, when ServerConfig.admission was set (its `services` hold stats).
    admission: AdmissionInterceptor | None = None

    async def stop(self, grace: float | None = None) -> None:
        for name in ("", *self.services):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace)
        if self.health_server is not None:
            await self.health_server.stop(0)


def _grpc_server(config: ServerConfig, interceptors: list[grpc.aio.ServerInterceptor]) -> grpc.aio.Server:
    return grpc.aio.server(
        interceptors=interceptors,
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            ("grpc.max_connection_age_ms", config.max_connection_age_ms),
            ("grpc.max_connection_age_grace_ms", 30_000),
            ("grpc.so_reuseport", 0),
        ],
    )


async def _start_health_server(
    config: ServerConfig, servicer: health.aio.HealthServicer
) -> tuple[grpc.aio.Server, int]:
    assert config.health_port is not None
    server = _grpc_server(config, [RequestDecodingInterceptor()])
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port(config._address(config.health_port))
    if port == 0:
        raise OSError(f"could not bind the health port {config._address(config.health_port)}")
    await server.start()
    return server, port


async def start_server(config: ServerConfig, services: Sequence[ServiceRegistration]) -> RunningServer:
    # Auth first: a denied call never reaches the servicer, and its handler already has the safe
    # deserialiser of the decoding interceptor (an undecodable, unauthenticated request is refused
    # as UNAUTHENTICATED, not UNKNOWN).
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if config.auth_token:
        interceptors.append(BearerTokenInterceptor(config.auth_token))
    interceptors.append(RequestDecodingInterceptor())
    # Admission last (innermost): it sees the decoded request (for its cost) of authenticated calls only.
    admission = AdmissionInterceptor(config.admission) if config.admission is not None else None
    if admission is not None:
        interceptors.append(admission)
    credentials = config.tls.credentials() if config.tls is not None else None  # bad files fail here
    server = _grpc_server(config, interceptors)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in services:
        service.add_to_server(service.servicer, server)
    names = tuple(s.name for s in services)
    reflection.enable_server_reflection(
        (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    if credentials is not None:
        port = server.add_secure_port(config.address, credentials)
    else:
        port = server.add_insecure_port(config.address)
    if port == 0:
        raise OSError(f"could not bind {config.address}")
    health_server, health_port = None, None
    if config.health_port is not None:
        health_server, health_port = await _start_health_server(config, health_servicer)
    await server.start()
    for name in ("", *names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    tls = "off" if config.tls is None else ("mutual (client certificates required)" if config.tls.mutual else "on")
    limits = config.admission
    log.info(
        "serving %s on %s:%d (auth %s, tls %s, %s%s)",
        ", ".join(names),
        config.host,
        port,
        "on" if config.auth_token else "off",
        tls,
        "no admission limit"
        if limits is None
        else f"per service at most {limits.max_concurrent} calls running and {limits.max_queued} queued",
        f", plaintext health on port {health_port}" if health_port is not None else "",
    )
    return RunningServer(
        server=server,
        port=port,
        health=health_servicer,
        services=names,
        health_server=health_server,
        health_port=health_port,
        admission=admission,
    )


async def serve_forever(
    config: ServerConfig,
    services: Sequence[ServiceRegistration],
    on_started: Callable[[RunningServer], None] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM, then report NOT_SERVING and drain for `grace_seconds`."""
    running = await start_server(config, services)
    if on_started is not None:
        on_started(running)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down (grace %.1fs)", config.grace_seconds)
    await running.stop(config.grace_seconds)

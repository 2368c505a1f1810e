"""Bootstrap for hyoka's grpc.aio servers: health, reflection, auth, message limits and
connection ageing (so that scale-out behind a Kubernetes Service rebalances), graceful stop."""

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

from hyoka.rpc.auth import BearerTokenInterceptor

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
    max_concurrent_rpcs: int | None = None
    grace_seconds: float = 5.0

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


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

    async def stop(self, grace: float | None = None) -> None:
        for name in ("", *self.services):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace)


async def start_server(config: ServerConfig, services: Sequence[ServiceRegistration]) -> RunningServer:
    interceptors = [BearerTokenInterceptor(config.auth_token)] if config.auth_token else []
    server = grpc.aio.server(
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
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in services:
        service.add_to_server(service.servicer, server)
    names = tuple(s.name for s in services)
    reflection.enable_server_reflection(
        (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(config.address)
    if port == 0:
        raise OSError(f"could not bind {config.address}")
    await server.start()
    for name in ("", *names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("serving %s on %s:%d (auth %s)", ", ".join(names), config.host, port, "on" if config.auth_token else "off")
    return RunningServer(server=server, port=port, health=health_servicer, services=names)


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

"""Bootstrap of the metrics gRPC server (health, reflection, optional bearer token, optional TLS
or mutual TLS, message-size limits, connection ageing from hyoka.rpc; batch limits and the worker
pool from here)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hyoka.metrics.service import MetricsScorer, ServiceLimits
from hyoka.metrics.servicer import MetricsServicer
from hyoka.metrics.wire import SERVICE_NAME, add_metrics_servicer
from hyoka.rpc.admission import AdmissionLimits
from hyoka.rpc.server import (
    DEFAULT_MAX_MESSAGE_BYTES,
    RunningServer,
    ServerConfig,
    ServiceRegistration,
    serve_forever,
    start_server,
)
from hyoka.rpc.tls import ServerTLS

#: Environment variables holding the bearer token, first set wins (deploy/ and compose.yaml set the shared one).
TOKEN_ENVS = ("HYOKA_METRICS_AUTH_TOKEN", "HYOKA_AUTH_TOKEN")


@dataclass(frozen=True)
class MetricsServerConfig:
    host: str = "127.0.0.1"
    port: int = 0
    #: Bearer token every call but health must present; None: no auth (the CLI reads TOKEN_ENVS).
    auth_token: str | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_batch_items: int = 10_000
    max_stream_items: int = 1_000_000
    max_text_chars: int = 200_000
    chunk_items: int = 1000
    workers: int = ServiceLimits.workers
    grace_seconds: float = 5.0
    #: TLS (mutual with a client CA); None: plaintext. The CLI reads --tls-* / HYOKA_TLS_*.
    tls: ServerTLS | None = None
    #: A plaintext port serving only health, for probes (see hyoka.rpc.tls); None: none.
    health_port: int | None = None
    #: Calls handled at once and calls that may wait (hyoka.rpc.admission); None: no limit.
    admission: AdmissionLimits | None = None

    def server_config(self) -> ServerConfig:
        return ServerConfig(
            host=self.host,
            port=self.port,
            auth_token=self.auth_token,
            max_message_bytes=self.max_message_bytes,
            grace_seconds=self.grace_seconds,
            tls=self.tls,
            health_port=self.health_port,
            admission=self.admission,
        )

    def limits(self) -> ServiceLimits:
        return ServiceLimits(
            max_batch_items=self.max_batch_items,
            max_stream_items=self.max_stream_items,
            max_text_chars=self.max_text_chars,
            chunk_items=self.chunk_items,
            workers=self.workers,
        )


@dataclass
class MetricsServer:
    running: RunningServer
    scorer: MetricsScorer

    @property
    def port(self) -> int:
        return self.running.port

    async def stop(self, grace: float | None = None) -> None:
        await self.running.stop(grace)
        self.scorer.close()


def _registration(scorer: MetricsScorer) -> ServiceRegistration:
    return ServiceRegistration(name=SERVICE_NAME, add_to_server=add_metrics_servicer, servicer=MetricsServicer(scorer))


async def start_metrics_server(config: MetricsServerConfig) -> MetricsServer:
    """Start a metrics server (port 0 picks a free one) and return it running."""
    scorer = MetricsScorer(config.limits())
    try:
        running = await start_server(config.server_config(), [_registration(scorer)])
    except BaseException:
        scorer.close()
        raise
    return MetricsServer(running, scorer)


def serve(config: MetricsServerConfig) -> None:
    """Serve until SIGINT/SIGTERM."""
    scorer = MetricsScorer(config.limits())

    def started(running: RunningServer) -> None:
        health = f" (plaintext health on port {running.health_port})" if running.health_port is not None else ""
        print(f"hyoka-metrics serving on {config.host}:{running.port}{health}", flush=True)

    try:
        asyncio.run(serve_forever(config.server_config(), [_registration(scorer)], on_started=started))
    finally:
        scorer.close()

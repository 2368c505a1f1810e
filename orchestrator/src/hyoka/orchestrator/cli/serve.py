"""`hyoka serve`: the orchestrator's gRPC API (AnalysisService) with health and reflection."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# hyoka.rpc.tls.SERVER_ENV, spelled out so that `hyoka --help` does not import grpc.
_TLS_ENV = {
    "cert": "HYOKA_TLS_CERT",
    "key": "HYOKA_TLS_KEY",
    "client_ca": "HYOKA_TLS_CLIENT_CA",
    "health_port": "HYOKA_HEALTH_PORT",
}


def serve(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0 picks a free one).")] = 50053,
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 in containers).")] = "127.0.0.1",
    auth_token: Annotated[
        str | None,
        typer.Option(envvar="HYOKA_AUTH_TOKEN", help="Require 'authorization: Bearer TOKEN' (health stays open)."),
    ] = None,
    max_connection_age_ms: Annotated[
        int, typer.Option(min=1000, help="Connection age before a client reconnects.")
    ] = 300_000,
    tls_cert: Annotated[
        Path | None, typer.Option(envvar=_TLS_ENV["cert"], help="PEM certificate chain: serve TLS only.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(envvar=_TLS_ENV["key"], help="PEM private key of --tls-cert.")] = None,
    tls_client_ca: Annotated[
        Path | None,
        typer.Option(envvar=_TLS_ENV["client_ca"], help="PEM CA bundle: require client certificates it signed (mTLS)."),
    ] = None,
    health_port: Annotated[
        int | None,
        typer.Option(
            envvar=_TLS_ENV["health_port"], min=0, max=65535, help="Also serve health alone, in plaintext, here."
        ),
    ] = None,
) -> None:
    """Serve hyoka.v1.AnalysisService over gRPC until SIGINT/SIGTERM. With --tls-cert/--tls-key
    it serves TLS only; with --tls-client-ca too, mutual TLS (clients need a certificate)."""
    import asyncio
    import logging

    import matplotlib

    matplotlib.use("Agg")
    from hyoka.orchestrator.analysis.servicer import registration
    from hyoka.rpc import RunningServer, ServerConfig, ServerTLS, TLSConfigError, serve_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        tls = ServerTLS.from_paths(tls_cert, tls_key, tls_client_ca)
        if tls is not None:
            tls.check()  # read the files now: a bad path is a usage error, not a traceback
    except TLSConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    config = ServerConfig(
        host=host,
        port=port,
        auth_token=auth_token,
        max_connection_age_ms=max_connection_age_ms,
        tls=tls,
        health_port=health_port,
    )

    def started(running: RunningServer) -> None:
        # One parseable line on stdout: scripts and tests read the port from it (--port 0).
        health = f"; plaintext health on port {running.health_port}" if running.health_port is not None else ""
        typer.echo(f"hyoka serve: listening on {host}:{running.port} ({', '.join(running.services)}){health}")

    asyncio.run(serve_forever(config, [registration()], on_started=started))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)

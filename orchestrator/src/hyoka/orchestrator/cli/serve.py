"""`hyoka serve`: the orchestrator's gRPC API (AnalysisService) with health and reflection."""

from __future__ import annotations

from typing import Annotated

import typer


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
) -> None:
    """Serve hyoka.v1.AnalysisService over gRPC until SIGINT/SIGTERM."""
    import asyncio
    import logging

    import matplotlib

    matplotlib.use("Agg")
    from hyoka.orchestrator.analysis.servicer import registration
    from hyoka.rpc import RunningServer, ServerConfig, serve_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig(host=host, port=port, auth_token=auth_token, max_connection_age_ms=max_connection_age_ms)

    def started(running: RunningServer) -> None:
        # One parseable line on stdout: scripts and tests read the port from it (--port 0).
        typer.echo(f"hyoka serve: listening on {host}:{running.port} ({', '.join(running.services)})")

    asyncio.run(serve_forever(config, [registration()], on_started=started))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)

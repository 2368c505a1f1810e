"""`hyoka serve`: the orchestrator's gRPC API (AnalysisService and EvaluationService) with health
and reflection."""

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


def default_state_dir() -> Path:
    """$XDG_STATE_HOME/hyoka, by default ~/.local/state/hyoka (a relative $XDG_STATE_HOME is ignored)."""
    import os

    xdg = os.environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "hyoka"


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
    max_concurrent_calls: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="HYOKA_MAX_CONCURRENT_CALLS",
            help="Calls handled at once by each service (AnalysisService, EvaluationService). Analyze is "
            "CPU-bound (tens of ms on threads): more at once only share the CPUs and hold more requests; "
            "8 also leaves room for open WatchRun streams, which hold a place while open. See hyoka.rpc.admission.",
        ),
    ] = 8,
    max_queued_calls: Annotated[
        int,
        typer.Option(
            min=0,
            envvar="HYOKA_MAX_QUEUED_CALLS",
            help="Calls per service that may wait, first come first served (each holds its request: this bounds "
            "the memory); more get RESOURCE_EXHAUSTED with a retry delay at once. A queued call whose deadline "
            "passes ends DEADLINE_EXCEEDED without running.",
        ),
    ] = 64,
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
    state_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="HYOKA_STATE_DIR",
            help="Where runs write: the default run store (runs.db) and each run's exports in runs/RUN_ID/ "
            "(default: ~/.local/state/hyoka).",
            rich_help_panel="Evaluation runs",
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            envvar="HYOKA_STORE",
            help="Run store: sqlite:///PATH or postgresql://USER[:PASSWORD]@HOST[:PORT]/DB "
            "(default: STATE_DIR/runs.db).",
            rich_help_panel="Evaluation runs",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Benchmark data folder (default: $HYOKA_DATA_DIR or the hyoka cache).",
            rich_help_panel="Evaluation runs",
        ),
    ] = None,
    metrics_url: Annotated[
        str | None,
        typer.Option(
            envvar="HYOKA_METRICS_URL",
            help="host:port of the metrics service runs use (default: each run starts one locally).",
            rich_help_panel="Evaluation runs",
        ),
    ] = None,
    sandbox_url: Annotated[
        str | None,
        typer.Option(
            envvar="HYOKA_SANDBOX_URL",
            help="host:port of the sandbox service runs use (default: each run starts one locally).",
            rich_help_panel="Evaluation runs",
        ),
    ] = None,
    service_token: Annotated[
        str | None,
        typer.Option(
            envvar="HYOKA_SERVICE_TOKEN",
            help="Bearer token for --metrics-url and --sandbox-url (default: the --auth-token).",
            rich_help_panel="Evaluation runs",
        ),
    ] = None,
    max_active_runs: Annotated[
        int,
        typer.Option(min=1, help="Runs evaluated at once; later ones wait queued.", rich_help_panel="Evaluation runs"),
    ] = 2,
) -> None:
    """Serve hyoka.v1.AnalysisService and hyoka.v1.EvaluationService over gRPC until SIGINT/SIGTERM.
    With --tls-cert/--tls-key it serves TLS only; with --tls-client-ca too, mutual TLS (clients
    need a certificate). Evaluation runs are kept in the run store (--store) and their exports in
    --state-dir; runs that were unfinished when the server stopped resume when it starts again."""
    import asyncio
    import logging

    import matplotlib

    matplotlib.use("Agg")
    from hyoka.orchestrator.analysis.servicer import registration
    from hyoka.orchestrator.evaluation import RunManager, RunSettings, open_run_store
    from hyoka.orchestrator.evaluation import servicer as evaluation
    from hyoka.orchestrator.runner.store import StoreError
    from hyoka.orchestrator.tasks.datadir import resolve_data_dir
    from hyoka.rpc import ClientTLS, RunningServer, ServerConfig, ServerTLS, TLSConfigError, serve_forever
    from hyoka.rpc.admission import AdmissionLimits

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        tls = ServerTLS.from_paths(tls_cert, tls_key, tls_client_ca)
        if tls is not None:
            tls.check()  # read the files now: a bad path is a usage error, not a traceback
        # Runs reach --metrics-url/--sandbox-url with TLS set by HYOKA_TLS_CA, HYOKA_TLS_CLIENT_CERT,
        # HYOKA_TLS_CLIENT_KEY and HYOKA_TLS_SERVER_NAME (as `hyoka eval` does).
        service_tls = ClientTLS.from_env()
        if service_tls is not None:
            service_tls.check()
    except TLSConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    config = ServerConfig(
        host=host,
        port=port,
        auth_token=auth_token,
        max_connection_age_ms=max_connection_age_ms,
        admission=AdmissionLimits(max_concurrent_calls, max_queued_calls),
        tls=tls,
        health_port=health_port,
    )

    def started(running: RunningServer) -> None:
        # One parseable line on stdout: scripts and tests read the port from it (--port 0).
        health = f"; plaintext health on port {running.health_port}" if running.health_port is not None else ""
        typer.echo(f"hyoka serve: listening on {host}:{running.port} ({', '.join(running.services)}){health}")

    settings = RunSettings(
        state_dir=(state_dir or default_state_dir()).expanduser().absolute(),
        data_dir=resolve_data_dir(data_dir),
        store_url=store or None,
        metrics_url=metrics_url or None,
        sandbox_url=sandbox_url or None,
        auth_token=service_token or auth_token or None,
        tls=service_tls,
        max_active_runs=max_active_runs,
    )
    run_store = None
    try:
        run_store = open_run_store(settings)
    except StoreError as error:
        if state_dir is not None or store:  # asked for: a bad URL or an unreachable database
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None
        # The default state directory is not writable (a read-only container without --state-dir):
        # AnalysisService still serves.
        typer.echo(f"warning: EvaluationService not served: {error} (set --state-dir or --store)", err=True)

    async def main() -> None:
        if run_store is None:
            await serve_forever(config, [registration()], on_started=started)
            return
        manager = RunManager(run_store, settings)
        try:
            await manager.resume_unfinished()
            services = [registration(), evaluation.registration(manager)]
            await serve_forever(config, services, on_started=started)
        finally:
            await manager.close()  # unfinished runs go back to queued, resumed by the next server

    try:
        asyncio.run(main())
    finally:
        if run_store is not None:
            run_store.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)

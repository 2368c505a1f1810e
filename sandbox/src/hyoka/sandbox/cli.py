"""`hyoka-sandbox serve --port PORT`."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

# The service spawns sandboxes with fork+exec only; gRPC's fork handlers are not needed (and log noise).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import typer

from hyoka.rpc.cli_options import HealthPort, ServerTLSCert, ServerTLSClientCA, ServerTLSKey, server_tls_or_exit
from hyoka.sandbox.config import SandboxConfig, default_data_dir
from hyoka.sandbox.runtimes import DEFAULT_RUNTIME, RUNTIMES_ENV

app = typer.Typer(name="hyoka-sandbox", no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def _root() -> None:
    """hyoka's sandbox service: runs model-written Python in single-use, locked-down sandboxes."""


@app.command()
def serve(
    port: int = typer.Option(50052, help="TCP port (0 picks a free one and prints it)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; 0.0.0.0 in a container."),
    workers: int = typer.Option(2, min=1, help="Programs run at once (about one per core)."),
    max_queued_runs: int = typer.Option(2048, min=1, help="Runs that may wait; more get RESOURCE_EXHAUSTED."),
    max_concurrent_calls: int | None = typer.Option(
        None,
        min=1,
        envvar="HYOKA_MAX_CONCURRENT_CALLS",
        help="Calls handled at once (default: --workers, one per worker: a call admitted beyond them only waits "
        "for a worker, holding its request). Large calls (ExecuteBatch, CheckCompletions of several programs) "
        "get half; see hyoka.rpc.admission.",
    ),
    max_queued_calls: int | None = typer.Option(
        None,
        min=0,
        envvar="HYOKA_MAX_QUEUED_CALLS",
        help="Calls that may wait for one of those, first come first served (each holds its request: this bounds "
        "the memory); more get RESOURCE_EXHAUSTED with a retry delay at once. Default: --max-queued-runs, at most "
        "256 (already seconds of work for the workers: a deeper queue mostly ends in DEADLINE_EXCEEDED). A queued "
        "call whose deadline passes ends DEADLINE_EXCEEDED without running.",
    ),
    data_dir: Annotated[
        Path | None, typer.Option(help="Datasets folder (default $HYOKA_DATA_DIR or ../shared/datasets).")
    ] = None,
    auth_token_env: str = typer.Option(
        "HYOKA_SANDBOX_TOKEN",
        help="Environment variable holding the bearer token (unset: no auth); the service re-executes "
        "itself without it, so that /proc/PID/environ does not show it.",
    ),
    auth_token_file: Annotated[
        Path | None,
        typer.Option(
            envvar="HYOKA_SANDBOX_TOKEN_FILE", help="File holding the bearer token (wins over --auth-token-env)."
        ),
    ] = None,
    cgroups: str = typer.Option("auto", help="Per-run cgroups: auto, off, or required."),
    mode: str = typer.Option(
        "zygote",
        help="zygote: a started interpreter per worker forks each run into fresh namespaces; "
        "single-use: one bubblewrap sandbox per run.",
    ),
    warm_pool: bool = typer.Option(True, help="single-use mode: keep pre-started sandboxes waiting."),
    insecure: bool = typer.Option(False, "--insecure", help="NO ISOLATION. Local development only."),
    bwrap: str = typer.Option("", help="bubblewrap executable (default: bwrap on PATH)."),
    runtimes_dir: Annotated[
        Path | None,
        typer.Option(help=f"Where the built runtimes are (default ${RUNTIMES_ENV}, else <venv>/hyoka-runtimes)."),
    ] = None,
    default_runtime: str = typer.Option(
        DEFAULT_RUNTIME, help="The runtime of requests that name none (minimal: the standard library only)."
    ),
    log_level: str = typer.Option("INFO"),
    tls_cert: ServerTLSCert = None,
    tls_key: ServerTLSKey = None,
    tls_client_ca: ServerTLSClientCA = None,
    health_port: HealthPort = None,
) -> None:
    """Serve hyoka.v1.SandboxService over gRPC (health and reflection included). With
    --tls-cert/--tls-key it serves TLS only; with --tls-client-ca too, mutual TLS."""
    from hyoka.rpc.admission import AdmissionLimits
    from hyoka.rpc.server import ServerConfig
    from hyoka.sandbox.auth_token import load_token
    from hyoka.sandbox.runtimes import RuntimeUnavailable
    from hyoka.sandbox.server import IsolationUnavailable
    from hyoka.sandbox.server import serve as run_server

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if cgroups not in ("auto", "off", "required"):
        typer.echo(f"--cgroups: {cgroups!r} is not one of auto, off, required", err=True)
        raise typer.Exit(2)
    if mode not in ("zygote", "single-use"):
        typer.echo(f"--mode: {mode!r} is not one of zygote, single-use", err=True)
        raise typer.Exit(2)
    tls = server_tls_or_exit(tls_cert, tls_key, tls_client_ca)  # a bad path: a usage error, not a traceback
    token = load_token(auth_token_env, auth_token_file)  # the environment keeps no secret, /proc's copy included
    config = SandboxConfig(
        workers=workers,
        max_queued_runs=max_queued_runs,
        data_dir=data_dir or default_data_dir(),
        cgroups=cgroups,
        mode=mode,
        warm_pool=warm_pool,
        insecure=insecure,
    )
    updates: dict[str, object] = {"default_runtime": default_runtime}
    if bwrap:
        updates["bwrap"] = bwrap
    if runtimes_dir is not None:
        updates["runtimes_dir"] = runtimes_dir
    config = config.model_copy(update=updates)
    try:
        queued_calls = min(max_queued_runs, 256) if max_queued_calls is None else max_queued_calls
        admission = AdmissionLimits(max_concurrent_calls or workers, queued_calls)
        server_config = ServerConfig(
            host=host, port=port, auth_token=token, tls=tls, health_port=health_port, admission=admission
        )
        asyncio.run(run_server(server_config, config))
    except (IsolationUnavailable, RuntimeUnavailable) as error:
        typer.echo(f"hyoka-sandbox: {error}", err=True)
        raise typer.Exit(1) from error
    except KeyboardInterrupt:
        sys.exit(0)


@app.command("build-runtime")
def build_runtime(
    lock: Annotated[Path, typer.Argument(help="The runtime's lock, e.g. requirements/sandbox-runtime-bigcode.txt.")],
    into: Annotated[
        Path | None, typer.Option(help=f"Runtimes directory (default ${RUNTIMES_ENV}, else <venv>/hyoka-runtimes).")
    ] = None,
    python: str = typer.Option("", help="The sandbox's interpreter (default: as `serve` picks it)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even when up to date."),
) -> None:
    """Build a sandbox runtime (its package prefix) from its lock; quick when already built."""
    from hyoka.sandbox import runtimes

    argv = ["build", str(lock), *(["--into", str(into)] if into else []), *(["--python", python] if python else [])]
    raise typer.Exit(runtimes.main([*argv, *(["--force"] if force else [])]))


def main() -> None:
    app()

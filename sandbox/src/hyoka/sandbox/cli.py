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
    data_dir: Annotated[
        Path | None, typer.Option(help="Datasets folder (default $HYOKA_DATA_DIR or ../shared/datasets).")
    ] = None,
    auth_token_env: str = typer.Option(
        "HYOKA_SANDBOX_TOKEN", help="Environment variable holding the bearer token (unset: no auth)."
    ),
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
) -> None:
    """Serve hyoka.v1.SandboxService over gRPC (health and reflection included)."""
    from hyoka.rpc.server import ServerConfig
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
    token = os.environ.pop(auth_token_env, None) or None  # popped: the service's environment holds no secret
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
        asyncio.run(run_server(ServerConfig(host=host, port=port, auth_token=token), config))
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

"""`hyoka eval`: evaluate one model on benchmarks, write per-item records, results and scores.csv.

    hyoka eval --model hf-local:smollm2 --tasks niilc,jcommonsenseqa,xwino_en,jhumaneval --limit 20 --out runs/smol
    hyoka eval --model tgi:http://gpu-host:8080 --suite paper --tokenizer /models/my-model --out runs/my-model

Without --metrics-url / --sandbox-url the metrics and sandbox servers are started here as local
subprocesses on free ports and stopped at the end. Bad input (unknown task or backend, unreachable
server, a log-likelihood task on a generation-only backend, missing data files) is one error line
and exit code 2, before any work starts. Rerunning with the same --out resumes an interrupted run:
every item is kept in the run store (default: the SQLite file OUT/hyoka.sqlite; `--store
postgresql://USER@HOST:PORT/DB` for state shared by several machines), which also records the run
itself (its id: `--run-id`, default HOST:OUT). The records, results.json and scores.csv in --out
are exports of the store. Services given by URL are reached with --auth-token and, with --tls-ca
(and --tls-client-cert/--tls-client-key for mutual TLS), over TLS; those started here use neither.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

# hyoka.rpc.tls.CLIENT_ENV, spelled out (not hyoka.rpc.cli_options) so that `hyoka --help` does not import grpc.
_TLS_ENV = {
    "ca": "HYOKA_TLS_CA",
    "cert": "HYOKA_TLS_CLIENT_CERT",
    "key": "HYOKA_TLS_CLIENT_KEY",
    "server_name": "HYOKA_TLS_SERVER_NAME",
}
_TLS_PANEL = "Transport security (--metrics-url, --sandbox-url)"


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)


def eval_command(
    out: Annotated[Path, typer.Option(help="run directory (records, results.json, scores.csv); reused to resume")],
    model: Annotated[
        str | None,
        typer.Option(
            help="BACKEND[:TARGET][,KEY=VALUE...], e.g. hf-local:smollm2 or tgi:http://host:8080; with --launch "
            "only BACKEND[,KEY=VALUE...] (default: the preset's)"
        ),
    ] = None,
    tasks: Annotated[
        str | None, typer.Option(help="comma-separated task names, e.g. niilc,jcommonsenseqa,xwino_en")
    ] = None,
    suite: Annotated[
        str | None, typer.Option(help="a named set of tasks: `paper` = the 19 benchmarks with the paper's settings")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="evaluate only the first N items of each task")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="benchmark data folder (default: $HYOKA_DATA_DIR or the hyoka cache)")
    ] = None,
    metrics_url: Annotated[
        str | None, typer.Option(help="host:port of a running metrics service (default: start one locally)")
    ] = None,
    sandbox_url: Annotated[
        str | None, typer.Option(help="host:port of a running sandbox service (default: start one locally)")
    ] = None,
    auth_token: Annotated[
        str | None, typer.Option(envvar="HYOKA_AUTH_TOKEN", help="bearer token for the given service URLs")
    ] = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option(
            envvar=_TLS_ENV["ca"],
            help="PEM CA bundle the services' certificates must chain to: connect to the given URLs with TLS",
            rich_help_panel=_TLS_PANEL,
        ),
    ] = None,
    tls_client_cert: Annotated[
        Path | None,
        typer.Option(
            envvar=_TLS_ENV["cert"],
            help="PEM client certificate, for services that require one (mTLS)",
            rich_help_panel=_TLS_PANEL,
        ),
    ] = None,
    tls_client_key: Annotated[
        Path | None,
        typer.Option(envvar=_TLS_ENV["key"], help="PEM private key of --tls-client-cert", rich_help_panel=_TLS_PANEL),
    ] = None,
    tls_server_name: Annotated[
        str | None,
        typer.Option(
            envvar=_TLS_ENV["server_name"],
            help="check the services' certificates against this name instead of the URL's host",
            rich_help_panel=_TLS_PANEL,
        ),
    ] = None,
    model_id: Annotated[
        str | None, typer.Option(help="model name in scores.csv (default: the model the backend reports)")
    ] = None,
    tokenizer: Annotated[
        str | None,
        typer.Option(
            help="the model's tokenizer (local folder, .gguf or `smollm2`) for tasks that count tokens "
            "(mgsm_ja, xlsum_ja) when the backend is a remote server"
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            help="run store keeping every item's output and score, so a killed run resumes and a changed metric "
            "re-scores without asking the model again: sqlite:///PATH (sqlite:////abs/path), a file path, or "
            "postgresql://USER[:PASSWORD]@HOST[:PORT]/DB to share state between machines "
            "(default: OUT/hyoka.sqlite)"
        ),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option(help="the run's id in the run store's runs table (default: HOST:OUT)")
    ] = None,
    launch: Annotated[
        str | None,
        typer.Option(
            help="start the model server in a container for this run and remove it after: a preset "
            "(llamacpp-cpu, tgi, vllm) or an image of one of their servers; needs Docker or podman's Docker API "
            "(DOCKER_HOST)",
            rich_help_panel="Model server container",
        ),
    ] = None,
    launch_model: Annotated[
        str | None,
        typer.Option(
            help="the model the launched server loads: a local .gguf file or model folder (mounted read-only) or, "
            "for tgi/vllm, a hub id (default: SmolLM2 for llamacpp-cpu, HuggingFaceTB/SmolLM2-135M otherwise)",
            rich_help_panel="Model server container",
        ),
    ] = None,
    launch_timeout: Annotated[
        float | None,
        typer.Option(
            help="seconds to wait for the server's health (default: 120 for llamacpp-cpu, 600 for tgi/vllm)",
            rich_help_panel="Model server container",
        ),
    ] = None,
    launch_pull: Annotated[
        str,
        typer.Option(
            help="pull the image: missing (only when absent), always, never", rich_help_panel="Model server container"
        ),
    ] = "missing",
    launch_gpus: Annotated[
        bool | None,
        typer.Option(
            "--launch-gpus/--launch-no-gpus",
            help="request every GPU for the container (default: yes for tgi/vllm, no for llamacpp-cpu)",
            rich_help_panel="Model server container",
        ),
    ] = None,
) -> None:
    """Evaluate a model on benchmarks of the paper (per-item records, results table, scores.csv)."""
    # Heavy imports here, so `hyoka --help` stays fast.
    from rich.console import Console

    from hyoka.orchestrator.cli._eval_view import RichProgress, results_table
    from hyoka.orchestrator.cli._launch import LaunchOptions, model_for_run
    from hyoka.orchestrator.runner.evaluation import EvalConfig, EvalInputError, EvalRunError, evaluate
    from hyoka.orchestrator.tasks.datadir import resolve_data_dir
    from hyoka.rpc.tls import ClientTLS, TLSConfigError

    err = Console(stderr=True)
    try:
        task_names = select_tasks(tasks, suite)
        tls = ClientTLS.from_paths(tls_ca, tls_client_cert, tls_client_key, tls_server_name)
        if tls is not None:
            tls.check()  # read the files now: a bad path is a usage error, not a traceback
    except (ValueError, TLSConfigError) as e:
        err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    launch_options = LaunchOptions(launch, launch_model, launch_timeout, launch_pull, launch_gpus, docker_host=None)
    console = Console()
    with model_for_run(model, launch_options, err) as (model_spec, model_key):
        config = EvalConfig(
            model=model_spec,
            tasks=task_names,
            out=out,
            data_dir=resolve_data_dir(data_dir),
            limit=limit,
            metrics_url=metrics_url,
            sandbox_url=sandbox_url,
            auth_token=auth_token,
            tls=tls,
            model_id=model_id,
            tokenizer=tokenizer,
            store=store,
            run_id=run_id or default_run_id(out),
            model_key=model_key,
        )
        try:
            with RichProgress(console) as progress:
                outcome = asyncio.run(evaluate(config, progress=progress))
        except EvalInputError as e:
            err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except EvalRunError as e:
            err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
    console.print(results_table(outcome.model_id, outcome.results))
    console.print(
        f"scores: {outcome.scores_csv}  results: {outcome.results_json}  records: {out / 'records'}  "
        f"store: {outcome.store}",
        soft_wrap=True,
    )


def default_run_id(out: Path) -> str:
    """HOST:OUT (the absolute run directory): the same run directory is the same run."""
    import socket

    return f"{socket.gethostname()}:{out.expanduser().absolute()}"


def select_tasks(tasks: str | None, suite: str | None) -> tuple[str, ...]:
    """The task names of `--tasks` and/or `--suite`, in order, without repeats."""
    from hyoka.orchestrator.tasks import suite_tasks

    names = [t.strip() for t in (tasks or "").split(",") if t.strip()]
    if suite is not None:
        names = [*suite_tasks(suite), *names]
    if not names:
        raise ValueError("give --tasks or --suite (e.g. --suite paper)")
    return tuple(dict.fromkeys(names))

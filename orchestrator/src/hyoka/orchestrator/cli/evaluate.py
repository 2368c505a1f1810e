"""`hyoka eval`: evaluate one model on benchmarks, write per-item records, results and scores.csv.

    hyoka eval --model hf-local:smollm2 --tasks niilc,jcommonsenseqa,xwino_en,jhumaneval --limit 20 --out runs/smol
    hyoka eval --model tgi:http://gpu-host:8080 --suite paper --tokenizer /models/my-model --out runs/my-model

Without --metrics-url / --sandbox-url the metrics and sandbox servers are started here as local
subprocesses on free ports and stopped at the end. Bad input (unknown task or backend, unreachable
server, a log-likelihood task on a generation-only backend, missing data files) is one error line
and exit code 2, before any work starts. Rerunning with the same --out resumes an interrupted run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)


def eval_command(
    model: Annotated[
        str, typer.Option(help="BACKEND[:TARGET][,KEY=VALUE...], e.g. hf-local:smollm2 or tgi:http://host:8080")
    ],
    out: Annotated[Path, typer.Option(help="run directory (records, results.json, scores.csv); reused to resume")],
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
) -> None:
    """Evaluate a model on benchmarks of the paper (per-item records, results table, scores.csv)."""
    # Heavy imports here, so `hyoka --help` stays fast.
    from rich.console import Console

    from hyoka.orchestrator.cli._eval_view import RichProgress, results_table
    from hyoka.orchestrator.runner.evaluation import EvalConfig, EvalInputError, EvalRunError, evaluate
    from hyoka.orchestrator.tasks.datadir import resolve_data_dir

    err = Console(stderr=True)
    try:
        task_names = select_tasks(tasks, suite)
    except ValueError as e:
        err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    config = EvalConfig(
        model=model,
        tasks=task_names,
        out=out,
        data_dir=resolve_data_dir(data_dir),
        limit=limit,
        metrics_url=metrics_url,
        sandbox_url=sandbox_url,
        auth_token=auth_token,
        model_id=model_id,
        tokenizer=tokenizer,
    )
    console = Console()
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
        f"scores: {outcome.scores_csv}  results: {outcome.results_json}  records: {out / 'records'}", soft_wrap=True
    )


def select_tasks(tasks: str | None, suite: str | None) -> tuple[str, ...]:
    """The task names of `--tasks` and/or `--suite`, in order, without repeats."""
    from hyoka.orchestrator.tasks import suite_tasks

    names = [t.strip() for t in (tasks or "").split(",") if t.strip()]
    if suite is not None:
        names = [*suite_tasks(suite), *names]
    if not names:
        raise ValueError("give --tasks or --suite (e.g. --suite paper)")
    return tuple(dict.fromkeys(names))

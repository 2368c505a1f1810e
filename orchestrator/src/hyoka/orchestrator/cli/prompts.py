"""`hyoka prompts`: write the requests a task sends — prompt, stop sequences, token limits,
log-likelihood continuations, gold — as JSON lines, without a model.

    hyoka prompts --task mmlu --limit 5
    hyoka prompts --task mgsm_ja --limit 3 --tokenizer smollm2 --out mgsm.jsonl

Tasks that count the model's tokens (mgsm_ja, xlsum_ja) need `--tokenizer`. The output is what
`hyoka eval` would send for the same items, to diff against another harness byte for byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("prompts")(prompts_command)


def prompts_command(
    task: Annotated[str, typer.Option(help="task name (see `hyoka prompts --list`)")] = "",
    limit: Annotated[int | None, typer.Option(help="render only the first N items in harness order")] = None,
    out: Annotated[Path | None, typer.Option(help="JSONL file to write (default: standard output)")] = None,
    tokenizer: Annotated[
        str | None, typer.Option(help="the model's tokenizer for tasks that count tokens (`smollm2` or a local folder)")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="benchmark data folder (default: $HYOKA_DATA_DIR or the hyoka cache)")
    ] = None,
    list_tasks: Annotated[bool, typer.Option("--list", help="list the tasks and suites, then exit")] = False,
) -> None:
    """Render a task's requests as JSON lines (prompt, stop, max tokens, continuations, gold)."""
    import json
    import sys

    from rich.console import Console

    from hyoka.orchestrator.backends.base import BackendError
    from hyoka.orchestrator.tasks import (
        SUITES,
        BuildContext,
        TaskDataError,
        TokenizerRequiredError,
        UnknownTaskError,
        available_tasks,
        get_task,
    )
    from hyoka.orchestrator.tasks.datadir import resolve_data_dir

    err = Console(stderr=True)

    def fail(message: str) -> typer.Exit:
        err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
        return typer.Exit(2)

    if list_tasks:
        for name in available_tasks():
            spec = get_task(name).spec
            typer.echo(f"{name}\t{spec.harness}\t{spec.description}")
        for suite, names in SUITES.items():
            typer.echo(f"suite {suite}\t{','.join(names)}")
        return
    if not task:
        raise fail("give --task NAME (or --list)")
    if limit is not None and limit < 1:
        raise fail(f"--limit must be >= 1, got {limit}")
    try:
        chosen = get_task(task)
        context = BuildContext()
        if tokenizer is not None:
            from hyoka.orchestrator.backends.tokenizers import load_tokenizer

            context = BuildContext(load_tokenizer(tokenizer))
        items = chosen.items(chosen.load(resolve_data_dir(data_dir)), limit, context)
    except (UnknownTaskError, TaskDataError, TokenizerRequiredError, BackendError) as e:
        raise fail(str(e)) from None
    lines = (json.dumps(item.request_record(chosen.name), ensure_ascii=False) + "\n" for item in items)
    if out is None:
        sys.stdout.writelines(lines)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.writelines(lines)
    tmp.replace(out)
    err.print(f"wrote {len(items)} requests of {chosen.name} to {out}", highlight=False)

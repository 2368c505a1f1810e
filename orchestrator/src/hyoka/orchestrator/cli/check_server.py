"""`hyoka check-server`: run the conformance probe against a model server and print its checks.

    hyoka check-server tgi:http://gpu-host:8080
    hyoka check-server openai-completions:http://127.0.0.1:8000 --json

The checks (`hyoka.orchestrator.backends.conformance`): greedy decoding is deterministic, stop
sequences are honoured, prompt log-probabilities are aligned with the generation path (within
0.05 nats by default), the first prompt token has none, every later one has one, and the prompt's token count
matches the server's. `hyoka eval` runs the same probe before it sends any item to an HTTP server.
Exit code 0 when every check passes (or is skipped), 1 when one fails, 2 on bad input (unknown
backend, unreachable server).
"""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("check-server")(check_server_command)


def check_server_command(
    model: Annotated[str, typer.Argument(help="BACKEND[:TARGET][,KEY=VALUE...], e.g. tgi:http://host:8080")],
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON instead of a table")] = False,
    tolerance: Annotated[
        float, typer.Option(help="absolute tolerance on log-probabilities (generation vs prompt scoring)")
    ] = 0.05,
) -> None:
    """Check that a model server's log-probabilities, greedy decoding and stop sequences are sound."""
    import asyncio
    import json

    from rich.console import Console
    from rich.table import Table

    from hyoka.orchestrator.backends.base import BackendError
    from hyoka.orchestrator.backends.conformance import ConformanceReport, probe
    from hyoka.orchestrator.backends.registry import create_backend, parse_model_spec

    err = Console(stderr=True)

    async def run() -> ConformanceReport:
        name, options = parse_model_spec(model)
        backend = create_backend(name, **options)
        try:
            return await probe(backend, name=model, tolerance=tolerance)
        finally:
            await backend.aclose()

    try:
        report = asyncio.run(run())
    except BackendError as e:
        err.print(f"error: backend {model}: {e}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        table = Table(title=f"conformance of {model}")
        table.add_column("check")
        table.add_column("result")
        table.add_column("sent")
        table.add_column("returned / message", overflow="fold")
        for c in report.checks:
            result = "skipped" if c.passed is None else "pass" if c.passed else "FAIL"
            detail = c.message if c.passed is not True else json.dumps(c.returned, ensure_ascii=False)[:200]
            sent = json.dumps(c.sent, ensure_ascii=False)[:120] if c.sent is not None else ""
            table.add_row(c.name, result, sent, detail)
        Console(width=200).print(table)
    message = report.error()
    if message is not None:
        err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)

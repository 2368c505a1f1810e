"""`hyoka-metrics`: serve the metrics over gRPC, or score files from the command line."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from hyoka.metrics.base import Item, MetricError
from hyoka.metrics.files import FileError, Format, read_predictions, read_references
from hyoka.metrics.registry import get_metric
from hyoka.metrics.server import TOKEN_ENVS, MetricsServerConfig, serve
from hyoka.metrics.service import ServiceLimits
from hyoka.rpc.admission import AdmissionLimits
from hyoka.rpc.cli_options import HealthPort, ServerTLSCert, ServerTLSClientCA, ServerTLSKey, server_tls_or_exit

#: --max-concurrent-calls: two calls per CPU.
DEFAULT_METRICS_CONCURRENT_CALLS = 2 * (os.cpu_count() or 1)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)

_ITEM_FIELD = re.compile(r"^items\[(\d+)\](?:\.(prediction|references|pass_counts)(?:\[\d+\]|\.\w+)?)?$")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command("serve")
def serve_command(
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 50051,
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 in a container.")] = "127.0.0.1",
    workers: Annotated[
        int,
        typer.Option(help="Scoring threads shared by all calls (the metrics hold the GIL: more add no throughput)."),
    ] = ServiceLimits.workers,
    max_batch_items: Annotated[int, typer.Option(help="Items per Score request.")] = 10_000,
    max_stream_items: Annotated[int, typer.Option(help="Items per ScoreStream call.")] = 1_000_000,
    max_message_mib: Annotated[int, typer.Option(help="Largest request or response, MiB.")] = 64,
    max_concurrent_calls: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="HYOKA_MAX_CONCURRENT_CALLS",
            help="Calls handled at once (default: 2 x CPUs). The scoring threads take one chunk per call in "
            "turn, so a few more calls than threads keep them busy without holding many requests; large "
            "calls (Score of over 100 items, ScoreStream) get half. See hyoka.rpc.admission.",
        ),
    ] = DEFAULT_METRICS_CONCURRENT_CALLS,
    max_queued_calls: Annotated[
        int,
        typer.Option(
            min=0,
            envvar="HYOKA_MAX_QUEUED_CALLS",
            help="Calls that may wait, first come first served (each holds its request: this bounds the "
            "memory); more get RESOURCE_EXHAUSTED with a retry delay at once. A queued call whose deadline "
            "passes ends DEADLINE_EXCEEDED without running.",
        ),
    ] = 256,
    tls_cert: ServerTLSCert = None,
    tls_key: ServerTLSKey = None,
    tls_client_ca: ServerTLSClientCA = None,
    health_port: HealthPort = None,
) -> None:
    """Serve hyoka.v1.MetricsService (with health and reflection). A bearer token is required
    on every call but health when HYOKA_METRICS_AUTH_TOKEN (or else HYOKA_AUTH_TOKEN) is set.
    With --tls-cert/--tls-key it serves TLS only; with --tls-client-ca too, mutual TLS."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tls = server_tls_or_exit(tls_cert, tls_key, tls_client_ca)  # a bad path: a usage error, not a traceback
    config = MetricsServerConfig(
        host=host,
        port=port,
        auth_token=next((os.environ[v] for v in TOKEN_ENVS if os.environ.get(v)), None),
        workers=workers,
        max_batch_items=max_batch_items,
        max_stream_items=max_stream_items,
        max_message_bytes=max_message_mib * 1024 * 1024,
        tls=tls,
        health_port=health_port,
        admission=AdmissionLimits(max_concurrent_calls, max_queued_calls),
    )
    serve(config)


def _parse_options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            _fail(f"--option {pair!r}: expected KEY=VALUE")
        options[key] = value
    return options


@app.command("score")
def score_command(
    metric: Annotated[str, typer.Option(help="Metric name (see `hyoka-metrics list`).")],
    pred: Annotated[Path, typer.Option(help="Predictions: JSONL or TSV, one item per line.")],
    ref: Annotated[Path | None, typer.Option(help="References: JSONL or TSV (not for pass_at_k).")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="Metric option KEY=VALUE.")] = None,
    file_format: Annotated[str, typer.Option("--format", help="auto (by extension), jsonl or tsv.")] = "auto",
    items: Annotated[bool, typer.Option(help="Include per-item scores in the output.")] = False,
) -> None:
    """Score predictions against references; prints one JSON object (corpus score, signature)."""
    if file_format not in ("auto", "jsonl", "tsv"):
        _fail(f"--format {file_format!r}: expected auto, jsonl or tsv")
    fmt: Format = file_format  # type: ignore[assignment]
    try:
        bound = get_metric(metric, _parse_options(option or []))
    except MetricError as error:
        _fail(f"--metric {metric}: {error.description}" if error.field == "metric" else f"--option {error}")
    try:
        predictions = read_predictions(pred, fmt)
        references = read_references(ref, fmt) if ref is not None else None
    except FileError as error:
        _fail(str(error))
    if references is None:
        if bound.needs_references:
            _fail(f"--ref is required for {metric}")
        references = [()] * len(predictions)
    elif len(references) != len(predictions):
        _fail(f"{pred} has {len(predictions)} items but {ref} has {len(references)}")
    batch = [Item(p.text, r, p.pass_counts) for p, r in zip(predictions, references, strict=True)]
    try:
        result = bound.score(batch)
    except MetricError as error:
        match = _ITEM_FIELD.match(error.field)
        if match is None:
            _fail(str(error))
        path = ref if match[2] == "references" and ref is not None else pred
        _fail(f"{path}:{int(match[1]) + 1}: {error.description}")
    out: dict[str, object] = {
        "metric": metric,
        "corpus_score": result.corpus_score,
        "items": len(batch),
        "signature": result.signature.text,
        "details": result.details,
    }
    if items:
        out["item_scores"] = result.item_scores
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


@app.command("list")
def list_command() -> None:
    """List metric names, options and defaults."""
    from hyoka.metrics.registry import METRICS

    for spec in METRICS.values():
        options = ", ".join(
            f"{o.name}={o.default}" + (f" ({'|'.join(o.allowed)})" if o.allowed else "") for o in spec.options
        )
        typer.echo(f"{spec.name}\t{spec.description}" + (f"\n\toptions: {options}" if options else ""))


def main() -> None:
    app()

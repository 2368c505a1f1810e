"""The `hyoka` command line. Each sub-command lives in its own module and registers itself;
heavy imports (scikit-learn, torch, grpc) happen inside the commands, so `hyoka --help` is fast."""

from __future__ import annotations

import typer

from hyoka.orchestrator.cli import analyze, check_server, data, evaluate, prompts, serve

app = typer.Typer(
    name="hyoka",
    help="hyoka (評価): evaluate Japanese and English LLMs and reproduce the factor analysis of Saito et al. 2024.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for command_module in (analyze, check_server, data, evaluate, prompts, serve):
    command_module.register(app)


def main() -> None:
    app()

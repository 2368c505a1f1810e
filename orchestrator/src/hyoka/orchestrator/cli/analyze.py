"""`hyoka analyze`: the paper's factor analysis of a score table, written as a report directory.

Every flag is optional: with none, it analyses the published 35 x 19 table shipped with hyoka
against the shipped compute-budget table and writes ./hyoka-report. Bad input prints one line
naming the file, row and column, exits with code 2 and writes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_OUT = Path("hyoka-report")
EXIT_BAD_INPUT = 2


def analyze(
    scores: Annotated[
        Path | None,
        typer.Option(help="Score table (CSV or JSON; models x benchmarks, 0-1). Default: the paper's 35 x 19 table."),
    ] = None,
    budgets: Annotated[
        Path | None,
        typer.Option(
            help="Budget CSV (model_id,params_B,en_tokens_B,ja_tokens_B,source,confidence,is_estimate,notes)."
        ),
    ] = None,
    no_budgets: Annotated[bool, typer.Option("--no-budgets", help="Skip the budget correlations.")] = False,
    out: Annotated[Path, typer.Option(help="Output directory (replaced if it holds a previous report).")] = DEFAULT_OUT,
    new_model: Annotated[
        list[Path] | None,
        typer.Option(help="Scores of new model(s) to project (CSV or JSON; benchmarks may be missing). Repeatable."),
    ] = None,
    components: Annotated[int, typer.Option(min=1, max=50, help="Principal components to report.")] = 3,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No terminal summary.")] = False,
) -> None:
    """Principal components of a model x benchmark score matrix, their correlation with English and
    Japanese compute budgets (C = 6 N D), and a report (HTML, Markdown, JSON, CSV, PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; figures use the Agg canvas anyway
    from rich.console import Console

    from hyoka.orchestrator.analysis import loaders
    from hyoka.orchestrator.analysis.errors import InputError
    from hyoka.orchestrator.analysis.pipeline import NewModelProblem, run_analysis
    from hyoka.orchestrator.analysis.report import OutputDirError, write_report
    from hyoka.orchestrator.analysis.summary import print_summary

    errors = Console(stderr=True, highlight=False, soft_wrap=True)

    def fail(message: str) -> typer.Exit:
        errors.print(f"error: {message}", markup=False)
        return typer.Exit(EXIT_BAD_INPUT)

    if budgets is not None and no_budgets:
        raise fail("--budgets and --no-budgets exclude each other")
    new_paths = list(new_model or [])
    try:
        if scores is None:
            table = loaders.load_default_scores()
            scores_source = f"default: {loaders.DEFAULT_SCORES} (Swallow leaderboard v202407, CC-BY 4.0)"
        else:
            table = loaders.load_scores(scores)
            scores_source = str(scores)
        models = set(table.models)
        budget_table = None
        budgets_source = ""
        if budgets is not None:
            budget_table = loaders.load_budgets(budgets, models)
            budgets_source = str(budgets)
        elif not no_budgets and loaders.default_budgets_available():
            budget_table = loaders.load_default_budgets(models)
            budgets_source = f"default: {loaders.DEFAULT_BUDGETS} (rows for the models of the score table)"
        new_tables = [loaders.load_scores(path, complete=False) for path in new_paths]
        try:
            result = run_analysis(
                table,
                budget_table,
                components,
                new_tables,
                scores_source=scores_source,
                budgets_source=budgets_source,
            )
        except NewModelProblem as problem:
            path = new_paths[problem.table_index]
            new = new_tables[problem.table_index]
            row = f"model '{new.models[problem.row]}'" if problem.row is not None else None
            column = new.benchmarks[problem.column] if problem.column is not None else None
            raise InputError(str(path), problem.message, row=row, column=column) from None
        write_report(result, out)
    except (InputError, OutputDirError) as error:
        raise fail(str(error)) from None
    if not quiet:
        print_summary(result, Console(highlight=False, soft_wrap=True), str(out))


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze)

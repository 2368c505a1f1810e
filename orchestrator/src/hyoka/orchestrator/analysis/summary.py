"""The short terminal summary of an analysis (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from hyoka.orchestrator.analysis.budgets import LANGUAGE_NAMES
from hyoka.orchestrator.analysis.correlations import HEADLINE_FITS
from hyoka.orchestrator.analysis.pipeline import AnalysisResult
from hyoka.orchestrator.analysis.report import top_loadings


def _short(model_id: str) -> str:
    return model_id.rsplit("/", 1)[-1]


def print_summary(result: AnalysisResult, console: Console, out_dir: str | None = None) -> None:
    table = result.table
    console.print(
        f"[bold]hyoka analyze[/bold]: {len(table.models)} models x {len(table.benchmarks)} benchmarks "
        f"({result.scores_source})"
    )
    variance = Table(title="Explained variance and largest loadings", title_justify="left", show_lines=False)
    variance.add_column("PC")
    variance.add_column("ratio", justify="right")
    variance.add_column("largest loadings")
    for c, ratio in enumerate(result.model.explained_variance_ratio, start=1):
        tops = ", ".join(f"{b} {v:+.2f}" for b, v in top_loadings(result, c, 3))
        variance.add_row(f"PC{c}", f"{ratio:.3f}", tops)
    console.print(variance)
    if result.budgets is None:
        console.print("No budget table: budget correlations not computed.")
    else:
        console.print(f"Budgets: {result.budgets_source}")
        for component, language in HEADLINE_FITS:
            fit = result.fit(component, language)
            if fit is None:
                continue
            r = f"{fit.r:.3f}" if fit.r is not None else "undefined"
            paper = f"paper {fit.paper[0]:.3f} (n={fit.paper[1]})" if fit.paper else ""
            console.print(
                f"[bold]r(PC{component}, log10 C_{language}) = {r}[/bold] (n={fit.n})   {paper}   "
                f"[{LANGUAGE_NAMES[language]} budget]"
            )
            console.print(f"  models: {', '.join(_short(m) for m in fit.models) or '(none)'}")
            if fit.estimated_models:
                console.print(
                    f"  budget figures that are estimates: {', '.join(_short(m) for m in fit.estimated_models)}"
                )
            else:
                console.print("  budget figures that are estimates: none")
            if fit.excluded:
                console.print(f"  left out ({len(fit.excluded)}): {', '.join(_short(m) for m, _ in fit.excluded)}")
    for p in result.projections:
        values = ", ".join(f"PC{c} {v:+.2f}" for c, v in enumerate(p.values, start=1))
        missing = f"; missing {len(p.missing)}: {', '.join(p.missing)}" if p.missing else ""
        console.print(f"Projected {p.model_id}: {values}{missing}")
    if out_dir is not None:
        console.print(f"Report: {out_dir}/report.html (also report.md, analysis.json, CSV and PNG files)")

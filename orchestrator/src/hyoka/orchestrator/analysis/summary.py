"""The short terminal summary of an analysis (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from hyoka.orchestrator.analysis.budgets import LANGUAGE_NAMES, LANGUAGES
from hyoka.orchestrator.analysis.correlations import HEADLINE_FITS, BudgetFit, SensitivityBand
from hyoka.orchestrator.analysis.pipeline import AnalysisResult
from hyoka.orchestrator.analysis.report import top_loadings


def _short(model_id: str) -> str:
    return model_id.rsplit("/", 1)[-1]


def _r(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "undefined"


def stated_line(fit: BudgetFit | None) -> str:
    if fit is None:
        return "(a) stated figures only: not computed"
    return f"(a) stated figures only: r = {_r(fit.r)} (n={fit.n})"


def band_line(band: SensitivityBand | None) -> str:
    if band is None or band.median is None:
        return "sensitivity of (b): not computed"
    lo, hi = 1 - band.half_width, 1 + band.half_width
    return (
        f"sensitivity of (b): median r = {band.median:.3f}, 5-95% band {_r(band.p05)} to {_r(band.p95)} "
        f"({band.draws} seeded draws; each of the {len(band.perturbed_models)} estimated figures x U[{lo:g}, {hi:g}])"
    )


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
        counts = result.budgets.status_counts()
        console.print(
            "  figures: "
            + "; ".join(
                f"{language} {counts[language]['stated']} stated, {counts[language]['estimate']} estimated, "
                f"{counts[language]['unknown']} unknown"
                for language in LANGUAGES
            )
        )
        console.print("  r below is (b), stated + estimated figures; (a) uses the stated figures only.")
        for component, language in HEADLINE_FITS:
            fit = result.fit(component, language)
            if fit is None:
                continue
            paper = f"paper {fit.paper[0]:.3f} (n={fit.paper[1]})" if fit.paper else ""
            console.print(
                f"[bold]r(PC{component}, log10 C_{language}) = {_r(fit.r)}[/bold] (n={fit.n})   {paper}   "
                f"\\[{LANGUAGE_NAMES[language]} budget]"
            )
            console.print(f"  {stated_line(result.fit_stated(component, language))}")
            console.print(f"  {band_line(result.band(component, language))}")
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

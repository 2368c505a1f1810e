"""The report directory: analysis.json, CSV tables, PNG figures, report.md and a self-contained
report.html (figures embedded as base64, no external resources), written all-or-nothing."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import shutil
import tempfile
from pathlib import Path

from hyoka.orchestrator.analysis.budgets import LANGUAGE_NAMES, LANGUAGES
from hyoka.orchestrator.analysis.correlations import BASIS_NAMES, HEADLINE_FITS, BudgetFit
from hyoka.orchestrator.analysis.figures import all_figures
from hyoka.orchestrator.analysis.pca import PROJECTION_METHOD, SIGN_CONVENTION
from hyoka.orchestrator.analysis.pipeline import AnalysisResult

MARKER = "analysis.json"  # a directory whose analysis.json names GENERATOR is a previous report we may replace
GENERATOR = "hyoka analyze"

Table = tuple[list[str], list[list[str]]]


class OutputDirError(Exception):
    """The output directory cannot be used (exists with other content, not writable)."""


def _f(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


# ----------------------------------------------------------------------------------------------
# Tables shared by the CSV, Markdown and HTML forms


def explained_variance_table(result: AnalysisResult) -> Table:
    ratios = result.model.explained_variance_ratio_all
    total = 0.0
    rows = []
    for c, value in enumerate(ratios):
        total += float(value)
        rows.append([f"PC{c + 1}", f"{value:.4f}", f"{total:.4f}"])
    return ["component", "explained_variance_ratio", "cumulative"], rows


def loadings_table(result: AnalysisResult) -> Table:
    k = result.model.n_components
    header = ["benchmark", *(f"PC{c + 1}" for c in range(k))]
    rows = [
        [b, *(f"{result.model.loadings[c, j]:+.4f}" for c in range(k))] for j, b in enumerate(result.table.benchmarks)
    ]
    return header, rows


def pc_scores_table(result: AnalysisResult) -> Table:
    k = result.model.n_components
    header = ["model_id", "display_name", "group", *(f"PC{c + 1}" for c in range(k))]
    rows = [
        [m, result.table.display_names[i], result.table.groups[i], *(f"{v:+.4f}" for v in result.pc_scores[i])]
        for i, m in enumerate(result.table.models)
    ]
    return header, rows


def correlations_table(result: AnalysisResult) -> Table:
    header = [
        "basis",
        "component",
        "language",
        "r",
        "n",
        "paper_r",
        "paper_n",
        "slope",
        "intercept",
        "estimates_used",
        "models",
    ]
    rows = []
    for fit in (*result.fits, *result.fits_stated):
        paper = fit.paper
        rows.append(
            [
                fit.basis,
                f"PC{fit.component}",
                fit.language,
                _f(fit.r),
                str(fit.n),
                f"{paper[0]:.3f}" if paper else "",
                str(paper[1]) if paper else "",
                _f(fit.slope, 4),
                _f(fit.intercept, 4),
                str(len(fit.estimated_models)),
                "; ".join(fit.models),
            ]
        )
    return header, rows


def headline_table(result: AnalysisResult) -> Table:
    """The paper's two correlations beside (a), (b) and the sensitivity band of (b)."""
    header = [
        "correlation",
        "paper r (n)",
        "(a) stated only: r (n)",
        "(b) stated + estimated: r (n)",
        "(b) under +-50% perturbation: median r [5%, 95%]",
    ]
    rows = []
    for component, language in HEADLINE_FITS:
        fit, stated, band = (
            result.fit(component, language),
            result.fit_stated(component, language),
            result.band(component, language),
        )
        if fit is None:
            continue
        paper = fit.paper
        rows.append(
            [
                f"PC{component} vs log10 C_{language}",
                f"{paper[0]:.3f} ({paper[1]})" if paper else "",
                f"{_f(stated.r) or 'undefined'} ({stated.n})" if stated is not None else "",
                f"{_f(fit.r) or 'undefined'} ({fit.n})",
                f"{_f(band.median)} [{_f(band.p05)}, {_f(band.p95)}]"
                if band is not None and band.median is not None
                else "",
            ]
        )
    return header, rows


def sensitivity_table(result: AnalysisResult) -> Table:
    header = [
        "component",
        "language",
        "r_b",
        "n",
        "r_median",
        "r_p05",
        "r_p95",
        "r_min",
        "r_max",
        "draws",
        "seed",
        "perturbed_figures",
        "paper_r",
        "paper_n",
    ]
    rows = []
    for band in result.sensitivity:
        paper = band.paper
        rows.append(
            [
                f"PC{band.component}",
                band.language,
                _f(band.r_base),
                str(band.n),
                _f(band.median),
                _f(band.p05),
                _f(band.p95),
                _f(band.r_min),
                _f(band.r_max),
                str(band.draws),
                str(band.seed),
                str(len(band.perturbed_models)),
                f"{paper[0]:.3f}" if paper else "",
                str(paper[1]) if paper else "",
            ]
        )
    return header, rows


def status_table(result: AnalysisResult) -> Table:
    header = ["language", "stated", "estimated", "unknown"]
    if result.budgets is None:
        return header, []
    counts = result.budgets.status_counts()
    rows = [
        [lang, str(counts[lang]["stated"]), str(counts[lang]["estimate"]), str(counts[lang]["unknown"])]
        for lang in LANGUAGES
    ]
    return header, rows


def budgets_table(result: AnalysisResult) -> Table:
    header = [
        "model_id",
        "params_B",
        "en_tokens_B",
        "ja_tokens_B",
        "en_status",
        "ja_status",
        "en_rule",
        "ja_rule",
        "log10_C_en",
        "log10_C_ja",
        "is_estimate",
        "confidence",
        "source",
    ]
    rows = []
    for model_id in result.table.models:
        row = result.budgets.get(model_id) if result.budgets is not None else None
        if row is None:
            rows.append([model_id, "", "", "", "", "", "", "", "", "", "", "", "(no budget row)"])
            continue
        rows.append(
            [
                model_id,
                "" if row.params_b is None else f"{row.params_b:g}",
                "" if row.en_tokens_b is None else f"{row.en_tokens_b:g}",
                "" if row.ja_tokens_b is None else f"{row.ja_tokens_b:g}",
                row.status("en"),
                row.status("ja"),
                row.rule("en"),
                row.rule("ja"),
                _f(row.log10_compute("en")[0]),
                _f(row.log10_compute("ja")[0]),
                "true" if row.is_estimate else "false",
                row.confidence,
                row.source,
            ]
        )
    return header, rows


def projections_table(result: AnalysisResult) -> Table:
    k = result.model.n_components
    header = ["model_id", *(f"PC{c + 1}" for c in range(k)), "n_observed", "missing_benchmarks"]
    rows = [
        [p.model_id, *(f"{v:+.4f}" for v in p.values), str(len(p.observed)), "; ".join(p.missing)]
        for p in result.projections
    ]
    return header, rows


def _csv_text(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table[0])
    writer.writerows(table[1])
    return buffer.getvalue()


def csv_files(result: AnalysisResult) -> dict[str, str]:
    files = {
        "explained_variance.csv": _csv_text(explained_variance_table(result)),
        "loadings.csv": _csv_text(loadings_table(result)),
        "pc_scores.csv": _csv_text(pc_scores_table(result)),
    }
    if result.budgets is not None:
        files["budget_correlations.csv"] = _csv_text(correlations_table(result))
        files["budget_sensitivity.csv"] = _csv_text(sensitivity_table(result))
        files["budgets_used.csv"] = _csv_text(budgets_table(result))
    if result.projections:
        files["projections.csv"] = _csv_text(projections_table(result))
    return files


# ----------------------------------------------------------------------------------------------
# Text of the report (one structure, two renderings)


def top_loadings(result: AnalysisResult, component: int, count: int = 4) -> list[tuple[str, float]]:
    """The `count` largest (signed) loadings of a 1-based component."""
    row = result.model.loadings[component - 1]
    order = sorted(range(len(row)), key=lambda j: -row[j])[:count]
    return [(result.table.benchmarks[j], float(row[j])) for j in order]


def fit_sentence(fit: BudgetFit) -> str:
    r = f"r = {fit.r:.3f}" if fit.r is not None else "r undefined (fewer than 3 models or no spread)"
    paper = fit.paper
    versus = f"; the paper: r = {paper[0]:.3f} (n = {paper[1]})" if paper else ""
    estimates = f"; {len(fit.estimated_models)} of the budgets used are estimates" if fit.estimated_models else ""
    what = f"PC{fit.component} vs log10 C_{fit.language} ({LANGUAGE_NAMES[fit.language]})"
    return f"{BASIS_NAMES[fit.basis]}: {what}: {r}, n = {fit.n}{versus}{estimates}"


def _md_table(table: Table) -> str:
    header, rows = table
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _sections(result: AnalysisResult, figure_names: list[str]) -> list[tuple[str, list[tuple[str, object]]]]:
    """(title, parts); a part is ("p", text), ("table", Table) or ("img", file name)."""
    ratios = result.model.explained_variance_ratio
    table = result.table
    intro = (
        f"Principal component analysis of {len(table.models)} models x {len(table.benchmarks)} benchmarks "
        f"(scores: {result.scores_source}), each benchmark standardised to mean 0 and standard deviation 1 "
        f"(population std). Explained variance: "
        + ", ".join(f"PC{c + 1} {v:.3f}" for c, v in enumerate(ratios))
        + f". Sign convention: {SIGN_CONVENTION}. Loadings are unit-norm eigenvector weights."
    )
    sections: list[tuple[str, list[tuple[str, object]]]] = [("Summary", [("p", intro)])]
    tops = [
        ("p", f"PC{c}: largest loadings " + ", ".join(f"{b} ({v:+.3f})" for b, v in top_loadings(result, c)))
        for c in range(1, result.model.n_components + 1)
    ]
    parts: list[tuple[str, object]] = [*tops, ("table", loadings_table(result))]
    parts += [("img", n) for n in figure_names if n.startswith(("loadings", "explained"))]
    parts.append(("table", explained_variance_table(result)))
    sections.append(("Components and loadings", parts))
    sections.append(
        (
            "Models in component space",
            [*(("img", n) for n in figure_names if "scatter" in n), ("table", pc_scores_table(result))],
        )
    )
    if result.budgets is not None:
        budget_parts: list[tuple[str, object]] = [
            (
                "p",
                f"Budgets: {result.budgets_source}. Compute C = 6 N D per language (N parameters, D training tokens "
                "in that language over the model's whole history), log10 FLOPs; Pearson r and a least-squares line "
                "of each PC score against log10 C. Each token figure is stated (published, or arithmetic on "
                "published figures only), an estimate (an explicit rule; see budgets_35.md) or unknown. "
                "(a) uses the stated figures only; (b) stated + estimated figures. Models with an unknown "
                "figure are left out and listed.",
            ),
            ("table", status_table(result)),
            ("p", "The paper's correlations beside this reproduction:"),
            ("table", headline_table(result)),
        ]
        if result.sensitivity:
            band = result.sensitivity[0]
            budget_parts.append(
                (
                    "p",
                    f"Sensitivity of (b): {band.description}. The band is the 5th to 95th percentile of r over "
                    "the draws; it shows how much each conclusion depends on the estimated figures.",
                )
            )
            budget_parts.append(("table", sensitivity_table(result)))
        budget_parts += [("p", fit_sentence(fit)) for fit in (*result.fits, *result.fits_stated)]
        budget_parts.append(("table", correlations_table(result)))
        for fit in (*result.fits, *result.fits_stated):
            if fit.paper is None:
                continue
            budget_parts.append(
                (
                    "p",
                    f"Models used for PC{fit.component} vs {LANGUAGE_NAMES[fit.language]}, {BASIS_NAMES[fit.basis]} "
                    f"(n = {fit.n}): " + (", ".join(fit.models) or "(none)"),
                )
            )
            if fit.excluded:
                budget_parts.append(("p", "Left out: " + "; ".join(f"{m} ({why})" for m, why in fit.excluded)))
            if fit.estimated_models:
                budget_parts.append(
                    ("p", "Budget figures that are ESTIMATES among those used: " + ", ".join(fit.estimated_models))
                )
        budget_parts += [("img", n) for n in figure_names if "budget" in n]
        budget_parts.append(
            ("p", "Budget table used (status and rule per language; is_estimate marks rows with an estimate):")
        )
        budget_parts.append(("table", budgets_table(result)))
        sections.append(("Compute budgets", budget_parts))
    else:
        sections.append(("Compute budgets", [("p", "No budget table: correlations were not computed.")]))
    if result.projections:
        proj_parts: list[tuple[str, object]] = [
            ("p", f"New models placed into the reference component space. Missing benchmarks: {PROJECTION_METHOD}."),
            ("table", projections_table(result)),
        ]
        for p in result.projections:
            if p.implied_scores:
                implied = ", ".join(f"{b} {v:.3f}" for b, v in p.implied_scores.items())
                proj_parts.append(
                    ("p", f"{p.model_id}: scores implied by its components for the missing benchmarks: {implied}")
                )
        sections.append(("Projected models", proj_parts))
    return sections


def render_markdown(result: AnalysisResult, figure_names: list[str]) -> str:
    out = ["# hyoka factor analysis", ""]
    for title, parts in _sections(result, figure_names):
        out += [f"## {title}", ""]
        for kind, content in parts:
            if kind == "p":
                out += [str(content), ""]
            elif kind == "img":
                out += [f"![{content}]({content})", ""]
            else:
                assert isinstance(content, tuple)
                out += [_md_table(content), ""]
    out.append(_attribution_text(result))
    return "\n".join(out) + "\n"


def _attribution_text(result: AnalysisResult) -> str:
    if "default" not in result.scores_source:
        return ""
    return (
        "Scores: Swallow LLM leaderboard (swallow-llm/evaluation, commit eb85b98, swallow-evaluation v202407), "
        "CC-BY 4.0; see ATTRIBUTION.md in hyoka.orchestrator.data."
    )


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:0.82em;margin:0.8em 0}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:left}
th{background:#f2f2f2} img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
h1{font-size:1.6em} h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:0.2em}
"""


def render_html(result: AnalysisResult, figures: dict[str, bytes]) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>hyoka factor analysis</title>',
        f"<style>{_CSS}</style></head><body>",
        "<h1>hyoka factor analysis</h1>",
    ]
    for title, parts in _sections(result, list(figures)):
        out.append(f"<h2>{html.escape(title)}</h2>")
        for kind, content in parts:
            if kind == "p":
                out.append(f"<p>{html.escape(str(content))}</p>")
            elif kind == "img":
                data = base64.b64encode(figures[str(content)]).decode("ascii")
                out.append(f'<img alt="{html.escape(str(content))}" src="data:image/png;base64,{data}">')
            else:
                assert isinstance(content, tuple)
                header, rows = content
                out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
                out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows]
                out.append("</table>")
    if attribution := _attribution_text(result):
        out.append(f"<p><small>{html.escape(attribution)}</small></p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------------
# Writing


def _is_previous_report(directory: Path) -> bool:
    try:
        data = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("generator") == GENERATOR


def _check_target(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputDirError(f"{out_dir}: exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not _is_previous_report(out_dir):
        raise OutputDirError(
            f"{out_dir}: exists, is not empty and holds no previous hyoka report ({MARKER}); refusing to replace it"
        )


def write_report(result: AnalysisResult, out_dir: Path) -> list[str]:
    """Write every file into a temporary sibling directory, then move it into place, so the
    output directory holds either the previous report or the complete new one. An existing
    directory is replaced only if empty or a previous report. Returns the file names written."""
    _check_target(out_dir)
    figures = all_figures(result)  # render before touching the disk
    files: dict[str, str | bytes] = {
        "analysis.json": json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n",
        **csv_files(result),
        **figures,
        "report.md": render_markdown(result, list(figures)),
        "report.html": render_html(result, figures),
    }
    parent = out_dir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=parent))
    except OSError as error:
        raise OutputDirError(f"{parent}: cannot create the output directory ({error.strerror or error})") from None
    old: Path | None = None
    try:
        for name, content in files.items():
            target = staging / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        staging.chmod(0o755)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=parent))
            out_dir.rename(old / "report")
        staging.rename(out_dir)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and (old / "report").exists() and not out_dir.exists():
            (old / "report").rename(out_dir)  # put the previous report back
        raise OutputDirError(f"{out_dir}: cannot write the report ({error.strerror or error})") from None
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return list(files)

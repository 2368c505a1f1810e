"""PNG figures of an analysis. Uses matplotlib's object API with the Agg canvas (no pyplot, no
display, no global state), so it is safe in servers and threads."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hyoka.orchestrator.analysis.budgets import LANGUAGE_NAMES, LANGUAGES
from hyoka.orchestrator.analysis.pipeline import AnalysisResult

DPI = 130
GROUP_COLOURS = {
    "ja_from_scratch": "#d62728",
    "ja_continual_pretraining": "#ff7f0e",
    "en": "#1f77b4",
    "multilingual": "#2ca02c",
}
GROUP_NAMES = {
    "ja_from_scratch": "Japanese pre-training (from scratch)",
    "ja_continual_pretraining": "Japanese continual pre-training",
    "en": "English pre-training",
    "multilingual": "Multilingual",
    "": "(no group)",
}
OTHER_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def group_colours(groups: list[str]) -> dict[str, str]:
    colours: dict[str, str] = {}
    others = iter(OTHER_COLOURS * 10)
    for group in groups:
        if group not in colours:
            colours[group] = GROUP_COLOURS.get(group) or next(others)
    return colours


def loadings_heatmap(result: AnalysisResult) -> bytes:
    loadings = result.model.loadings.T  # (p, k)
    p, k = loadings.shape
    figure = Figure(figsize=(2.2 + 1.3 * k, 0.9 + 0.36 * p))
    axes = figure.add_subplot()
    limit = float(np.abs(loadings).max())
    image = axes.imshow(loadings, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    axes.set_yticks(range(p), result.table.benchmarks, fontsize=9)
    ratios = result.model.explained_variance_ratio
    axes.set_xticks(range(k), [f"PC{c + 1}\n({ratios[c]:.1%})" for c in range(k)], fontsize=9)
    axes.xaxis.tick_top()
    for j in range(p):
        for c in range(k):
            value = loadings[j, c]
            axes.text(c, j, f"{value:+.2f}", ha="center", va="center", fontsize=8,
                      color="white" if abs(value) > 0.6 * limit else "black")  # fmt: skip
    figure.colorbar(image, ax=axes, shrink=0.6, label="loading")
    axes.set_title("Loadings (standardised benchmarks)", fontsize=11, pad=30)
    return _png(figure)


def pc_scatter(result: AnalysisResult, x: int = 0, y: int = 1) -> bytes:
    """PC(x+1) against PC(y+1), coloured by group, every model labelled; projected models as stars."""
    table = result.table
    colours = group_colours([*table.groups, *(p.group for p in result.projections)])
    figure = Figure(figsize=(11, 8.5))
    axes = figure.add_subplot()
    for group, colour in colours.items():
        members = [i for i, g in enumerate(table.groups) if g == group]
        if members:
            axes.scatter(result.pc_scores[members, x], result.pc_scores[members, y], s=45, color=colour,
                         label=GROUP_NAMES.get(group, group), edgecolor="black", linewidth=0.4, zorder=3)  # fmt: skip
    for i in range(len(table.models)):
        axes.annotate(table.label(i), (result.pc_scores[i, x], result.pc_scores[i, y]), xytext=(4, 3),
                      textcoords="offset points", fontsize=7.5, zorder=4)  # fmt: skip
    for index, projection in enumerate(result.projections):
        axes.scatter(projection.values[x], projection.values[y], marker="*", s=260,
                     color=colours[projection.group], edgecolor="black", linewidth=0.8, zorder=5,
                     label="projected (new) model" if index == 0 else None)  # fmt: skip
        note = f" ({len(projection.missing)} missing)" if projection.missing else ""
        axes.annotate(projection.label + note, (projection.values[x], projection.values[y]), xytext=(6, -10),
                      textcoords="offset points", fontsize=8.5, fontweight="bold", zorder=6)  # fmt: skip
    ratios = result.model.explained_variance_ratio
    axes.set_xlabel(f"PC{x + 1} ({ratios[x]:.1%} of variance)", fontsize=11)
    axes.set_ylabel(f"PC{y + 1} ({ratios[y]:.1%} of variance)", fontsize=11)
    axes.axhline(0, color="grey", linewidth=0.5, zorder=1)
    axes.axvline(0, color="grey", linewidth=0.5, zorder=1)
    axes.grid(alpha=0.25)
    axes.legend(fontsize=9, loc="best")
    axes.set_title(f"Models in the space of PC{x + 1} and PC{y + 1}", fontsize=12)
    return _png(figure)


def budget_figure(result: AnalysisResult, component: int) -> bytes:
    """PC `component` (1-based) against log10 C_en and log10 C_ja, with the least-squares line and r.
    Hollow markers: budgets that are estimates."""
    figure = Figure(figsize=(12, 5))
    colours = group_colours(list(result.table.groups))
    group_of = dict(zip(result.table.models, result.table.groups, strict=True))
    label_of = {m: result.table.label(i) for i, m in enumerate(result.table.models)}
    for panel, language in enumerate(LANGUAGES, start=1):
        axes = figure.add_subplot(1, 2, panel)
        fit = result.fit(component, language)
        if fit is None or fit.n == 0:
            axes.text(0.5, 0.5, "no model has this budget", ha="center", va="center", transform=axes.transAxes)
        else:
            for model, log_c, value in zip(fit.models, fit.log10_compute, fit.pc_values, strict=True):
                colour = colours[group_of[model]]
                estimate = model in fit.estimated_models
                axes.scatter(log_c, value, s=40, zorder=3, edgecolor=colour, linewidth=1.4,
                             facecolor="white" if estimate else colour)  # fmt: skip
                axes.annotate(label_of[model], (log_c, value), xytext=(3, 3), textcoords="offset points", fontsize=6.5)
            if fit.slope is not None and fit.intercept is not None:
                xs = np.linspace(min(fit.log10_compute), max(fit.log10_compute), 50)
                axes.plot(xs, fit.intercept + fit.slope * xs, color="black", linewidth=1, zorder=2)
            r_text = f"r = {fit.r:.3f}" if fit.r is not None else "r undefined"
            paper = fit.paper
            paper_text = f"\npaper: r = {paper[0]:.3f} (n = {paper[1]})" if paper else ""
            axes.text(0.03, 0.97, f"{r_text} (n = {fit.n}){paper_text}", transform=axes.transAxes, va="top",
                      fontsize=10, bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "grey"})  # fmt: skip
        axes.set_xlabel(f"log10 C_{language} ({LANGUAGE_NAMES[language]} compute, FLOPs)", fontsize=10)
        axes.set_ylabel(f"PC{component} score", fontsize=10)
        axes.grid(alpha=0.25)
        axes.set_title(f"PC{component} vs {LANGUAGE_NAMES[language]} budget", fontsize=11)
        if panel == 1:
            used = {group_of[m] for fit_ in result.fits if fit_.component == component for m in fit_.models}
            handles = [
                Line2D([], [], marker="o", linestyle="", color=colours[g], label=GROUP_NAMES.get(g, g))
                for g in colours
                if g in used
            ]
            if handles:
                axes.legend(handles=handles, fontsize=8, loc="lower right")
    figure.text(
        0.5, -0.02, "filled: stated figures; hollow: estimates. Line: least-squares fit.", ha="center", fontsize=9
    )
    return _png(figure)


def scree(result: AnalysisResult) -> bytes:
    ratios = result.model.explained_variance_ratio_all
    figure = Figure(figsize=(7, 3.6))
    axes = figure.add_subplot()
    positions = np.arange(1, len(ratios) + 1)
    axes.bar(positions, ratios, color="#1f77b4")
    axes.plot(positions, np.cumsum(ratios), color="black", marker="o", markersize=3, label="cumulative")
    for c, value in enumerate(ratios[: result.model.n_components]):
        axes.text(c + 1, value + 0.02, f"{value:.3f}", ha="center", fontsize=8)
    axes.set_xticks(positions)
    axes.set_xlabel("component")
    axes.set_ylabel("explained variance ratio")
    axes.set_ylim(0, 1.05)
    axes.legend(fontsize=8)
    axes.set_title("Explained variance", fontsize=11)
    return _png(figure)


def all_figures(result: AnalysisResult) -> dict[str, bytes]:
    """File name -> PNG bytes, in report order."""
    figures = {"loadings_heatmap.png": loadings_heatmap(result), "explained_variance.png": scree(result)}
    if result.model.n_components >= 2:
        figures["pc1_pc2_scatter.png"] = pc_scatter(result, 0, 1)
    if result.fits:
        for component in range(1, result.model.n_components + 1):
            figures[f"pc{component}_vs_budget.png"] = budget_figure(result, component)
    return figures

"""Log-linear fits of each principal component against log10 compute per language."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hyoka.orchestrator.analysis.budgets import LANGUAGES, BudgetTable, Language
from hyoka.orchestrator.analysis.pca import Array
from hyoka.orchestrator.analysis.scores import ScoreTable

MIN_FIT_MODELS = 3  # Pearson r of 2 points is always +-1

# What the paper reports (Saito et al., arXiv 2412.14471): (component, language) -> (r, n).
PAPER_REFERENCE: dict[tuple[int, Language], tuple[float, int]] = {(1, "en"): (0.916, 27), (2, "ja"): (0.779, 25)}
HEADLINE_FITS: tuple[tuple[int, Language], ...] = ((1, "en"), (2, "ja"))


@dataclass(frozen=True)
class BudgetFit:
    """PC `component` (1-based) against log10 C for one language, over the models with a budget."""

    component: int
    language: Language
    r: float | None
    n: int
    models: tuple[str, ...]
    log10_compute: tuple[float, ...]  # aligned with models
    pc_values: tuple[float, ...]  # aligned with models
    excluded: tuple[tuple[str, str], ...]  # (model, reason)
    estimated_models: tuple[str, ...]
    slope: float | None
    intercept: float | None

    @property
    def key(self) -> str:
        return f"pc{self.component}_vs_{self.language}"

    @property
    def paper(self) -> tuple[float, int] | None:
        return PAPER_REFERENCE.get((self.component, self.language))


def fit_budgets(table: ScoreTable, pc_scores: Array, budgets: BudgetTable) -> list[BudgetFit]:
    """Every component against both languages; models without a usable budget are listed."""
    usable = {language: _usable_budgets(table, budgets, language) for language in LANGUAGES}
    fits = []
    for component in range(1, pc_scores.shape[1] + 1):
        for language in LANGUAGES:
            used, excluded, estimated = usable[language]
            models = tuple(model_id for _, model_id, _ in used)
            xs = [log_c for _, _, log_c in used]
            ys = [float(pc_scores[i, component - 1]) for i, _, _ in used]
            r = slope = intercept = None
            x = np.asarray(xs)
            if len(xs) >= MIN_FIT_MODELS and np.ptp(x) > 0:
                r = float(np.corrcoef(x, ys)[0, 1])
                slope_, intercept_ = np.polyfit(x, ys, 1)
                slope, intercept = float(slope_), float(intercept_)
            fits.append(
                BudgetFit(
                    component=component,
                    language=language,
                    r=r,
                    n=len(models),
                    models=models,
                    log10_compute=tuple(xs),
                    pc_values=tuple(ys),
                    excluded=excluded,
                    estimated_models=estimated,
                    slope=slope,
                    intercept=intercept,
                )
            )
    return fits


def _usable_budgets(
    table: ScoreTable, budgets: BudgetTable, language: Language
) -> tuple[list[tuple[int, str, float]], tuple[tuple[str, str], ...], tuple[str, ...]]:
    """For one language (the same for every component): (row index, model, log10 compute) of the
    models with a usable budget, the others with the reason, and the models whose budget is an
    estimate."""
    used: list[tuple[int, str, float]] = []
    excluded: list[tuple[str, str]] = []
    estimated: list[str] = []
    for i, model_id in enumerate(table.models):
        row = budgets.get(model_id)
        if row is None:
            excluded.append((model_id, "no budget row"))
            continue
        log_c, why = row.log10_compute(language)
        if log_c is None:
            excluded.append((model_id, why))
            continue
        used.append((i, model_id, log_c))
        if row.is_estimate:
            estimated.append(model_id)
    return used, tuple(excluded), tuple(estimated)

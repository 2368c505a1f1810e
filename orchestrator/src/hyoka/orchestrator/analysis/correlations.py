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
    fits = []
    for component in range(1, pc_scores.shape[1] + 1):
        for language in LANGUAGES:
            models: list[str] = []
            xs: list[float] = []
            ys: list[float] = []
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
                models.append(model_id)
                xs.append(log_c)
                ys.append(float(pc_scores[i, component - 1]))
                if row.is_estimate:
                    estimated.append(model_id)
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
                    models=tuple(models),
                    log10_compute=tuple(xs),
                    pc_values=tuple(ys),
                    excluded=tuple(excluded),
                    estimated_models=tuple(estimated),
                    slope=slope,
                    intercept=intercept,
                )
            )
    return fits

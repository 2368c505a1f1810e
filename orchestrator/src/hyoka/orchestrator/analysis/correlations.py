"""Log-linear fits of each principal component against log10 compute per language, on (a) the
stated budget figures only and (b) stated plus estimated figures, and a sensitivity check of (b):
r over random perturbations of every estimated figure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hyoka.orchestrator.analysis.budgets import LANGUAGES, BudgetTable, Language
from hyoka.orchestrator.analysis.pca import Array
from hyoka.orchestrator.analysis.scores import ScoreTable

MIN_FIT_MODELS = 3  # Pearson r of 2 points is always +-1

# What the paper reports (Saito et al., arXiv 2412.14471): (component, language) -> (r, n).
PAPER_REFERENCE: dict[tuple[int, Language], tuple[float, int]] = {(1, "en"): (0.916, 27), (2, "ja"): (0.779, 25)}
HEADLINE_FITS: tuple[tuple[int, Language], ...] = ((1, "en"), (2, "ja"))

Basis = Literal["all", "stated"]
BASIS_NAMES: dict[Basis, str] = {"all": "(b) stated + estimated", "stated": "(a) stated only"}

# The sensitivity check: seeded, so every run prints the same band.
SENSITIVITY_DRAWS = 1000
SENSITIVITY_SEED = 20241219  # the paper's arXiv v1 date
SENSITIVITY_HALF_WIDTH = 0.5  # +-50 %
SENSITIVITY_QUANTILES = (0.05, 0.5, 0.95)


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
    basis: Basis = "all"

    @property
    def key(self) -> str:
        return f"pc{self.component}_vs_{self.language}"

    @property
    def paper(self) -> tuple[float, int] | None:
        return PAPER_REFERENCE.get((self.component, self.language))


@dataclass(frozen=True)
class SensitivityBand:
    """r of one fit (basis (b)) over `draws` seeded random draws, each multiplying the estimated
    part of every estimated token figure by its own factor from U[1 - w, 1 + w]."""

    component: int
    language: Language
    draws: int
    seed: int
    half_width: float
    n: int  # models in the fit
    perturbed_models: tuple[str, ...]  # those with an estimated part
    r_base: float | None  # r without perturbation (the (b) figure)
    median: float | None
    p05: float | None
    p95: float | None
    r_min: float | None
    r_max: float | None
    valid_draws: int  # draws whose r is defined

    @property
    def key(self) -> str:
        return f"pc{self.component}_vs_{self.language}"

    @property
    def paper(self) -> tuple[float, int] | None:
        return PAPER_REFERENCE.get((self.component, self.language))

    @property
    def description(self) -> str:
        lo, hi = 1 - self.half_width, 1 + self.half_width
        return (
            f"{self.draws} draws (seed {self.seed}); in each, the estimated part of every estimated token "
            f"figure is multiplied by its own factor drawn uniformly from [{lo:g}, {hi:g}]; stated figures "
            "and the PC scores are held fixed"
        )


def fit_budgets(table: ScoreTable, pc_scores: Array, budgets: BudgetTable, basis: Basis = "all") -> list[BudgetFit]:
    """Every component against both languages; models without a usable budget are listed.
    basis "stated": an estimated figure counts as unknown."""
    usable = {language: _usable_budgets(table, budgets, language, basis) for language in LANGUAGES}
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
                    basis=basis,
                )
            )
    return fits


def _usable_budgets(
    table: ScoreTable, budgets: BudgetTable, language: Language, basis: Basis
) -> tuple[list[tuple[int, str, float]], tuple[tuple[str, str], ...], tuple[str, ...]]:
    """For one language (the same for every component): (row index, model, log10 compute) of the
    models with a usable budget, the others with the reason, and the models whose figure is an
    estimate."""
    used: list[tuple[int, str, float]] = []
    excluded: list[tuple[str, str]] = []
    estimated: list[str] = []
    for i, model_id in enumerate(table.models):
        row = budgets.get(model_id)
        if row is None:
            excluded.append((model_id, "no budget row"))
            continue
        log_c, why = row.log10_compute(language, stated_only=basis == "stated")
        if log_c is None:
            excluded.append((model_id, why))
            continue
        used.append((i, model_id, log_c))
        if row.status(language) == "estimate":
            estimated.append(model_id)
    return used, tuple(excluded), tuple(estimated)


def sensitivity_bands(
    budgets: BudgetTable,
    fits: list[BudgetFit] | tuple[BudgetFit, ...],
    *,
    draws: int = SENSITIVITY_DRAWS,
    seed: int = SENSITIVITY_SEED,
    half_width: float = SENSITIVITY_HALF_WIDTH,
) -> list[SensitivityBand]:
    """One band per (b) fit. The factors are drawn once per language (the same perturbed budgets
    for every component), from one seeded generator, English first."""
    rng = np.random.default_rng(seed)
    perturbed_x: dict[Language, tuple[Array, tuple[str, ...]]] = {}
    for language in LANGUAGES:
        fit = next((f for f in fits if f.language == language and f.basis == "all"), None)
        if fit is None:
            continue
        rows = [budgets.get(m) for m in fit.models]
        tokens = np.array([row.tokens_b(language) if row else math.nan for row in rows], dtype=float)
        params = np.array([row.params_b if row and row.params_b else math.nan for row in rows], dtype=float)
        parts = np.array([row.estimated_part_b(language) if row else 0.0 for row in rows], dtype=float)
        factors = rng.uniform(1 - half_width, 1 + half_width, size=(max(draws, 0), len(rows)))
        perturbed = tokens - parts + parts * factors  # (draws, n); >0 as parts <= tokens and factor > 0
        x = np.log10(6.0 * params * 1e9 * perturbed * 1e9)
        perturbed_x[language] = (x, tuple(m for m, p in zip(fit.models, parts, strict=True) if p > 0))
    bands = []
    for fit in fits:
        if fit.basis != "all" or fit.language not in perturbed_x:
            continue
        x, perturbed_models = perturbed_x[fit.language]
        y = np.asarray(fit.pc_values, dtype=float)
        r = _row_pearson(x, y) if fit.n >= MIN_FIT_MODELS else np.full(x.shape[0], math.nan)
        valid = r[np.isfinite(r)]
        quantiles: list[float | None] = (
            [float(q) for q in np.quantile(valid, SENSITIVITY_QUANTILES)] if valid.size else [None, None, None]
        )
        bands.append(
            SensitivityBand(
                component=fit.component,
                language=fit.language,
                draws=x.shape[0],
                seed=seed,
                half_width=half_width,
                n=fit.n,
                perturbed_models=perturbed_models,
                r_base=fit.r,
                p05=quantiles[0],
                median=quantiles[1],
                p95=quantiles[2],
                r_min=float(valid.min()) if valid.size else None,
                r_max=float(valid.max()) if valid.size else None,
                valid_draws=int(valid.size),
            )
        )
    return bands


def _row_pearson(x: Array, y: Array) -> Array:
    """Pearson r of each row of x (draws, n) with y (n); NaN where a row has no spread."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean()
    numerator = xc @ yc
    denominator = np.sqrt((xc**2).sum(axis=1) * float((yc**2).sum()))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = numerator / denominator
    r[~np.isfinite(r) | (denominator == 0)] = math.nan
    return np.asarray(r, dtype=float)

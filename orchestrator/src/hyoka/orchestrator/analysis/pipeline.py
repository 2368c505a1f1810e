"""The whole analysis in memory: fit, budget correlations, projections; and its JSON form.
Nothing here reads or writes files, so the CLI and the gRPC service share it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hyoka.orchestrator.analysis.budgets import LANGUAGES, BudgetTable, Language
from hyoka.orchestrator.analysis.correlations import (
    BASIS_NAMES,
    SENSITIVITY_DRAWS,
    SENSITIVITY_SEED,
    BudgetFit,
    SensitivityBand,
    fit_budgets,
    sensitivity_bands,
)
from hyoka.orchestrator.analysis.errors import TableProblem
from hyoka.orchestrator.analysis.pca import (
    PROJECTION_METHOD,
    SIGN_CONVENTION,
    Array,
    FactorModel,
    Projection,
    fit_factor_model,
    project,
)
from hyoka.orchestrator.analysis.scores import ScoreTable

DEFAULT_COMPONENTS = 3


class NewModelProblem(TableProblem):
    """A TableProblem in the `table_index`-th table of new models."""

    def __init__(self, table_index: int, problem: TableProblem) -> None:
        super().__init__(problem.message, problem.row, problem.column, problem.field)
        self.table_index = table_index


@dataclass(frozen=True, eq=False)
class AnalysisResult:
    table: ScoreTable
    model: FactorModel
    pc_scores: Array  # (n_models, k)
    budgets: BudgetTable | None
    fits: tuple[BudgetFit, ...]  # (b): stated + estimated figures
    projections: tuple[Projection, ...]
    scores_source: str = ""
    budgets_source: str = ""
    fits_stated: tuple[BudgetFit, ...] = ()  # (a): stated figures only
    sensitivity: tuple[SensitivityBand, ...] = ()  # of the (b) fits

    def fit(self, component: int, language: Language) -> BudgetFit | None:
        """The (b) fit: stated + estimated figures."""
        return next((f for f in self.fits if f.component == component and f.language == language), None)

    def fit_stated(self, component: int, language: Language) -> BudgetFit | None:
        """The (a) fit: stated figures only."""
        return next((f for f in self.fits_stated if f.component == component and f.language == language), None)

    def band(self, component: int, language: Language) -> SensitivityBand | None:
        return next((b for b in self.sensitivity if b.component == component and b.language == language), None)

    def to_json(self) -> dict[str, Any]:
        """The content of analysis.json."""
        k = self.model.n_components
        budgets: dict[str, Any] = {}
        if self.budgets is not None:
            for model_id in self.table.models:
                row = self.budgets.get(model_id)
                if row is None:
                    continue
                budgets[model_id] = {
                    "params_B": row.params_b,
                    "en_tokens_B": row.en_tokens_b,
                    "ja_tokens_B": row.ja_tokens_b,
                    **{f"log10_C_{lang}": row.log10_compute(lang)[0] for lang in LANGUAGES},
                    **{f"{lang}_status": row.status(lang) for lang in LANGUAGES},
                    **{f"{lang}_rule": row.rule(lang) for lang in LANGUAGES},
                    **{f"{lang}_estimated_B": row.estimated_part_b(lang) for lang in LANGUAGES},
                    "is_estimate": row.is_estimate,
                    "confidence": row.confidence,
                    "source": row.source,
                    "notes": row.notes,
                }
        return {
            "generator": "hyoka analyze",  # report.GENERATOR: marks a directory we may replace
            "inputs": {"scores": self.scores_source, "budgets": self.budgets_source or None},
            "models": list(self.table.models),
            "benchmarks": list(self.table.benchmarks),
            "groups": dict(zip(self.table.models, self.table.groups, strict=True)),
            "n_components": k,
            "standardisation": "z = (x - mean) / std per benchmark over the reference models, population std (ddof=0)",
            "sign_convention": SIGN_CONVENTION,
            "loadings_definition": "unit-norm eigenvector weights (scikit-learn components_); pc score = z @ loadings",
            "explained_variance_ratio": [float(v) for v in self.model.explained_variance_ratio],
            "explained_variance_ratio_all_components": [float(v) for v in self.model.explained_variance_ratio_all],
            "loadings": {
                b: [float(self.model.loadings[c, j]) for c in range(k)] for j, b in enumerate(self.table.benchmarks)
            },
            "pc_scores": {m: [float(v) for v in self.pc_scores[i]] for i, m in enumerate(self.table.models)},
            "reference_mean": dict(zip(self.table.benchmarks, map(float, self.model.mean), strict=True)),
            "reference_std": dict(zip(self.table.benchmarks, map(float, self.model.scale), strict=True)),
            "compute_definition": "C = 6 * N * D FLOPs per language (N parameters, D tokens in that language); log10",
            "budget_correlations": {fit.key: _fit_json(fit) for fit in self.fits},
            "budget_correlations_stated": {fit.key: _fit_json(fit) for fit in self.fits_stated},
            "budget_sensitivity": {band.key: _band_json(band) for band in self.sensitivity},
            "budget_status_counts": self.budgets.status_counts() if self.budgets is not None else {},
            "budgets": budgets,
            "projection_method": PROJECTION_METHOD,
            "projections": {
                p.model_id: {
                    "pc_scores": list(p.values),
                    "observed_benchmarks": list(p.observed),
                    "missing_benchmarks": list(p.missing),
                    "implied_scores_for_missing": p.implied_scores,
                    "group": p.group,
                }
                for p in self.projections
            },
        }


def _fit_json(fit: BudgetFit) -> dict[str, Any]:
    paper = fit.paper
    return {
        "basis": fit.basis,
        "basis_name": BASIS_NAMES[fit.basis],
        "component": fit.component,
        "language": fit.language,
        "r": fit.r,
        "n": fit.n,
        "models": list(fit.models),
        "log10_C": list(fit.log10_compute),
        "slope": fit.slope,
        "intercept": fit.intercept,
        "excluded": dict(fit.excluded),
        "estimated_models": list(fit.estimated_models),
        "paper_r": paper[0] if paper else None,
        "paper_n": paper[1] if paper else None,
    }


def _band_json(band: SensitivityBand) -> dict[str, Any]:
    paper = band.paper
    return {
        "component": band.component,
        "language": band.language,
        "perturbation": band.description,
        "draws": band.draws,
        "valid_draws": band.valid_draws,
        "seed": band.seed,
        "half_width": band.half_width,
        "n": band.n,
        "perturbed_models": list(band.perturbed_models),
        "r_unperturbed": band.r_base,
        "r_median": band.median,
        "r_p05": band.p05,
        "r_p95": band.p95,
        "r_min": band.r_min,
        "r_max": band.r_max,
        "paper_r": paper[0] if paper else None,
        "paper_n": paper[1] if paper else None,
    }


def run_analysis(
    table: ScoreTable,
    budgets: BudgetTable | None = None,
    components: int = DEFAULT_COMPONENTS,
    new_models: Sequence[ScoreTable] = (),
    *,
    scores_source: str = "",
    budgets_source: str = "",
    sensitivity_draws: int = SENSITIVITY_DRAWS,
    sensitivity_seed: int = SENSITIVITY_SEED,
) -> AnalysisResult:
    """Fit the components on a validated table; correlate with budgets ((a) stated figures only,
    (b) stated + estimated, and the seeded sensitivity band of (b)); project new models.
    Raises NewModelProblem for a bad table of new models."""
    model, pc_scores = fit_factor_model(table, components)
    fits: tuple[BudgetFit, ...] = ()
    fits_stated: tuple[BudgetFit, ...] = ()
    bands: tuple[SensitivityBand, ...] = ()
    if budgets is not None:
        fits = tuple(fit_budgets(table, pc_scores, budgets))
        fits_stated = tuple(fit_budgets(table, pc_scores, budgets, basis="stated"))
        bands = tuple(sensitivity_bands(budgets, fits, draws=sensitivity_draws, seed=sensitivity_seed))
    projections: list[Projection] = []
    for index, new in enumerate(new_models):
        try:
            projections.extend(project(model, new))
        except TableProblem as problem:
            raise NewModelProblem(index, problem) from None
    return AnalysisResult(
        table=table,
        model=model,
        pc_scores=pc_scores,
        budgets=budgets,
        fits=fits,
        projections=tuple(projections),
        scores_source=scores_source,
        budgets_source=budgets_source,
        fits_stated=fits_stated,
        sensitivity=bands,
    )

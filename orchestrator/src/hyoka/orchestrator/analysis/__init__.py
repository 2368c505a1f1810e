"""The factor analysis of Saito et al. (arXiv 2412.14471): PCA of the per-benchmark standardised
model x benchmark score matrix, correlation of the components with English and Japanese compute
budgets ((a) stated figures only, (b) stated + estimated, and a seeded sensitivity band of (b)),
projection of new models, and the report. Pure domain code; the CLI (`hyoka analyze`)
and the gRPC servicer (`AnalysisService`) are thin front ends over `run_analysis`."""

from hyoka.orchestrator.analysis.budgets import BudgetTable, ModelBudget, build_budget_table
from hyoka.orchestrator.analysis.correlations import BudgetFit, SensitivityBand
from hyoka.orchestrator.analysis.errors import InputError, TableProblem
from hyoka.orchestrator.analysis.pca import FactorModel, Projection, fit_factor_model, project
from hyoka.orchestrator.analysis.pipeline import AnalysisResult, run_analysis
from hyoka.orchestrator.analysis.scores import ScoreTable, build_score_table

__all__ = [
    "AnalysisResult",
    "BudgetFit",
    "BudgetTable",
    "FactorModel",
    "InputError",
    "ModelBudget",
    "Projection",
    "ScoreTable",
    "SensitivityBand",
    "TableProblem",
    "build_budget_table",
    "build_score_table",
    "fit_factor_model",
    "project",
    "run_analysis",
]

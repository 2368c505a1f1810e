"""gRPC transport for the factor analysis: hyoka.v1.AnalysisService. Converts the wire schema to
the domain tables, runs `run_analysis` off the event loop, converts the result back. Validation
problems become INVALID_ARGUMENT naming the request field."""

from __future__ import annotations

import asyncio
from typing import Any

from hyoka.orchestrator.analysis import loaders
from hyoka.orchestrator.analysis.budgets import BudgetTable, ModelBudget, build_budget_table
from hyoka.orchestrator.analysis.errors import InputError, TableProblem
from hyoka.orchestrator.analysis.pca import SIGN_CONVENTION
from hyoka.orchestrator.analysis.pipeline import DEFAULT_COMPONENTS, AnalysisResult, NewModelProblem, run_analysis
from hyoka.orchestrator.analysis.scores import ScoreTable, build_score_table
from hyoka.rpc import InvalidArgument, ResourceExhausted, ServiceRegistration, handle_errors
from hyoka.v1 import analysis_pb2, analysis_pb2_grpc

SERVICE_NAME = "hyoka.v1.AnalysisService"
MAX_MODELS = 5_000
MAX_BENCHMARKS = 1_000
MAX_COMPONENTS = 50
MAX_NEW_MODELS = 5_000
MIN_COMPUTE, MAX_COMPUTE = 1.0, 1e300  # FLOPs: log10 C and the fits stay finite
# Budget CSV column -> proto field.
_BUDGET_FIELDS = {
    "model_id": "model_id",
    "params_B": "params_b",
    "en_tokens_B": "en_tokens_b",
    "ja_tokens_B": "ja_tokens_b",
    "source": "source",
    "confidence": "confidence",
}
_LANGUAGES = {"en": analysis_pb2.BUDGET_LANGUAGE_ENGLISH, "ja": analysis_pb2.BUDGET_LANGUAGE_JAPANESE}


def _optional(message: Any, name: str) -> float | None:
    return float(getattr(message, name)) if message.HasField(name) else None


def _score_table(request: analysis_pb2.AnalyzeRequest) -> tuple[ScoreTable, str]:
    which = request.WhichOneof("scores_source")
    if which is None:
        raise InvalidArgument("scores", "required: a score matrix, or use_default_scores")
    if which == "use_default_scores":
        if not request.use_default_scores:
            raise InvalidArgument("use_default_scores", "must be true when set")
        return loaders.load_default_scores(), f"default: {loaders.DEFAULT_SCORES}"
    matrix = request.scores
    if len(matrix.models) > MAX_MODELS or len(matrix.benchmarks) > MAX_BENCHMARKS:
        raise ResourceExhausted(f"at most {MAX_MODELS} models and {MAX_BENCHMARKS} benchmarks per request")
    try:
        table = build_score_table(
            [m.model_id for m in matrix.models],
            list(matrix.benchmarks),
            [list(m.scores) for m in matrix.models],
            groups=[m.group for m in matrix.models],
            display_names=[m.display_name for m in matrix.models],
        )
    except TableProblem as problem:
        raise InvalidArgument(_score_field(problem), problem.message) from None
    return table, "request"


def _score_field(problem: TableProblem) -> str:
    if problem.row is not None:
        base = f"scores.models[{problem.row}]"
        if problem.field == "score" and problem.column is not None:
            return f"{base}.scores[{problem.column}]"
        return f"{base}.{'model_id' if problem.field == 'model_id' else 'scores'}"
    if problem.field == "benchmark" and problem.column is not None:
        return f"scores.benchmarks[{problem.column}]"
    return "scores.benchmarks" if problem.field == "benchmarks" else "scores.models"


def _budgets(request: analysis_pb2.AnalyzeRequest, table: ScoreTable) -> tuple[BudgetTable | None, str]:
    which = request.WhichOneof("budgets_source")
    if which is None:
        return None, ""
    if which == "use_default_budgets":
        if not request.use_default_budgets:
            raise InvalidArgument("use_default_budgets", "must be true when set")
        if not loaders.default_budgets_available():
            raise InvalidArgument("use_default_budgets", "this server ships no default budget table")
        return loaders.load_default_budgets(set(table.models)), f"default: {loaders.DEFAULT_BUDGETS}"
    rows = [
        ModelBudget(
            model_id=row.model_id,
            params_b=_optional(row, "params_b"),
            en_tokens_b=_optional(row, "en_tokens_b"),
            ja_tokens_b=_optional(row, "ja_tokens_b"),
            source=row.source,
            confidence=row.confidence,
            is_estimate=row.is_estimate,
            notes=row.notes,
        )
        for row in request.budgets.rows
    ]
    try:
        budgets = build_budget_table(rows, set(table.models))
    except TableProblem as problem:
        field = _BUDGET_FIELDS.get(problem.field, problem.field)
        raise InvalidArgument(f"budgets.rows[{problem.row}].{field}", problem.message) from None
    _check_compute_range(rows)
    return budgets, "request"


def _check_compute_range(rows: list[ModelBudget]) -> None:
    """Every compute budget C = 6 N D must stay well inside the range of a double, or its log10
    fails (0) or the fits do (inf), also after the ±50% sensitivity perturbation: reject figures
    whose product is below 1 FLOP or above 1e300 (real budgets are around 1e20 to 1e26)."""
    for index, row in enumerate(rows):
        for language in ("en", "ja"):
            tokens = row.en_tokens_b if language == "en" else row.ja_tokens_b
            if row.params_b is None or tokens is None or tokens <= 0 or row.params_b <= 0:
                continue  # unknown or zero: the analysis excludes the row and says why
            compute = 6.0 * row.params_b * 1e9 * tokens * 1e9
            if not MIN_COMPUTE <= compute <= MAX_COMPUTE:
                raise InvalidArgument(
                    f"budgets.rows[{index}].{language}_tokens_b",
                    f"with params_b {row.params_b:g} gives a compute budget 6 N D of {compute:g} FLOPs,"
                    f" outside [{MIN_COMPUTE:g}, {MAX_COMPUTE:g}]",
                )


def _new_models(request: analysis_pb2.AnalyzeRequest, reference: ScoreTable) -> ScoreTable | None:
    if not request.new_models:
        return None
    if len(request.new_models) > MAX_NEW_MODELS:
        raise ResourceExhausted(f"at most {MAX_NEW_MODELS} new models per request")
    known = set(reference.benchmarks)
    for i, new in enumerate(request.new_models):
        for name in new.scores:
            if name not in known:
                raise InvalidArgument(f"new_models[{i}].scores[{name}]", "unknown benchmark (not in the score matrix)")
    # One table over the reference benchmarks; absent keys are missing scores.
    try:
        return build_score_table(
            [m.model_id for m in request.new_models],
            list(reference.benchmarks),
            [[m.scores.get(b, None) for b in reference.benchmarks] for m in request.new_models],
            complete=False,
        )
    except TableProblem as problem:
        raise InvalidArgument(_new_model_field(problem, reference), problem.message) from None


def _new_model_field(problem: TableProblem, reference: ScoreTable) -> str:
    if problem.row is None:
        return "new_models"
    if problem.field == "score" and problem.column is not None:
        return f"new_models[{problem.row}].scores[{reference.benchmarks[problem.column]}]"
    return f"new_models[{problem.row}].{'model_id' if problem.field == 'model_id' else 'scores'}"


def analyze(request: analysis_pb2.AnalyzeRequest) -> analysis_pb2.AnalyzeResponse:
    """The whole request, synchronously (run it in a worker thread)."""
    if request.components > MAX_COMPONENTS:
        raise InvalidArgument("components", f"at most {MAX_COMPONENTS}")
    try:
        table, scores_source = _score_table(request)
    except InputError as error:  # the shipped default could not be read: a server fault
        raise RuntimeError(str(error)) from error
    budgets, budgets_source = _budgets(request, table)
    new_table = _new_models(request, table)
    try:
        result = run_analysis(
            table,
            budgets,
            request.components or DEFAULT_COMPONENTS,
            [new_table] if new_table is not None else [],
            scores_source=scores_source,
            budgets_source=budgets_source,
        )
    except NewModelProblem as problem:
        assert new_table is not None
        raise InvalidArgument(_new_model_field(problem, table), problem.message) from None
    return to_response(result)


def to_response(result: AnalysisResult) -> analysis_pb2.AnalyzeResponse:
    k = result.model.n_components
    response = analysis_pb2.AnalyzeResponse(
        benchmarks=result.table.benchmarks,
        models=result.table.models,
        explained_variance_ratio=[float(v) for v in result.model.explained_variance_ratio],
        sign_convention=SIGN_CONVENTION,
    )
    for j, benchmark in enumerate(result.table.benchmarks):
        response.loadings.add(benchmark=benchmark, values=[float(result.model.loadings[c, j]) for c in range(k)])
    for i, model_id in enumerate(result.table.models):
        response.pc_scores.add(
            model_id=model_id, values=[float(v) for v in result.pc_scores[i]], group=result.table.groups[i]
        )
    for fit in result.fits:
        message = response.budget_correlations.add(
            component=fit.component,
            language=_LANGUAGES[fit.language],
            n=fit.n,
            models=fit.models,
            estimated_models=fit.estimated_models,
        )
        for model_id, reason in fit.excluded:
            message.excluded.add(model_id=model_id, reason=reason)
        if fit.r is not None:
            message.r = fit.r
        if fit.slope is not None and fit.intercept is not None:
            message.slope = fit.slope
            message.intercept = fit.intercept
    for p in result.projections:
        response.projections.add(
            model_id=p.model_id,
            values=p.values,
            observed_benchmarks=p.observed,
            missing_benchmarks=p.missing,
            method=p.method,
        )
    return response


class AnalysisServicer(analysis_pb2_grpc.AnalysisServiceServicer):
    @handle_errors
    async def Analyze(  # noqa: N802 - gRPC method name
        self, request: analysis_pb2.AnalyzeRequest, context: Any
    ) -> analysis_pb2.AnalyzeResponse:
        # scikit-learn work is CPU-bound: keep the event loop (health checks) responsive.
        return await asyncio.to_thread(analyze, request)


def registration() -> ServiceRegistration:
    return ServiceRegistration(
        name=SERVICE_NAME,
        add_to_server=analysis_pb2_grpc.add_AnalysisServiceServicer_to_server,
        servicer=AnalysisServicer(),
    )

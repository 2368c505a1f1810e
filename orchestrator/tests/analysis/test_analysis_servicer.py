"""AnalysisService over a real grpc.aio server (hyoka.rpc.start_server) with a real client:
the same numbers as the library, and INVALID_ARGUMENT naming the field for bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import numpy as np
import pytest

from hyoka.orchestrator.analysis import ScoreTable, run_analysis
from hyoka.orchestrator.analysis.loaders import default_budgets_available, load_default_budgets
from hyoka.orchestrator.analysis.servicer import registration
from hyoka.rpc import ChannelConfig, RunningServer, ServerConfig, aio_channel, field_violations, start_server
from hyoka.v1 import analysis_pb2, analysis_pb2_grpc


@pytest.fixture
async def stub() -> AsyncIterator[analysis_pb2_grpc.AnalysisServiceStub]:
    running: RunningServer = await start_server(ServerConfig(grace_seconds=0), [registration()])
    async with aio_channel(ChannelConfig(f"127.0.0.1:{running.port}")) as channel:
        yield analysis_pb2_grpc.AnalysisServiceStub(channel)
    await running.stop(0)


def matrix(table: ScoreTable) -> analysis_pb2.ScoreMatrix:
    return analysis_pb2.ScoreMatrix(
        benchmarks=table.benchmarks,
        models=[
            analysis_pb2.ModelScores(model_id=m, scores=table.values[i].tolist(), group=table.groups[i])
            for i, m in enumerate(table.models)
        ],
    )


async def test_default_scores_give_the_papers_components(stub: analysis_pb2_grpc.AnalysisServiceStub) -> None:
    reply = await stub.Analyze(analysis_pb2.AnalyzeRequest(use_default_scores=True), timeout=30)
    assert list(reply.explained_variance_ratio) == pytest.approx([0.652, 0.154, 0.070], abs=0.002)
    pc2 = sorted(reply.loadings, key=lambda loading: -loading.values[1])[:3]
    assert {loading.benchmark for loading in pc2} == {"niilc", "wmt20_en_ja", "jemhopqa"}
    assert len(reply.pc_scores) == 35 and len(reply.budget_correlations) == 0
    assert "sum to a positive number" in reply.sign_convention


def _budget(model_id: str, params: float, en: float | None, ja: float | None, estimate: bool = False) -> Any:
    return analysis_pb2.ModelBudget(
        model_id=model_id,
        params_b=params,
        en_tokens_b=en,
        ja_tokens_b=ja,
        source="s",
        confidence="recalled",
        is_estimate=estimate,
    )


async def test_matrix_budgets_and_projection_match_the_library(
    stub: analysis_pb2_grpc.AnalysisServiceStub, paper_table: ScoreTable
) -> None:
    budgets = [
        _budget("meta-llama/Llama-2-7b-hf", 6.7, 1794, 2, estimate=True),
        _budget("meta-llama/Llama-2-70b-hf", 70, 1794, 2),
        _budget("llm-jp/llm-jp-13b-v2.0", 13, 115, 132.1),
        _budget("tokyotech-llm/Swallow-7b-hf", 6.7, 1804, 92),
        _budget("Qwen/Qwen2-7B", 7.6, None, None),
    ]
    new = analysis_pb2.NewModelScores(
        model_id="new", scores={"niilc": 0.6, "mmlu": 0.5, "gsm8k": 0.4, "humaneval": 0.2}
    )
    request = analysis_pb2.AnalyzeRequest(
        scores=matrix(paper_table), budgets=analysis_pb2.BudgetTable(rows=budgets), new_models=[new]
    )
    reply = await stub.Analyze(request, timeout=30)
    expected = run_analysis(paper_table)
    np.testing.assert_allclose([list(s.values) for s in reply.pc_scores], expected.pc_scores, atol=1e-9)
    pc1_en = next(
        c for c in reply.budget_correlations if c.component == 1 and c.language == analysis_pb2.BUDGET_LANGUAGE_ENGLISH
    )
    assert pc1_en.n == 4 and pc1_en.HasField("r")
    assert list(pc1_en.estimated_models) == ["meta-llama/Llama-2-7b-hf"]
    assert {e.model_id: e.reason for e in pc1_en.excluded}["Qwen/Qwen2-7B"] == "en_tokens_B unknown"
    assert len(reply.budget_correlations) == 6  # 3 components x 2 languages
    [projection] = reply.projections
    assert sorted(projection.observed_benchmarks) == ["gsm8k", "humaneval", "mmlu", "niilc"]
    assert len(projection.missing_benchmarks) == 15 and len(projection.values) == 3


@pytest.mark.skipif(not default_budgets_available(), reason="budgets_35.csv not shipped yet")
async def test_default_budgets(stub: analysis_pb2_grpc.AnalysisServiceStub, paper_table: ScoreTable) -> None:
    request = analysis_pb2.AnalyzeRequest(use_default_scores=True, use_default_budgets=True)
    reply = await stub.Analyze(request, timeout=30)
    expected = run_analysis(paper_table, load_default_budgets(set(paper_table.models)))
    for correlation in reply.budget_correlations:
        language = "en" if correlation.language == analysis_pb2.BUDGET_LANGUAGE_ENGLISH else "ja"
        fit = expected.fit(correlation.component, language)
        assert fit is not None and list(correlation.models) == list(fit.models)
        assert (correlation.r if correlation.HasField("r") else None) == (
            pytest.approx(fit.r) if fit.r is not None else None
        )


def _bad_value(table: ScoreTable) -> analysis_pb2.AnalyzeRequest:
    request = analysis_pb2.AnalyzeRequest(scores=matrix(table))
    request.scores.models[4].scores[2] = 1.5
    return request


def _repeat_model(table: ScoreTable) -> analysis_pb2.AnalyzeRequest:
    request = analysis_pb2.AnalyzeRequest(scores=matrix(table))
    request.scores.models[7].model_id = request.scores.models[1].model_id
    return request


def _repeat_benchmark(table: ScoreTable) -> analysis_pb2.AnalyzeRequest:
    request = analysis_pb2.AnalyzeRequest(scores=matrix(table))
    request.scores.benchmarks[3] = request.scores.benchmarks[0]
    return request


def _short_row(table: ScoreTable) -> analysis_pb2.AnalyzeRequest:
    request = analysis_pb2.AnalyzeRequest(scores=matrix(table))
    del request.scores.models[2].scores[-1]
    return request


def _two_models(table: ScoreTable) -> analysis_pb2.AnalyzeRequest:
    request = analysis_pb2.AnalyzeRequest(scores=matrix(table))
    del request.scores.models[2:]
    return request


def _nan(table: ScoreTable) -> analysis_pb2.AnalyzeRequest:
    request = analysis_pb2.AnalyzeRequest(scores=matrix(table))
    request.scores.models[0].scores[0] = float("nan")
    return request


def _unknown_budget_model(table: ScoreTable) -> analysis_pb2.AnalyzeRequest:
    row = analysis_pb2.ModelBudget(model_id="nobody/unknown", params_b=1, source="s", confidence="verified")
    return analysis_pb2.AnalyzeRequest(use_default_scores=True, budgets=analysis_pb2.BudgetTable(rows=[row]))


def _negative_tokens(table: ScoreTable) -> analysis_pb2.AnalyzeRequest:
    ok = analysis_pb2.ModelBudget(model_id=table.models[0], params_b=1, source="s", confidence="verified")
    bad = analysis_pb2.ModelBudget(
        model_id=table.models[1], params_b=1, ja_tokens_b=-5, source="s", confidence="verified"
    )
    return analysis_pb2.AnalyzeRequest(use_default_scores=True, budgets=analysis_pb2.BudgetTable(rows=[ok, bad]))


def _unknown_new_benchmark(table: ScoreTable) -> analysis_pb2.AnalyzeRequest:
    new = analysis_pb2.NewModelScores(model_id="n", scores={"niilc": 0.5, "jglue_marc": 0.5})
    return analysis_pb2.AnalyzeRequest(use_default_scores=True, new_models=[new])


def _sparse_new_model(table: ScoreTable) -> analysis_pb2.AnalyzeRequest:
    new = analysis_pb2.NewModelScores(model_id="n", scores={"niilc": 0.5})
    return analysis_pb2.AnalyzeRequest(
        use_default_scores=True,
        new_models=[analysis_pb2.NewModelScores(model_id="ok", scores={b: 0.5 for b in table.benchmarks}), new],
    )


def _new_score_out_of_range(table: ScoreTable) -> analysis_pb2.AnalyzeRequest:
    new = analysis_pb2.NewModelScores(model_id="n", scores={"niilc": 0.5, "mmlu": 7.0, "bbh": 0.1})
    return analysis_pb2.AnalyzeRequest(use_default_scores=True, new_models=[new])


@pytest.mark.parametrize(
    ("build", "field", "words"),
    [
        (lambda t: analysis_pb2.AnalyzeRequest(), "scores", "required"),
        (_bad_value, "scores.models[4].scores[2]", "outside [0, 1]"),
        (_nan, "scores.models[0].scores[0]", "not a finite number"),
        (_repeat_model, "scores.models[7].model_id", "repeated model"),
        (_repeat_benchmark, "scores.benchmarks[3]", "repeated benchmark"),
        (_short_row, "scores.models[2].scores", "18 scores for 19 benchmarks"),
        (_two_models, "scores.models", "at least 3"),
        (_unknown_budget_model, "budgets.rows[0].model_id", "unknown model"),
        (_negative_tokens, "budgets.rows[1].ja_tokens_b", "must not be negative"),
        (_unknown_new_benchmark, "new_models[0].scores[jglue_marc]", "unknown benchmark"),
        (_sparse_new_model, "new_models[1].scores", "needs at least 3"),
        (_new_score_out_of_range, "new_models[0].scores[mmlu]", "outside [0, 1]"),
        (lambda t: analysis_pb2.AnalyzeRequest(use_default_scores=True, components=99), "components", "at most"),
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field(
    stub: analysis_pb2_grpc.AnalysisServiceStub,
    paper_table: ScoreTable,
    build,
    field: str,
    words: str,  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Analyze(build(paper_table), timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(raised.value)
    assert field in violations, violations
    assert words in violations[field]
    # The server is still serving after bad input.
    reply = await stub.Analyze(analysis_pb2.AnalyzeRequest(use_default_scores=True), timeout=30)
    assert len(reply.explained_variance_ratio) == 3


async def test_oversized_matrix_is_resource_exhausted(stub: analysis_pb2_grpc.AnalysisServiceStub) -> None:
    from hyoka.orchestrator.analysis.servicer import MAX_MODELS

    models = [analysis_pb2.ModelScores(model_id=f"m{i}", scores=[0.5]) for i in range(MAX_MODELS + 1)]
    request = analysis_pb2.AnalyzeRequest(scores=analysis_pb2.ScoreMatrix(benchmarks=["a"], models=models))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Analyze(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

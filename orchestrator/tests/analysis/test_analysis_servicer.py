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


@pytest.mark.parametrize(("params", "tokens"), [(1e300, 1e300), (1.7e308, 1.0), (1e-300, 1e-300)])
async def test_compute_budget_outside_a_double_is_invalid_argument(
    stub: analysis_pb2_grpc.AnalysisServiceStub, paper_table: ScoreTable, params: float, tokens: float
) -> None:
    """Found by tests/fuzz: 6 N D overflowing (or underflowing) a double made the fits raise
    LinAlgError (INTERNAL); now it names the row."""
    rows = [
        analysis_pb2.ModelBudget(
            model_id=m, params_b=7, en_tokens_b=100.0 * (i + 1), ja_tokens_b=1, source="s", confidence="verified"
        )
        for i, m in enumerate(paper_table.models[:5])
    ]
    rows[2].params_b, rows[2].en_tokens_b = params, tokens
    request = analysis_pb2.AnalyzeRequest(use_default_scores=True, budgets=analysis_pb2.BudgetTable(rows=rows))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Analyze(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "outside" in field_violations(raised.value)["budgets.rows[2].en_tokens_b"]


@pytest.mark.parametrize("payload", [b"\xff\xff\xff", b"\x10\x01\x1a\x05\x0a\x03\x0a\x01\xff"])
async def test_undecodable_request_is_invalid_argument(payload: bytes) -> None:
    """Bytes that are not an AnalyzeRequest (corrupt, or a string that is not UTF-8) answer
    INVALID_ARGUMENT on the field "request", not UNKNOWN (found by tests/fuzz)."""
    running: RunningServer = await start_server(ServerConfig(grace_seconds=0), [registration()])
    try:
        async with aio_channel(ChannelConfig(f"127.0.0.1:{running.port}")) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await channel.unary_unary("/hyoka.v1.AnalysisService/Analyze")(payload, timeout=30)
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "request" in field_violations(raised.value)
            reply = await analysis_pb2_grpc.AnalysisServiceStub(channel).Analyze(
                analysis_pb2.AnalyzeRequest(use_default_scores=True), timeout=30
            )
            assert len(reply.explained_variance_ratio) == 3
    finally:
        await running.stop(0)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from hyoka.rpc.testing import make_test_pki

    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.parametrize("token", [None, "analysis-token"])
async def test_analysis_over_mutual_tls(pki: Any, token: str | None) -> None:
    """AnalysisService behind mTLS (and a token or not), through hyoka.rpc's own channels: a client
    with a certificate is served, health needs no token, clients without a certificate and
    plaintext clients are refused."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    config = ServerConfig(auth_token=token, tls=pki.server_tls(), grace_seconds=0)
    running: RunningServer = await start_server(config, [registration()])
    target = f"127.0.0.1:{running.port}"
    request = analysis_pb2.AnalyzeRequest(use_default_scores=True)
    try:
        async with aio_channel(ChannelConfig(target, auth_token=token, tls=pki.client_tls())) as channel:
            reply = await analysis_pb2_grpc.AnalysisServiceStub(channel).Analyze(request, timeout=30)
            assert len(reply.explained_variance_ratio) == 3
        async with aio_channel(ChannelConfig(target, tls=pki.client_tls())) as no_token:
            health = await health_pb2_grpc.HealthStub(no_token).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
        for tls in (None, pki.client_tls(with_cert=False)):
            async with aio_channel(ChannelConfig(target, auth_token=token, tls=tls)) as refused:
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await analysis_pb2_grpc.AnalysisServiceStub(refused).Analyze(request, timeout=10)
                assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await running.stop(0)


def test_serve_cli_tls_variables_match_hyoka_rpc() -> None:
    from hyoka.orchestrator.cli.serve import _TLS_ENV
    from hyoka.rpc.tls import SERVER_ENV

    assert _TLS_ENV == SERVER_ENV


@pytest.mark.slow
def test_hyoka_serve_with_mtls_flags(pki: Any) -> None:
    """`hyoka serve --tls-cert --tls-key --tls-client-ca --health-port` as a real process."""
    import os
    import re
    import subprocess
    import sys
    import threading

    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from hyoka.rpc import sync_channel

    args = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), "--tls-client-ca", str(pki.ca)]
    process = subprocess.Popen(
        [sys.executable, "-c", "from hyoka.orchestrator.cli import main; main()", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "HYOKA_HEALTH_PORT": "0", "HYOKA_AUTH_TOKEN": "cli-token"},
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline() if process.stdout else ""))
    reader.start()
    reader.join(60)
    try:
        match = re.search(r"listening on 127\.0\.0\.1:(\d+) .*plaintext health on port (\d+)", "".join(lines))
        assert match, lines
        target = f"127.0.0.1:{match[1]}"
        with sync_channel(ChannelConfig(target, auth_token="cli-token", tls=pki.client_tls())) as channel:
            reply = analysis_pb2_grpc.AnalysisServiceStub(channel).Analyze(
                analysis_pb2.AnalyzeRequest(use_default_scores=True), timeout=60
            )
            assert len(reply.explained_variance_ratio) == 3
        with sync_channel(ChannelConfig(target, auth_token="cli-token")) as plaintext:
            with pytest.raises(grpc.RpcError) as raised:
                analysis_pb2_grpc.AnalysisServiceStub(plaintext).Analyze(analysis_pb2.AnalyzeRequest(), timeout=10)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        with sync_channel(ChannelConfig(f"127.0.0.1:{match[2]}")) as probe:
            status = health_pb2_grpc.HealthStub(probe).Check(health_pb2.HealthCheckRequest(), timeout=10).status
            assert status == health_pb2.HealthCheckResponse.SERVING
    finally:
        process.terminate()
        process.wait(timeout=30)

"""`--suite paper` end to end: every one of the 19 benchmarks through the real metrics and sandbox
servers with a scripted model, into a scores.csv with the published table's 19 columns, which
`hyoka analyze --new-model` places among the 35 models without gaps."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyoka.orchestrator.backends.base import GenerationRequest, LoglikelihoodRequest
from hyoka.orchestrator.backends.scripted import ScriptedBackend
from hyoka.orchestrator.cli import app
from hyoka.orchestrator.runner.evaluation import EvalConfig, evaluate
from hyoka.orchestrator.runner.results import BENCHMARK_COLUMNS
from hyoka.orchestrator.services.local import LocalService
from hyoka.orchestrator.tasks import suite_tasks


def _answer(r: GenerationRequest) -> str:
    """A plausible answer in each task's format, so that every metric sees real text."""
    if r.n > 1:  # HumanEval / JHumanEval: a body that runs (and fails most tests)
        return "    return None\n"
    return "The answer is 42. #### 42\n"


def _logprob(r: LoglikelihoodRequest) -> float:
    return -0.5 * len(r.continuation)  # the shortest choice wins: a deterministic, non-trivial pick


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_suite_paper_fills_every_column_and_places_the_model(
    tmp_path: Path, paper_suite_data_dir: Path, metrics_server: LocalService, sandbox_server: LocalService
) -> None:
    suite_dir = paper_suite_data_dir
    out = tmp_path / "run"
    backend = ScriptedBackend(generations=_answer, loglikelihoods=_logprob, max_concurrency=4)
    config = EvalConfig(
        model="scripted:suite",
        tasks=suite_tasks("paper"),
        out=out,
        data_dir=suite_dir,
        limit=1,
        metrics_url=metrics_server.target,
        sandbox_url=sandbox_server.target,
        tokenizer="smollm2",  # mgsm_ja and xlsum_ja count tokens; the scripted model has none
        model_id="scripted-suite",
    )
    outcome = await evaluate(config, backend=backend)

    assert [r.task for r in outcome.results] == list(BENCHMARK_COLUMNS)
    for result in outcome.results:
        assert result.num_items == 1 and 0.0 <= result.score <= 1.0 and not math.isnan(result.score), result
        if result.metric not in ("acc", "pass_at_1"):
            assert result.signatures, f"{result.task}: no metric signature"
    with (out / "scores.csv").open(encoding="utf-8") as f:
        header, row = list(csv.reader(f))
    assert header == ["model_id", *BENCHMARK_COLUMNS]
    assert all(0.0 <= float(v) <= 1.0 for v in row[1:])

    report = tmp_path / "report"
    result = CliRunner().invoke(app, ["analyze", "--new-model", str(out / "scores.csv"), "--out", str(report)])
    assert result.exit_code == 0, result.output
    analysis = json.loads((report / "analysis.json").read_text(encoding="utf-8"))
    placed = analysis["projections"]["scripted-suite"]
    assert placed["missing_benchmarks"] == [] and len(placed["observed_benchmarks"]) == 19


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_smollm2_on_the_paper_suite(
    tmp_path: Path, paper_suite_data_dir: Path, metrics_server: LocalService, sandbox_server: LocalService
) -> None:
    """The real CPU model through every request kind of the 19 benchmarks: greedy generations,
    log-likelihoods, both at once (SQuAD2), sampled code, the model's tokenizer (MGSM, XL-Sum)."""
    out = tmp_path / "run"
    config = EvalConfig(
        model="hf-local:smollm2",
        tasks=suite_tasks("paper"),
        out=out,
        data_dir=paper_suite_data_dir,
        limit=1,
        metrics_url=metrics_server.target,
        sandbox_url=sandbox_server.target,
    )
    outcome = await evaluate(config)
    assert [r.task for r in outcome.results] == list(BENCHMARK_COLUMNS)
    for result in outcome.results:
        assert 0.0 <= result.score <= 1.0 and not math.isnan(result.score), result
    records = {
        task: json.loads((out / "records" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()[0])
        for task in BENCHMARK_COLUMNS
    }
    squad = records["squad2"]["output"]
    assert isinstance(squad, dict) and len(squad["completions"]) == 1 and squad["logprobs"][0] < 0
    for task in ("openbookqa", "hellaswag", "mmlu", "xwino_en"):
        logprobs = records[task]["output"]
        assert isinstance(logprobs, list) and all(lp < 0 for lp in logprobs), task
    for task in ("humaneval", "jhumaneval"):
        assert len(records[task]["extracted"]) == 10
    by_task = {r.task: r for r in outcome.results}
    assert "tok:pretokenized" in by_task["xlsum_ja"].signatures[0]
    assert by_task["xlsum_ja"].signatures[0].endswith("|model_tok:smollm2")
    assert "tok:nagisa-13a" in by_task["wmt20_en_ja"].signatures[0]
    # MGSM's shots are fitted to the model's context with its tokenizer: all four fit SmolLM2's.
    assert records["mgsm_ja"]["prompt"].count("問題：") == 5

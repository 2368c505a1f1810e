"""End to end: `hyoka eval`'s engine on the four tasks through the real metrics and sandbox gRPC
servers. SmolLM2 (the real CPU model) checks structure and ranges; a scripted model that returns
HumanEval's and JHumanEval's canonical solutions must get pass@1 = 1.0 through the same path."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from hyoka.orchestrator.backends.base import GenerationRequest
from hyoka.orchestrator.backends.scripted import ScriptedBackend
from hyoka.orchestrator.runner.evaluation import EvalConfig, evaluate
from hyoka.orchestrator.services.local import LocalService
from hyoka.orchestrator.tasks import get_task

FOUR = ("niilc", "jcommonsenseqa", "xwino_en", "jhumaneval")


def _records(out: Path, task: str) -> list[dict[str, object]]:
    lines = (out / "records" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_smollm2_on_the_four_tasks(
    tmp_path: Path, data_dir: Path, metrics_server: LocalService, sandbox_server: LocalService
) -> None:
    limit = 2  # JHumanEval: 10 sampled completions of up to 1024 tokens per item on the CPU
    config = EvalConfig(
        model="hf-local:smollm2",
        tasks=FOUR,
        out=tmp_path,
        data_dir=data_dir,
        limit=limit,
        metrics_url=metrics_server.target,
        sandbox_url=sandbox_server.target,
    )
    outcome = await evaluate(config)

    assert [r.task for r in outcome.results] == list(FOUR)
    for r in outcome.results:
        assert r.num_items == limit and 0.0 <= r.score <= 1.0 and not math.isnan(r.score)
    by_task = {r.task: r for r in outcome.results}
    assert by_task["niilc"].signatures and "fuzzywuzzy" in by_task["niilc"].signatures[0].lower()

    niilc = _records(tmp_path, "niilc")
    assert len(niilc) == limit
    for rec in niilc:
        assert isinstance(rec["output"], str) and isinstance(rec["extracted"], str)
        assert "\n\n" not in rec["extracted"]
        assert 0.0 <= float(rec["score"]) <= 1.0  # type: ignore[arg-type]
    for rec in _records(tmp_path, "jcommonsenseqa"):
        assert float(rec["score"]) in (0.0, 1.0)  # type: ignore[arg-type]
    for rec in _records(tmp_path, "xwino_en"):
        logprobs = rec["output"]
        assert isinstance(logprobs, list) and len(logprobs) == 2 and all(lp < 0 for lp in logprobs)
        assert rec["extracted"] in ("0", "1")
    for rec in _records(tmp_path, "jhumaneval"):
        samples = rec["extracted"]
        assert isinstance(samples, list) and len(samples) == 10
        details = rec["details"]
        assert isinstance(details, dict) and len(details["passed"]) == 10
        assert float(rec["score"]) == pytest.approx(sum(details["passed"]) / 10)  # type: ignore[arg-type]

    with (tmp_path / "scores.csv").open(encoding="utf-8") as f:
        header, row = list(csv.reader(f))
    assert header == ["model_id", "jcommonsenseqa", "niilc", "jhumaneval", "xwino_en"]
    assert len(row) == 5 and all(0.0 <= float(v) <= 1.0 for v in row[1:])


# JHumanEval/64's prompt is not valid Python upstream (the translation lost the newline after the
# closing quotes of FIX = """...""", so `"""def vowels_count(s):` is a syntax error): no completion
# can pass it, in the paper's harness as here. HumanEval has no such problem.
BROKEN_PROMPTS = {"jhumaneval": {"JHumanEval/64"}, "humaneval": set()}


@pytest.mark.slow
@pytest.mark.parametrize("task_name", ["jhumaneval", "humaneval"])
async def test_canonical_solutions_pass_at_1_is_one(
    tmp_path: Path, data_dir: Path, sandbox_server: LocalService, task_name: str
) -> None:
    limit = 164  # all problems (1,640 sandboxed programs: ~10 s on 2 idle cores)
    broken_ids = BROKEN_PROMPTS[task_name]
    task = get_task(task_name)
    items = task.items(task.load(data_dir), limit=limit)
    canonical = {it.prompt: it.gold for it in items}

    def solve(r: GenerationRequest) -> str:
        return canonical[r.context]

    backend = ScriptedBackend(generations=solve, max_concurrency=4)
    config = EvalConfig(
        model="scripted:canonical",
        tasks=(task_name,),
        out=tmp_path,
        data_dir=data_dir,
        limit=limit,
        sandbox_url=sandbox_server.target,
    )
    outcome = await evaluate(config, backend=backend)
    (result,) = outcome.results
    assert result.num_items == limit
    assert len(backend.generation_calls) == limit and all(r.n == 10 for r in backend.generation_calls)
    records = _records(tmp_path, task_name)
    good = [r for r in records if r["item_id"] not in broken_ids]
    assert len(good) == limit - len(broken_ids)
    assert all(r["score"] == 1.0 for r in good), [r["item_id"] for r in good if r["score"] != 1.0]
    assert all(r["score"] == 0.0 for r in records if r["item_id"] in broken_ids)
    assert result.score == pytest.approx((limit - len(broken_ids)) / limit)


async def test_niilc_char_f1_through_the_metrics_service(
    tmp_path: Path, data_dir: Path, metrics_server: LocalService
) -> None:
    """Scripted NIILC answers: the text before the blank line, NFKC-normalised, scored by the
    metrics service exactly as llm-jp-eval's fuzzywuzzy token_sort_ratio / 100."""
    from fuzzywuzzy import fuzz

    task = get_task("niilc")
    items = task.items(task.load(data_dir), limit=4)
    outputs = {
        items[0].prompt: items[0].gold + "\n\n### 入力:\n質問：",  # right, then the model runs on
        items[1].prompt: "ＡＢＣ１２３",  # full-width: NFKC makes it ABC123
        items[2].prompt: items[2].gold[:1] + "株式会社",  # partly right
        items[3].prompt: "\n\n" + items[3].gold,  # blank line first: empty answer
    }
    backend = ScriptedBackend(generations=lambda r: outputs[r.context], max_concurrency=4)
    config = EvalConfig(
        model="scripted:niilc",
        tasks=("niilc",),
        out=tmp_path,
        data_dir=data_dir,
        limit=4,
        metrics_url=metrics_server.target,
    )
    outcome = await evaluate(config, backend=backend)
    records = sorted(_records(tmp_path, "niilc"), key=lambda r: int(r["index"]))  # type: ignore[call-overload]
    extracted = [items[0].gold, "ABC123", items[2].gold[:1] + "株式会社", ""]
    assert [r["extracted"] for r in records] == extracted
    expected = [fuzz.token_sort_ratio(p, it.gold) / 100 for p, it in zip(extracted, items, strict=True)]
    assert [r["score"] for r in records] == pytest.approx(expected)
    assert records[0]["score"] == 1.0
    assert outcome.results[0].score == pytest.approx(sum(expected) / 4)


async def test_servers_started_for_a_run_are_stopped_after_it(tmp_path: Path, data_dir: Path) -> None:
    """Without service URLs the run starts `hyoka-metrics serve` itself and stops it at the end."""
    from hyoka.orchestrator.services import MetricsClient, ServiceUnavailableError

    task = get_task("niilc")
    (item,) = task.items(task.load(data_dir), limit=1)
    backend = ScriptedBackend(generations={item.prompt: item.gold})
    config = EvalConfig(model="scripted:one", tasks=("niilc",), out=tmp_path, data_dir=data_dir, limit=1)
    outcome = await evaluate(config, backend=backend)
    assert outcome.results[0].score == 1.0
    target = outcome.services["metrics"].removesuffix(" (local)")
    assert outcome.services["metrics"].endswith(" (local)") and "sandbox" not in outcome.services
    assert (tmp_path / "logs" / "hyoka-metrics.log").is_file()
    async with MetricsClient(target) as client:
        with pytest.raises(ServiceUnavailableError):
            await client.health(deadline=1.0)


async def test_service_errors_name_the_service_and_field(
    metrics_server: LocalService, sandbox_server: LocalService
) -> None:
    from hyoka.orchestrator.services import MetricsClient, SandboxClient, ServiceCallError
    from hyoka.orchestrator.tasks import CodeSubmission

    async with MetricsClient(metrics_server.target) as metrics:
        with pytest.raises(ServiceCallError, match=r"metrics Score\(no_such_metric\): .*metric"):
            await metrics.score("no_such_metric", ["a"], [["a"]])
    async with SandboxClient(sandbox_server.target) as sandbox:
        empty = CodeSubmission("p", "def f():\n", (), "def check(c):\n    pass\n", "f")
        with pytest.raises(ServiceCallError, match=r"CheckCompletions\(p\): INVALID_ARGUMENT.*completions"):
            await sandbox.check([empty])


async def test_outputs_survive_a_scoring_failure(tmp_path: Path, data_dir: Path, metrics_server: LocalService) -> None:
    """Generation is kept before scoring: when scoring fails, the rerun scores the kept outputs
    without asking the model again."""
    from hyoka.orchestrator.runner.engine import run_task
    from hyoka.orchestrator.services import MetricsClient
    from hyoka.orchestrator.tasks import Scorers

    task = get_task("niilc")
    items = task.items(task.load(data_dir), limit=3)
    first = ScriptedBackend(generations={it.prompt: it.gold for it in items}, max_concurrency=3)
    path = tmp_path / "niilc.jsonl"
    with pytest.raises(RuntimeError, match="needs the metrics service"):
        await run_task(task, items, first, Scorers(), path, model="scripted")
    assert len(first.generation_calls) == 3
    assert not path.exists() or path.read_text(encoding="utf-8") == ""

    second = ScriptedBackend(generations={})  # would fail if asked anything
    async with MetricsClient(metrics_server.target) as metrics:
        result = await run_task(task, items, second, Scorers(metrics=metrics), path, model="scripted")
    assert second.generation_calls == []
    assert result.score == 1.0 and result.num_items == 3


async def test_local_servers_ignore_exported_server_settings(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's exported token and TLS settings are for servers they run themselves: the servers
    a run starts on loopback must not pick them up (they would refuse this run's plaintext client)."""
    monkeypatch.setenv("HYOKA_AUTH_TOKEN", "exported-token")
    monkeypatch.setenv("HYOKA_TLS_CERT", str(tmp_path / "no-such-cert.pem"))
    monkeypatch.setenv("HYOKA_TLS_KEY", str(tmp_path / "no-such-key.pem"))
    monkeypatch.setenv("HYOKA_HEALTH_PORT", "1")
    task = get_task("niilc")
    (item,) = task.items(task.load(data_dir), limit=1)
    backend = ScriptedBackend(generations={item.prompt: item.gold})
    config = EvalConfig(model="scripted:one", tasks=("niilc",), out=tmp_path, data_dir=data_dir, limit=1)
    outcome = await evaluate(config, backend=backend)
    assert outcome.results[0].score == 1.0

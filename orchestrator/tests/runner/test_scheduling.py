"""Scheduling against the simulated OpenAI-compatible server (`backends/testing/sim_server.py`):
the window stays full while work remains (asserted on what the server observed, not on time),
tasks share it, replicas both get work, 429s are retried without answering anything twice, and
bad input is a clear error. (A run killed with SIGKILL: `test_store_resume.py`.)"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from hyoka.orchestrator.backends import BackendConfigError, create_backend, parse_model_spec
from hyoka.orchestrator.backends.base import GenerationRequest, LoglikelihoodRequest
from hyoka.orchestrator.backends.replicas import ReplicaSet
from hyoka.orchestrator.backends.scripted import ScriptedBackend
from hyoka.orchestrator.backends.testing.sim_server import LatencyModel, SimServer
from hyoka.orchestrator.runner.engine import DEFAULT_STORE_NAME, RunStats, TaskJob, run_task, run_tasks
from hyoka.orchestrator.runner.evaluation import EvalConfig, EvalInputError, evaluate
from hyoka.orchestrator.runner.store import StoredOutput, open_store
from hyoka.orchestrator.tasks import Item, Scorers, get_task

FAST = LatencyModel(seconds_per_token=0.0005, short_tokens=(2, 10), long_tokens=(40, 80))


def _items(data_dir: Path, name: str, limit: int) -> list[Item]:
    task = get_task(name)
    return task.items(task.load(data_dir), limit=limit)


def _stored_outputs(folder: Path, model: str, task: str) -> list[StoredOutput]:
    """The outputs in the default store of records files in `folder`."""
    with open_store(None, default_path=folder / DEFAULT_STORE_NAME) as store:
        return store.load_outputs(model, task)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


@pytest.mark.timeout(120)
async def test_window_stays_full_across_tasks_until_the_work_runs_out(
    data_dir: Path, tmp_path: Path, inprocess_metrics: Any
) -> None:
    """The server answers only while it holds its 4 slots' worth of requests: a client that waits
    for a batch, or for a task to finish, before sending more would stall here."""
    jcqa, jemhop = _items(data_dir, "jcommonsenseqa", 10), _items(data_dir, "jemhopqa", 7)
    total = len(jcqa) + len(jemhop)
    with SimServer(4, hold_until_full=True, expected_total=total) as server:
        backend = create_backend("openai-completions", base_url=server.url)
        jobs = [
            TaskJob(get_task("jcommonsenseqa"), jcqa, tmp_path / "jcommonsenseqa.jsonl"),
            TaskJob(get_task("jemhopqa"), jemhop, tmp_path / "jemhopqa.jsonl"),
        ]
        stats = RunStats()
        results = await run_tasks(jobs, backend, Scorers(metrics=inprocess_metrics), model="sim", stats=stats)
        await backend.aclose()
    assert stats.window == 4  # sized from the server's own limit (/get_server_info)
    assert [r.task for r in results] == ["jcommonsenseqa", "jemhopqa"] and all(r.num_items for r in results)
    # Every answer before the last request arrived was given with all 4 slots held, across the
    # boundary between the two tasks; then the last 4 drain.
    assert server.release_levels[: total - 3] == [4] * (total - 3)
    assert server.max_busy == 4 and sorted(server.answered.values()) == [1] * total
    assert len(_lines(tmp_path / "jcommonsenseqa.jsonl")) == 10 and len(_lines(tmp_path / "jemhopqa.jsonl")) == 7


@pytest.mark.timeout(120)
async def test_a_sampled_request_holds_n_slots(data_dir: Path, tmp_path: Path) -> None:
    """Concurrency counts sequences: with a window of 4, a request for 3 samples leaves room for
    one single request beside it, never more."""
    in_flight = peak = 0

    class Slow(ScriptedBackend):
        async def generate_until(self, requests: Any) -> list[list[str]]:
            nonlocal in_flight, peak
            in_flight += sum(r.n for r in requests)
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= sum(r.n for r in requests)
            return await super().generate_until(requests)

    base = _items(data_dir, "jcommonsenseqa", 6)
    items = [
        Item(it.index, it.id, it.prompt, it.gold, GenerationRequest(it.prompt, n=3 if i % 2 else 1, temperature=0.5))
        for i, it in enumerate(base)
    ]
    stats = RunStats()

    class Metrics:
        async def score(self, metric: str, predictions: Any, references: Any, options: Any = None) -> Any:
            from hyoka.orchestrator.tasks import TextScore

            return [TextScore(0.0, "sig") for _ in predictions]

    jobs = [TaskJob(get_task("jcommonsenseqa"), items, tmp_path / "r.jsonl")]
    await run_tasks(jobs, Slow(default="1", max_concurrency=4), Scorers(metrics=Metrics()), model="s", stats=stats)
    assert peak == 4 and stats.peak_in_flight == 4


@pytest.mark.timeout(120)
async def test_an_item_with_a_generation_and_loglikelihoods_gets_both(
    data_dir: Path, tmp_path: Path, inprocess_metrics: Any
) -> None:
    """SQuAD2-style items (a generation and log-likelihood requests) through the window."""
    base = _items(data_dir, "jcommonsenseqa", 3)
    items = [
        Item(
            it.index,
            it.id,
            it.prompt,
            it.gold,
            GenerationRequest(it.prompt),
            (LoglikelihoodRequest(it.prompt, " yes"), LoglikelihoodRequest(it.prompt, " no")),
        )
        for it in base
    ]
    golds = {it.prompt: it.gold for it in items}
    backend = ScriptedBackend(
        generations=lambda r: golds[r.context],
        loglikelihoods=lambda r: -1.0 if r.continuation == " yes" else -2.0,
        max_concurrency=2,
    )
    path = tmp_path / "r.jsonl"
    result = await run_task(
        get_task("jcommonsenseqa"), items, backend, Scorers(metrics=inprocess_metrics), path, model="s"
    )
    assert result.score == 1.0 and len(backend.generation_calls) == 3 and len(backend.loglikelihood_calls) == 6
    outputs = [o.output for o in _stored_outputs(tmp_path, "s", "jcommonsenseqa")]
    assert len(outputs) == 3
    assert all(o["logprobs"] == [-1.0, -2.0] and len(o["completions"]) == 1 for o in outputs)


@pytest.mark.timeout(120)
async def test_replicas_both_receive_work_each_up_to_its_limit(
    data_dir: Path, tmp_path: Path, inprocess_metrics: Any
) -> None:
    items = _items(data_dir, "jcommonsenseqa", 30)
    slow = LatencyModel(seconds_per_token=0.005, short_tokens=(10, 20), long_tokens=(20, 40))
    with SimServer(2, latency=slow) as a, SimServer(3, latency=slow) as b:
        name, options = parse_model_spec(f"openai-completions:{a.url}+{b.url}")
        backend = create_backend(name, **options)
        assert isinstance(backend, ReplicaSet)
        stats = RunStats()
        jobs = [TaskJob(get_task("jcommonsenseqa"), items, tmp_path / "r.jsonl")]
        await run_tasks(jobs, backend, Scorers(metrics=inprocess_metrics), model="sim", stats=stats)
        info = await backend.info()
        await backend.aclose()
    assert stats.window == 5 and info.details["replicas"] == f"{a.url} {b.url}"
    assert sum(a.answered.values()) > 0 and sum(b.answered.values()) > 0
    assert sum(a.answered.values()) + sum(b.answered.values()) == 30
    assert (a.max_busy, b.max_busy) == (2, 3)  # each filled to its own limit, never beyond


@pytest.mark.timeout(120)
async def test_overload_429_is_retried_and_nothing_is_answered_twice(
    data_dir: Path, tmp_path: Path, inprocess_metrics: Any
) -> None:
    items = _items(data_dir, "jcommonsenseqa", 12)
    with SimServer(2, latency=FAST, overflow="reject", report_limit=False) as server:
        backend = create_backend(
            "openai-completions", base_url=server.url, max_concurrency="5", backoff_s="0.005", max_retries="50"
        )
        jobs = [TaskJob(get_task("jcommonsenseqa"), items, tmp_path / "r.jsonl")]
        await run_tasks(jobs, backend, Scorers(metrics=inprocess_metrics), model="sim")
        await backend.aclose()
    assert server.rejected > 0 and server.max_busy == 2
    assert sorted(server.answered.values()) == [1] * 12


async def test_bad_input_is_a_clear_error(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BackendConfigError, match="empty replica URL"):
        create_backend("openai-completions", base_url="http://127.0.0.1:1+")
    with pytest.raises(BackendConfigError, match="given twice"):
        create_backend("tgi", base_url="http://a:1+http://a:1")
    with pytest.raises(BackendConfigError, match="max_concurrency: Input should be greater than or equal to 1"):
        create_backend("openai-completions", base_url="http://a:1", max_concurrency="0")
    with SimServer(2, model_id="org/a") as a, SimServer(2, model_id="org/b") as b:
        backend = create_backend("openai-completions", base_url=f"{a.url}+{b.url}")
        with pytest.raises(BackendConfigError, match="replicas serve different models"):
            await backend.start()
        await backend.aclose()
        config = EvalConfig(
            model=f"openai-completions:{a.url}+{b.url}", tasks=("xwino_en",), out=tmp_path / "o", data_dir=data_dir
        )
        with pytest.raises(EvalInputError, match="replicas serve different models"):
            await evaluate(config)
    with pytest.raises(ValueError, match="at least 1"):
        await run_task(
            get_task("jcommonsenseqa"),
            _items(data_dir, "jcommonsenseqa", 1),
            ScriptedBackend(default="0"),
            Scorers(),
            tmp_path / "r.jsonl",
            model="s",
            window=0,
        )


async def test_outputs_are_kept_when_scoring_fails(data_dir: Path, tmp_path: Path, inprocess_metrics: Any) -> None:
    items = _items(data_dir, "jcommonsenseqa", 5)
    path = tmp_path / "r.jsonl"
    first = ScriptedBackend(generations={it.prompt: it.gold for it in items}, max_concurrency=2)
    with pytest.raises(RuntimeError, match="needs the metrics service"):
        await run_task(get_task("jcommonsenseqa"), items, first, Scorers(), path, model="s")
    kept = {o.item_id for o in _stored_outputs(tmp_path, "s", "jcommonsenseqa")}
    assert kept and kept <= {it.id for it in items}
    second = ScriptedBackend(generations={it.prompt: it.gold for it in items}, max_concurrency=2)
    result = await run_task(
        get_task("jcommonsenseqa"), items, second, Scorers(metrics=inprocess_metrics), path, model="s"
    )
    assert result.score == 1.0 and result.num_items == 5
    assert {r.context for r in second.generation_calls} == {it.prompt for it in items if it.id not in kept}
    assert len(second.generation_calls) == 5 - len(kept)


async def test_a_batching_backend_gets_batches_of_one_kind_across_tasks(data_dir: Path, tmp_path: Path) -> None:
    """hf-local's way (`prefers_batches`): calls of at most max_concurrency requests, generations
    and log-likelihoods never mixed, the next task's requests joining the previous task's last batch."""
    calls: list[tuple[str, int]] = []

    class Recording(ScriptedBackend):
        async def generate_until(self, requests: Any) -> list[list[str]]:
            calls.append(("gen", len(requests)))
            return await super().generate_until(requests)

        async def loglikelihood(self, requests: Any) -> Any:
            calls.append(("ll", len(requests)))
            return await super().loglikelihood(requests)

    class Metrics:
        async def score(self, metric: str, predictions: Any, references: Any, options: Any = None) -> Any:
            from hyoka.orchestrator.tasks import TextScore

            return [TextScore(1.0, "sig") for _ in predictions]

    backend = Recording(default="0", loglikelihoods=lambda r: -1.0, max_concurrency=4, batched=True)
    jobs = [
        TaskJob(get_task("jcommonsenseqa"), _items(data_dir, "jcommonsenseqa", 6), tmp_path / "a.jsonl"),
        TaskJob(get_task("xwino_en"), _items(data_dir, "xwino_en", 5), tmp_path / "b.jsonl"),  # 2 choices each
    ]
    stats = RunStats()
    results = await run_tasks(jobs, backend, Scorers(metrics=Metrics()), model="s", stats=stats)
    assert [r.num_items for r in results] == [6, 5] and stats.window == 8
    assert all(size <= 4 for _, size in calls)
    assert sum(size for kind, size in calls if kind == "gen") == 6
    assert sum(size for kind, size in calls if kind == "ll") == 10

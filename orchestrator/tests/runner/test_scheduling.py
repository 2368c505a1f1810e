"""Scheduling against the simulated OpenAI-compatible server (`backends/testing/sim_server.py`):
the window stays full while work remains (asserted on what the server observed, not on time),
tasks share it, replicas both get work, 429s are retried without answering anything twice, a run
killed with SIGKILL and restarted loses and repeats no item, and bad input is a clear error."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from hyoka.orchestrator.backends import BackendConfigError, create_backend, parse_model_spec
from hyoka.orchestrator.backends.base import GenerationRequest, LoglikelihoodRequest
from hyoka.orchestrator.backends.replicas import ReplicaSet
from hyoka.orchestrator.backends.scripted import ScriptedBackend
from hyoka.orchestrator.backends.testing.sim_server import LatencyModel, SimServer
from hyoka.orchestrator.runner.engine import RunStats, TaskJob, run_task, run_tasks
from hyoka.orchestrator.runner.evaluation import EvalConfig, EvalInputError, evaluate
from hyoka.orchestrator.tasks import Item, Scorers, get_task

FAST = LatencyModel(seconds_per_token=0.0005, short_tokens=(2, 10), long_tokens=(40, 80))


def _items(data_dir: Path, name: str, limit: int) -> list[Item]:
    task = get_task(name)
    return task.items(task.load(data_dir), limit=limit)


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
    outputs = _lines(path.with_suffix(".outputs.jsonl"))
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


DRIVER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from hyoka.metrics import Item as MItem, score
    from hyoka.orchestrator.backends import create_backend
    from hyoka.orchestrator.runner.engine import TaskJob, run_tasks
    from hyoka.orchestrator.tasks import Scorers, TextScore, get_task

    class Metrics:
        async def score(self, metric, predictions, references, options=None):
            r = score(metric, [MItem(p, tuple(x)) for p, x in zip(predictions, references)], options)
            return [TextScore(v, r.signature.text) for v in r.item_scores]

    async def main(url, records, data_dir, limit):
        task = get_task("jcommonsenseqa")
        items = task.items(task.load(Path(data_dir)), limit=limit)
        backend = create_backend("openai-completions", base_url=url)
        job = TaskJob(task, items, Path(records))
        await run_tasks([job], backend, Scorers(metrics=Metrics()), model="openai-completions:sim")

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    """
)


@pytest.mark.timeout(180)
async def test_a_run_killed_mid_task_and_restarted_loses_and_repeats_no_item(
    data_dir: Path, tmp_path: Path, inprocess_metrics: Any
) -> None:
    """Run 1 (a separate process) gets 7 of 20 answers, then the server holds every further
    request; once those 7 are on disk the process is SIGKILLed. Run 2 asks the server only for the
    other 13, and the records hold all 20 once."""
    total, first_answers = 20, 7
    items = _items(data_dir, "jcommonsenseqa", total)
    records = tmp_path / "jcommonsenseqa.jsonl"
    outputs = records.with_suffix(".outputs.jsonl")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    with SimServer(3, latency=FAST, answer_limit=first_answers) as first:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(driver),
            first.url,
            str(records),
            str(data_dir),
            str(total),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            # Wait for the 7 answers on disk and the window refilled (3 more held by the server).
            while len(_lines(outputs)) < first_answers or first.received < first_answers + 3:
                if proc.returncode is not None:
                    output = await proc.stdout.read() if proc.stdout else b""
                    raise AssertionError(f"run 1 ended early: {output.decode()}")
                assert time.monotonic() < deadline, "run 1 did not keep its answers"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            assert first.received == first_answers + 3  # never more than the window in flight
            os.kill(proc.pid, signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        answered_first = set(first.answered)
    assert proc.returncode == -signal.SIGKILL and len(answered_first) == first_answers

    with SimServer(3, latency=FAST) as second:
        backend = create_backend("openai-completions", base_url=second.url)
        job = TaskJob(get_task("jcommonsenseqa"), items, records)
        (result,) = await run_tasks([job], backend, Scorers(metrics=inprocess_metrics), model="openai-completions:sim")
        await backend.aclose()
    answered_second = set(second.answered)
    assert second.received == total - first_answers and sorted(second.answered.values()) == [1] * 13
    assert answered_first.isdisjoint(answered_second)
    assert answered_first | answered_second == {it.prompt for it in items}
    ids = [r["item_id"] for r in _lines(records)]
    assert sorted(ids) == sorted(it.id for it in items)  # every item once, none lost or doubled
    assert result.num_items == total


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
    kept = {o["item_id"] for o in _lines(path.with_suffix(".outputs.jsonl"))}
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

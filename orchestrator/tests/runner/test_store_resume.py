"""Runs through the run store, each on SQLite and on a real PostgreSQL: `hyoka eval` killed with
SIGKILL mid-task and restarted loses and repeats no item (counted on the server), a changed metric
re-scores the stored outputs without asking the model again, a run directory from before the
store resumes from its JSONL files, and `evaluate` records the run in the runs table."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hyoka.orchestrator.backends import create_backend
from hyoka.orchestrator.backends.base import BackendError, LoglikelihoodRequest
from hyoka.orchestrator.backends.conformance import probe
from hyoka.orchestrator.backends.scripted import ScriptedBackend
from hyoka.orchestrator.backends.testing.sim_server import LatencyModel, SimServer
from hyoka.orchestrator.runner.engine import TaskJob, run_task, run_tasks, settings_fingerprint
from hyoka.orchestrator.runner.evaluation import EvalConfig, EvalRunError, evaluate
from hyoka.orchestrator.runner.records import RecordsError
from hyoka.orchestrator.runner.store import open_store
from hyoka.orchestrator.tasks import Item, Scorers, Task, get_task
from hyoka.orchestrator.tasks.spec import MetricSpec

FAST = LatencyModel(seconds_per_token=0.0005, short_tokens=(2, 10), long_tokens=(40, 80))
HYOKA = str(Path(sys.executable).with_name("hyoka"))


def _items(data_dir: Path, name: str, limit: int) -> list[Item]:
    task = get_task(name)
    return task.items(task.load(data_dir), limit=limit)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


async def _probe_requests() -> int:
    """How many requests `hyoka eval`'s conformance probe sends before the first item."""
    with SimServer(2, latency=FAST) as server:
        backend = create_backend("openai-completions", base_url=server.url)
        await probe(backend, name="sim")
        await backend.aclose()
        return server.received


@pytest.mark.timeout(300)
async def test_hyoka_eval_killed_mid_task_and_restarted_loses_and_repeats_no_item(
    store_url: str, tmp_path: Path, data_dir: Path, metrics_target: str
) -> None:
    """Run 1 (`hyoka eval`, a separate process) gets 7 of 20 answers, then the server holds every
    further request; once those 7 are in the store the process is SIGKILLed. Run 2 asks the server
    only for the other 13; the records export holds all 20 once and the run is recorded."""
    total, first_answers, slots = 20, 7, 3
    items = _items(data_dir, "jcommonsenseqa", total)
    prompts = {it.prompt for it in items}
    probes = await _probe_requests()
    out = tmp_path / "run"
    store = open_store(store_url, default_path=tmp_path / "unused.sqlite")

    def command(url: str) -> list[str]:
        return [
            HYOKA,
            "eval",
            "--model",
            f"openai-completions:{url}",
            "--tasks",
            "jcommonsenseqa",
            "--limit",
            str(total),
            "--out",
            str(out),
            "--data-dir",
            str(data_dir),
            "--metrics-url",
            metrics_target,
            "--store",
            store_url,
            "--run-id",
            "killed",
        ]

    with SimServer(slots, latency=FAST, answer_limit=probes + first_answers) as first:
        model = f"openai-completions:{first.url}"
        proc = await asyncio.create_subprocess_exec(
            *command(first.url), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 120
            # Wait for the 7 answers in the store and the window refilled (3 more held by the server).
            while (
                len(store.load_outputs(model, "jcommonsenseqa")) < first_answers
                or first.received < probes + first_answers + slots
            ):
                if proc.returncode is not None:
                    output = await proc.stdout.read() if proc.stdout else b""
                    raise AssertionError(f"run 1 ended early: {output.decode()}")
                assert time.monotonic() < deadline, "run 1 did not keep its answers"
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            assert first.received == probes + first_answers + slots  # never more than the window in flight
            os.kill(proc.pid, signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        port = first.port
        answered_first = Counter({p: n for p, n in first.answered.items() if p in prompts})
    assert proc.returncode == -signal.SIGKILL and sorted(answered_first.values()) == [1] * first_answers
    killed = store.get_run("killed")
    assert killed is not None and killed.state == "running"

    with SimServer(slots, latency=FAST, port=port) as second:  # the same URL: the same model
        proc = await asyncio.create_subprocess_exec(
            *command(second.url), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        output, _ = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, output.decode()
        answered_second = Counter({p: n for p, n in second.answered.items() if p in prompts})
        received_items = second.received - probes
    assert received_items == total - first_answers
    assert sorted(answered_second.values()) == [1] * (total - first_answers)
    assert set(answered_first).isdisjoint(answered_second) and set(answered_first) | set(answered_second) == prompts
    ids = [r["item_id"] for r in _lines(out / "records" / "jcommonsenseqa.jsonl")]
    assert sorted(ids) == sorted(it.id for it in items)  # every item once, none lost or doubled
    run = store.get_run("killed")
    assert run is not None and run.state == "succeeded" and run.error is None and run.results is not None
    assert run.results == json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert run.results["tasks"][0]["num_items"] == total
    assert run.request["store"] == store_url and run.request["tasks"] == ["jcommonsenseqa"]
    store.close()


async def test_a_changed_metric_rescores_stored_outputs_without_asking_the_model(
    store_url: str, tmp_path: Path, data_dir: Path, inprocess_metrics: Any
) -> None:
    task = get_task("jcommonsenseqa")
    items = _items(data_dir, "jcommonsenseqa", 6)
    answers = {it.prompt: it.gold + ("x" if n % 2 else "") for n, it in enumerate(items)}
    scorers = Scorers(metrics=inprocess_metrics)
    with open_store(store_url, default_path=tmp_path / "unused.sqlite") as store:
        backend = ScriptedBackend(generations=answers, max_concurrency=3)
        (first,) = await run_tasks(
            [TaskJob(task, items, tmp_path / "a" / "jcommonsenseqa.jsonl")], backend, scorers, model="s", store=store
        )
        assert len(backend.generation_calls) == 6 and first.score == pytest.approx(0.5)

        # A metric fix: another task definition (so other records), the same requests.
        fixed = Task(task.spec.model_copy(update={"metric": MetricSpec(name="char_f1_fuzzywuzzy")}))
        assert settings_fingerprint(fixed, "s") != settings_fingerprint(task, "s")
        silent = ScriptedBackend(generations={})  # fails if asked anything
        with pytest.raises(RecordsError, match="other settings"):  # not mixed into the first run's records
            await run_tasks(
                [TaskJob(fixed, items, tmp_path / "a" / "jcommonsenseqa.jsonl")],
                silent,
                scorers,
                model="s",
                store=store,
            )
        (second,) = await run_tasks(
            [TaskJob(fixed, items, tmp_path / "b" / "jcommonsenseqa.jsonl")], silent, scorers, model="s", store=store
        )
        assert silent.generation_calls == [] and silent.loglikelihood_calls == []
        assert second.num_items == 6 and second.num_resumed == 0
        records = {r["item_id"]: r for r in _lines(tmp_path / "b" / "jcommonsenseqa.jsonl")}
        assert len(records) == 6
        for n, it in enumerate(items):
            assert (0.0 < records[it.id]["score"] < 1.0) if n % 2 else records[it.id]["score"] == 1.0
        assert 0.5 < second.score < 1.0

        # Other generation settings are another request: asked again.
        longer = [
            dataclasses.replace(it, generation=dataclasses.replace(it.generation, max_new_tokens=2))
            for it in items
            if it.generation is not None
        ]
        again = ScriptedBackend(generations=answers, max_concurrency=3)
        await run_tasks(
            [TaskJob(fixed, longer, tmp_path / "c" / "jcommonsenseqa.jsonl")], again, scorers, model="s", store=store
        )
        assert len(again.generation_calls) == 6


async def test_a_run_directory_from_before_the_store_resumes_from_its_files(
    tmp_path: Path, data_dir: Path, inprocess_metrics: Any
) -> None:
    """Records (with a torn last line) and kept outputs in JSONL, no store: imported, not redone."""
    task = get_task("jcommonsenseqa")
    items = _items(data_dir, "jcommonsenseqa", 6)
    golds = {it.prompt: it.gold for it in items}
    path = tmp_path / "records" / "jcommonsenseqa.jsonl"
    scorers = Scorers(metrics=inprocess_metrics)
    await run_task(task, items, ScriptedBackend(generations=golds), scorers, path, model="s")
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / "records" / f"hyoka.sqlite{suffix}").unlink(missing_ok=True)
    records = _lines(path)
    by_id = {r["item_id"]: r for r in records}
    # The old layout: 4 records, a torn line, and item 5's output kept before it was scored.
    text = "".join(json.dumps(by_id[it.id], ensure_ascii=False) + "\n" for it in items[:4])
    path.write_text(text + '{"item_id": "torn', encoding="utf-8")
    legacy = {"item_id": items[5].id, "completions": [items[5].gold], "logprobs": []}
    path.with_suffix(".outputs.jsonl").write_text(json.dumps(legacy) + "\n", encoding="utf-8")

    backend = ScriptedBackend(generations=golds)
    result = await run_task(task, items, backend, scorers, path, model="s")
    assert [r.context for r in backend.generation_calls] == [items[4].prompt]
    assert result.num_resumed == 4 and result.num_items == 6 and result.score == 1.0
    assert sorted(r["item_id"] for r in _lines(path)) == sorted(it.id for it in items)

    again = ScriptedBackend(generations={})
    await run_task(task, items, again, scorers, path, model="s")
    assert again.generation_calls == [] and len(_lines(path)) == 6


async def test_evaluate_records_the_run(store_url: str, tmp_path: Path, data_dir: Path) -> None:
    def boom(r: LoglikelihoodRequest) -> float:
        raise BackendError("server went away")

    config = EvalConfig(
        model="scripted:x",
        tasks=("xwino_en",),
        out=tmp_path / "o",
        data_dir=data_dir,
        limit=3,
        auth_token="secret",
        store=store_url,
        run_id="r-1",
    )
    outcome = await evaluate(config, backend=ScriptedBackend(loglikelihoods=lambda r: -1.0))
    assert not (tmp_path / "o" / "hyoka.sqlite").exists()  # the store is where --store says
    with open_store(store_url, default_path=tmp_path / "unused.sqlite") as store:
        run = store.get_run("r-1")
        assert run is not None and run.state == "succeeded" and run.error is None
        assert run.results == json.loads((tmp_path / "o" / "results.json").read_text(encoding="utf-8"))
        assert run.results == json.loads(json.dumps(outcome.payload)) and run.results["tasks"][0]["num_items"] == 3
        assert run.request["tasks"] == ["xwino_en"] and run.request["limit"] == 3
        assert "secret" not in json.dumps(run.request)

        # (another model: the same one would resume r-1's records from the shared store)
        failing = dataclasses.replace(config, model="scripted:y", out=tmp_path / "o2", run_id="r-2")
        with pytest.raises(EvalRunError, match="went away"):
            await evaluate(failing, backend=ScriptedBackend(loglikelihoods=boom))
        run = store.get_run("r-2")
        assert run is not None and run.state == "failed" and run.error is not None and "went away" in run.error

        # A run queued beforehand (by the evaluation service) is taken over, its request kept.
        store.create_run("r-3", {"from": "service"})
        queued = dataclasses.replace(config, out=tmp_path / "o3", run_id="r-3")
        await evaluate(queued, backend=ScriptedBackend(loglikelihoods=lambda r: -1.0))
        run = store.get_run("r-3")
        assert run is not None and run.state == "succeeded" and run.request == {"from": "service"}
        assert [r.run_id for r in store.list_runs()] == ["r-3", "r-2", "r-1"]


async def test_the_default_store_is_a_file_in_the_run_directory(tmp_path: Path, data_dir: Path) -> None:
    config = EvalConfig(model="scripted:x", tasks=("xwino_en",), out=tmp_path / "o", data_dir=data_dir, limit=2)
    outcome = await evaluate(config, backend=ScriptedBackend(loglikelihoods=lambda r: -1.0))
    assert outcome.store == str(tmp_path / "o" / "hyoka.sqlite")
    with open_store(None, default_path=tmp_path / "o" / "hyoka.sqlite") as store:
        assert store.list_runs() == []  # no run id: items only
        fingerprint = settings_fingerprint(get_task("xwino_en"), "scripted:x")
        assert len(store.load_records(fingerprint)) == 2


async def test_a_store_failure_mid_run_is_a_run_error(tmp_path: Path, data_dir: Path, inprocess_metrics: Any) -> None:
    """The database going away while items are answered stops the run with the store's error."""
    items = _items(data_dir, "jcommonsenseqa", 3)
    store = open_store(None, default_path=tmp_path / "s.sqlite")

    class ClosesTheStore(ScriptedBackend):
        async def generate_until(self, requests: Any) -> list[list[str]]:
            store.close()
            return await super().generate_until(requests)

    backend = ClosesTheStore(generations={it.prompt: it.gold for it in items})
    with pytest.raises(Exception, match=r"run store .* is closed"):
        await run_task(
            get_task("jcommonsenseqa"),
            items,
            backend,
            Scorers(metrics=inprocess_metrics),
            tmp_path / "r.jsonl",
            model="s",
            store=store,
        )

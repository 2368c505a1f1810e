"""A model server that fails: 429, 500, a connection reset mid-reply, a reply that hangs after its
headers, retries exhausted, the server process killed mid-run. Every test counts, per item, the
requests that reached the server (a fault-injecting proxy in front of the simulated server counts
attempts; the simulated server counts what it answered) and the items in the run's records: every
item exactly once, none lost or doubled; after a failed run, a rerun on the same store sends
exactly the items whose answers the store lacks.

The orchestrator killed mid-run (SIGKILL) and restarted is
`orchestrator/tests/runner/test_store_resume.py::test_hyoka_eval_killed_mid_task_and_restarted_loses_and_repeats_no_item`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from hyoka.orchestrator.backends import _http, create_backend
from hyoka.orchestrator.backends.base import BackendError, ModelBackend
from hyoka.orchestrator.backends.replicas import ReplicaSet
from hyoka.orchestrator.backends.testing.sim_server import LatencyModel, SimServer
from hyoka.orchestrator.runner.engine import TaskJob, TaskRunFailure, run_tasks
from hyoka.orchestrator.runner.store import open_store
from hyoka.orchestrator.tasks import Item, Scorers, get_task
from hyoka.rpc.server import free_port

from .conftest import FaultProxy, InProcessMetrics, Plan, record_ids, task_items

TASK = "jcommonsenseqa"
MODEL = "sim-under-faults"
FAST = LatencyModel(seconds_per_token=0.0005, short_tokens=(2, 10), long_tokens=(40, 80))
#: quick retries: the waits are what the test spends
RETRY = {"max_retries": 2, "backoff_s": 0.02, "backoff_max_s": 0.1}


async def _run(items: list[Item], url: str, out: Path, **options: Any) -> ModelBackend:
    """One run of `items` against `url`, its store and records under `out`; the (closed) backend."""
    backend = create_backend("openai-completions", base_url=url, **(RETRY | options))
    store = open_store(None, default_path=out / "hyoka.sqlite")
    try:
        job = TaskJob(get_task(TASK), items, out / "records" / f"{TASK}.jsonl")
        await run_tasks([job], backend, Scorers(metrics=InProcessMetrics()), model=MODEL, store=store)
    finally:
        store.close()
        await backend.aclose()
    return backend


def _stored_prompts(out: Path, items: list[Item]) -> set[str]:
    """Prompts of the items whose answers the run store holds."""
    store = open_store(None, default_path=out / "hyoka.sqlite")
    try:
        kept = {o.item_id for o in store.load_outputs(MODEL, TASK)}
    finally:
        store.close()
    return {it.prompt for it in items if it.id in kept}


def _first_attempt(action: str, faulted: set[str]) -> Plan:
    return lambda prompt, attempt: action if prompt in faulted and attempt == 1 else "pass"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", ["429", "500", "reset", "hang"])
async def test_a_failed_attempt_is_retried_and_every_item_is_kept_once(
    fault: str, data_dir: Path, tmp_path: Path
) -> None:
    """A third of the items fail on their first attempt (`fault`), then succeed. The run ends with
    every item once in the records; each faulted item reached the proxy exactly twice, every other
    item once; the server answered each item once, twice for the items whose reply was cut (it
    had answered before the reset). A hanging reply is cut at the per-request deadline."""
    total = 12
    items = task_items(data_dir, TASK, total)
    prompts = [it.prompt for it in items]
    faulted = set(prompts[::3]) if fault != "hang" else {prompts[0], prompts[5]}
    timeout_s = 2.0 if fault == "hang" else 30.0  # the per-request deadline
    with SimServer(4, latency=FAST) as server:
        proxy = await FaultProxy(("127.0.0.1", server.port), _first_attempt(fault, faulted)).start()
        try:
            started = time.monotonic()
            await _run(items, proxy.url, tmp_path, timeout_s=timeout_s)
            elapsed = time.monotonic() - started
        finally:
            await proxy.stop()
        answered = Counter({p: n for p, n in server.answered.items() if p in set(prompts)})
    assert proxy.actions[fault] == len(faulted)
    assert {p: proxy.attempts[p] for p in prompts} == {p: 2 if p in faulted else 1 for p in prompts}
    expected_answers = {p: 2 if fault == "reset" and p in faulted else 1 for p in prompts}
    assert dict(answered) == expected_answers
    assert sorted(record_ids(tmp_path / "records" / f"{TASK}.jsonl")) == sorted(it.id for it in items)
    if fault == "hang":
        assert timeout_s <= elapsed < timeout_s + 10  # cut at the deadline, not waited out


@pytest.mark.timeout(60)
@pytest.mark.parametrize("status", ["500", "503"])
async def test_retries_exhausted_fail_naming_the_endpoint_and_a_rerun_sends_only_the_missing_items(
    status: str, data_dir: Path, tmp_path: Path
) -> None:
    """Three items always get `status`: each is tried 1 + max_retries times, never more, and the run
    fails with an error naming the endpoint's URL and the attempts. A rerun on the same store
    against a healthy server sends exactly the items whose answers were not kept, once each; the
    records then hold every item once."""
    total = 16
    items = task_items(data_dir, TASK, total)
    prompts = [it.prompt for it in items]
    doomed = {prompts[4], prompts[9], prompts[13]}
    attempts = 1 + RETRY["max_retries"]
    with SimServer(2, latency=FAST) as server:
        proxy = await FaultProxy(("127.0.0.1", server.port), lambda p, _n: status if p in doomed else "pass").start()
        try:
            with pytest.raises(TaskRunFailure) as failure:
                await _run(items, proxy.url, tmp_path)
        finally:
            await proxy.stop()
        message = str(failure.value)
        assert isinstance(failure.value.error, BackendError)
        assert f"{proxy.url}/v1/completions" in message, message
        assert f"HTTP {status}" in message and f"gave up after {int(attempts)} attempt(s)" in message, message
        tried = {p: proxy.attempts[p] for p in doomed if proxy.attempts[p]}
        assert tried and max(tried.values()) == attempts and set(tried.values()) <= set(range(1, int(attempts) + 1))
        assert all(n == 1 for p, n in proxy.attempts.items() if p not in doomed)
    kept = _stored_prompts(tmp_path, items)
    assert kept and not kept & doomed and len(kept) < total

    # A server of its own: the first one may still answer requests the failed run abandoned.
    with SimServer(2, latency=FAST) as server:
        healthy = await FaultProxy(("127.0.0.1", server.port), lambda _p, _n: "pass").start()
        try:
            await _run(items, healthy.url, tmp_path)
        finally:
            await healthy.stop()
        answered = Counter({p: n for p, n in server.answered.items() if p in set(prompts)})
    assert dict(healthy.attempts) == {p: 1 for p in prompts if p not in kept}
    assert answered == healthy.attempts
    assert sorted(record_ids(tmp_path / "records" / f"{TASK}.jsonl")) == sorted(it.id for it in items)


@pytest.mark.timeout(30)
async def test_backoff_doubles_with_full_jitter_and_the_attempts_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that always gets 503 is sent 1 + max_retries times, never more; before each retry
    the client waits a time drawn uniformly from [0, ceiling] (full jitter), the ceiling doubling
    from backoff_s up to backoff_max_s; the error names the endpoint's URL."""
    drawn: list[tuple[float, float]] = []

    class Jitter:
        @staticmethod
        def uniform(low: float, high: float) -> float:
            drawn.append((low, high))
            return random.uniform(low, high)

    monkeypatch.setattr(_http, "random", Jitter)
    with SimServer(1, latency=FAST) as server:
        proxy = await FaultProxy(("127.0.0.1", server.port), lambda _p, _n: "503").start()
        backend = create_backend(
            "openai-completions", base_url=proxy.url, max_retries=5, backoff_s=0.01, backoff_max_s=0.04
        )
        try:
            await backend.start()
            assert isinstance(backend, _http.HttpBackend)
            with pytest.raises(BackendError) as failure:
                await backend.request_json("POST", "/v1/completions", {"model": "sim/model", "prompt": "p"})
        finally:
            await backend.aclose()
            await proxy.stop()
        assert server.received == 0
    assert dict(proxy.attempts) == {"p": 6}
    assert drawn == [(0.0, 0.01), (0.0, 0.02), (0.0, 0.04), (0.0, 0.04), (0.0, 0.04)]
    message = str(failure.value)
    assert f"{proxy.url}/v1/completions" in message and "HTTP 503" in message, message
    assert "gave up after 6 attempt(s)" in message, message


#: The answer times of `_start_sim`'s server.
AS_SLOW_AS_A = LatencyModel(seconds_per_token=0.01, short_tokens=(10, 20), long_fraction=0.0)


async def _start_sim(port: int) -> tuple[asyncio.subprocess.Process, str]:
    """`python -m ...sim_server` on `port`, 3 slots; slow answers (0.1-0.2 s) so a run takes a while."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hyoka.orchestrator.backends.testing.sim_server",
        "--slots",
        "3",
        "--port",
        str(port),
        "--seconds-per-token",
        "0.01",
        "--short",
        "10",
        "20",
        "--long-fraction",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    url = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
    assert url == f"http://127.0.0.1:{port}", url
    return proc, url


def _sim_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/sim/stats", timeout=5) as reply:
        stats: dict[str, Any] = json.loads(reply.read())
    return stats


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_model_server_killed_mid_run_fails_naming_it_and_a_rerun_sends_only_the_missing_items(
    data_dir: Path, tmp_path: Path
) -> None:
    """The model server process is SIGKILLed once the store holds some answers: the run fails
    (connections reset, then refused, retried with backoff) with an error naming the server's URL.
    Restarted on the same port, a rerun on the same store sends exactly the other items (counted
    by the new server) and the records hold every item once."""
    total = 30
    items = task_items(data_dir, TASK, total)
    port = free_port()
    first, url = await _start_sim(port)
    run = asyncio.create_task(_run(items, url, tmp_path))
    try:
        deadline = time.monotonic() + 30
        while len(_stored_prompts(tmp_path, items)) < 6:
            assert not run.done(), run
            assert time.monotonic() < deadline, "the first run kept no answers"
            await asyncio.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        with pytest.raises(TaskRunFailure) as failure:
            await asyncio.wait_for(run, 30)
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
        run.cancel()
    message = str(failure.value)
    assert f"{url}/v1/completions" in message and "gave up after 3 attempt(s)" in message, message
    kept = _stored_prompts(tmp_path, items)
    assert 6 <= len(kept) < total

    second, url2 = await _start_sim(port)
    try:
        assert url2 == url
        await asyncio.wait_for(_run(items, url, tmp_path), 60)
        stats = await asyncio.to_thread(_sim_stats, url)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(second.wait(), 10)
        except TimeoutError:
            second.kill()
            await second.wait()
    assert stats["received"] == total - len(kept)  # run_tasks sends no conformance probe
    assert stats["answered"] == total - len(kept)
    assert sorted(record_ids(tmp_path / "records" / f"{TASK}.jsonl")) == sorted(it.id for it in items)


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_a_model_replica_killed_mid_run_its_requests_go_to_the_other_and_every_item_is_kept_once(
    data_dir: Path, tmp_path: Path
) -> None:
    """Two replicas (`URL_A+URL_B`) of 3 slots each; replica A, a separate process behind a
    counting proxy, is SIGKILLed once it has answered 5 of the 40 items. Its failed requests
    (after its own retries) go to B and the run finishes: the answers A relayed and those B gave
    are disjoint and cover every item once each, and the records hold every item once."""
    total = 40
    items = task_items(data_dir, TASK, total)
    prompts = {it.prompt for it in items}
    a, a_url = await _start_sim(free_port())
    a_port = int(a_url.rsplit(":", 1)[1])
    proxy = await FaultProxy(("127.0.0.1", a_port), lambda _p, _n: "pass").start()
    try:
        with SimServer(3, latency=AS_SLOW_AS_A) as b:
            run = asyncio.create_task(_run(items, f"{proxy.url}+{b.url}", tmp_path))
            try:
                deadline = time.monotonic() + 30
                while sum(proxy.relayed.values()) < 5:
                    assert not run.done(), run
                    assert time.monotonic() < deadline, "replica A answered nothing"
                    await asyncio.sleep(0.01)
                os.kill(a.pid, signal.SIGKILL)
                await a.wait()
                backend = await asyncio.wait_for(run, 60)
            finally:
                run.cancel()
            answered_b = Counter({p: n for p, n in b.answered.items() if p in prompts})
    finally:
        if a.returncode is None:
            a.kill()
            await a.wait()
        await proxy.stop()
    relayed_a = Counter({p: n for p, n in proxy.relayed.items() if p in prompts})
    assert a.returncode == -signal.SIGKILL
    assert isinstance(backend, ReplicaSet) and backend.failovers >= 1  # requests A failed went to B
    assert 5 <= sum(relayed_a.values()) < total  # killed mid-run
    assert set(relayed_a.values()) == {1} and set(answered_b.values()) == {1}
    assert set(relayed_a).isdisjoint(answered_b) and set(relayed_a) | set(answered_b) == prompts
    assert sorted(record_ids(tmp_path / "records" / f"{TASK}.jsonl")) == sorted(it.id for it in items)

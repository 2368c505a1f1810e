"""Scoring services that fail mid-run: a sandbox replica SIGKILLed mid-`ExecuteBatch` (two
replicas behind one client target), and the metrics service SIGKILLed and restarted on its port
mid-run. Each asserts on counts: every program's result (or every item's record) exactly once,
none lost, and that the client did have to send again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hyoka.orchestrator.backends import create_backend
from hyoka.orchestrator.backends.testing.sim_server import LatencyModel, SimServer
from hyoka.orchestrator.runner.engine import TaskJob, run_tasks, settings_fingerprint
from hyoka.orchestrator.runner.store import open_store
from hyoka.orchestrator.services import MetricsClient, SandboxClient, ServiceCallError, ServiceUnavailableError
from hyoka.orchestrator.services._common import ServiceClient
from hyoka.orchestrator.services.local import find_executable
from hyoka.orchestrator.tasks import Scorers, get_task
from hyoka.rpc.server import free_port
from hyoka.v1 import sandbox_pb2

from .conftest import record_ids, task_items

SERVER_ENV = {k: v for k, v in os.environ.items() if not k.startswith("HYOKA_") or k == "HYOKA_DATA_DIR"}


class Server:
    """A `hyoka-metrics serve` / `hyoka-sandbox serve` process in a session of its own (SIGKILL
    takes its helper processes too, as when a container is killed)."""

    def __init__(self, executable: str, service_name: str, port: int, log: Path, *args: str) -> None:
        self.service_name = service_name
        self.port = port
        self.target = f"127.0.0.1:{port}"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [find_executable(executable), "serve", "--host", "127.0.0.1", "--port", str(port), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**SERVER_ENV, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )

    async def ready(self, within_s: float = 45.0) -> Server:
        client = ServiceClient(self.target)
        client.service_name = self.service_name
        deadline = time.monotonic() + within_s
        try:
            while True:
                assert self.process.poll() is None, f"{self.service_name} exited with {self.process.returncode}"
                try:
                    await client.health(deadline=1.0)
                    return self
                except ServiceUnavailableError:
                    assert time.monotonic() < deadline, f"{self.service_name} not healthy in {within_s} s"
                    await asyncio.sleep(0.1)
        finally:
            await client.aclose()

    def kill(self) -> None:
        """SIGKILL the server and everything it started."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):  # helpers it left behind
            os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture
async def servers() -> AsyncIterator[list[Server]]:
    started: list[Server] = []
    try:
        yield started
    finally:
        for s in started:
            s.stop()


# --- sandbox ------------------------------------------------------------------------------------

PROGRAMS = 40


def _program(i: int) -> sandbox_pb2.ExecuteRequest:
    return sandbox_pb2.ExecuteRequest(program=f"import time\ntime.sleep(0.3)\nprint({i})\n".encode())


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_a_sandbox_replica_killed_mid_batch_its_unfinished_programs_run_on_the_other_once(
    servers: list[Server], tmp_path: Path
) -> None:
    """Two sandbox replicas behind one target (`ipv4:127.0.0.1:A,127.0.0.1:B`: the channel uses A
    while it lives, then B). 40 programs of 0.3 s each, each printing its index, in one
    ExecuteBatch on A; A (with its zygotes) is SIGKILLed after 8 results. The client sends the 32
    programs without a result, and only those, to B: every program's result arrives exactly once,
    passed, printing its own index."""
    a, b = (
        Server("hyoka-sandbox", "hyoka.v1.SandboxService", free_port(), tmp_path / f"sandbox-{n}.log", "--workers", "2")
        for n in "ab"
    )
    servers += [a, b]
    await asyncio.gather(a.ready(), b.ready())
    delivered: Counter[int] = Counter()
    kill_after = 8
    at_kill: list[int] = []

    def on_result(index: int, result: sandbox_pb2.ExecutionResult) -> None:
        delivered[index] += 1
        if sum(delivered.values()) == kill_after:
            at_kill.append(len(delivered))
            a.kill()

    async with SandboxClient(f"ipv4:{a.target},{b.target}", timeout=60) as client:
        client.retry_backoff_s = 0.05
        results = await asyncio.wait_for(
            client.execute_batch([_program(i) for i in range(PROGRAMS)], on_result=on_result), 60
        )
        retries = client.retries
    assert a.process.returncode == -signal.SIGKILL and b.process.poll() is None
    assert at_kill == [kill_after]  # killed mid-batch, with 32 programs unfinished
    assert retries >= 1  # the batch was cut and sent again
    assert delivered == Counter(dict.fromkeys(range(PROGRAMS), 1))  # each result once, none lost
    statuses = Counter(sandbox_pb2.ExecutionStatus.Name(r.status) for r in results)
    assert statuses == {"EXECUTION_STATUS_PASSED": PROGRAMS}, [r.detail for r in results if r.detail][:3]
    assert [r.stdout for r in results] == [f"{i}\n".encode() for i in range(PROGRAMS)]


# --- metrics ------------------------------------------------------------------------------------

TASK = "jcommonsenseqa"  # exact_match, scored by the metrics service
SLOW = LatencyModel(seconds_per_token=0.005, short_tokens=(10, 20), long_fraction=0.0)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_the_metrics_service_restarted_mid_run_the_run_continues_and_scores_every_item_once(
    servers: list[Server], data_dir: Path, tmp_path: Path
) -> None:
    """40 items answered by a simulated server over about 3 s; once 5 records are stored the
    metrics service is SIGKILLed and started again on the same port. The run waits for it (score
    calls sent again while UNAVAILABLE) and finishes: 40 records, each item once, in the store and
    the records export, and the model asked once per item."""
    total = 40
    items = task_items(data_dir, TASK, total)
    port = free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    first = await Server("hyoka-metrics", "hyoka.v1.MetricsService", port, logs / "metrics-1.log").ready()
    servers.append(first)
    store = open_store(None, default_path=tmp_path / "hyoka.sqlite")
    records_path = tmp_path / "records" / f"{TASK}.jsonl"
    task = get_task(TASK)
    with SimServer(2, latency=SLOW) as model_server:
        backend = create_backend("openai-completions", base_url=model_server.url)
        metrics = MetricsClient(first.target)
        metrics.retry_backoff_s = 0.05
        run = asyncio.create_task(
            run_tasks([TaskJob(task, items, records_path)], backend, Scorers(metrics=metrics), model="sim", store=store)
        )
        try:
            deadline = time.monotonic() + 30
            while len(record_ids(records_path)) < 5:
                assert not run.done(), run
                assert time.monotonic() < deadline, "no records before the restart"
                await asyncio.sleep(0.02)
            first.kill()
            scored_before = len(record_ids(records_path))
            second = Server("hyoka-metrics", "hyoka.v1.MetricsService", port, logs / "metrics-2.log")
            servers.append(second)
            await second.ready()
            results = await asyncio.wait_for(run, 60)
        finally:
            run.cancel()
            await metrics.aclose()
            await backend.aclose()
        answered = Counter({p: n for p, n in model_server.answered.items() if p in {it.prompt for it in items}})
    assert first.process.returncode == -signal.SIGKILL
    assert scored_before < total  # killed mid-run
    assert metrics.retries >= 1  # score calls were sent again once it was back
    assert [r.num_items for r in results] == [total]
    ids = record_ids(records_path)
    assert sorted(ids) == sorted(it.id for it in items)  # every item scored once, none lost
    assert set(store.load_records(settings_fingerprint(task, "sim"))) == {it.id for it in items}
    assert sorted(answered.values()) == [1] * total
    store.close()


@pytest.mark.timeout(30)
async def test_a_service_gone_for_good_fails_naming_its_target_once_the_retry_time_is_spent() -> None:
    """Nothing listens at the target: the calls are sent again with backoff for `retry_for_s`
    (a second here, each attempt with the channel's own quick retries), then fail with an error
    naming the call, UNAVAILABLE and the target."""
    target = f"127.0.0.1:{free_port()}"
    async with MetricsClient(target) as metrics, SandboxClient(target) as sandbox:
        for client in (metrics, sandbox):
            client.retry_for_s, client.retry_backoff_s, client.retry_backoff_max_s = 1.0, 0.05, 0.2
        started = time.monotonic()
        with pytest.raises(ServiceCallError, match=rf"metrics ListMetrics: UNAVAILABLE.*{target} still unreachable"):
            await metrics.char_f1(["a"], ["a"])
        with pytest.raises(ServiceCallError, match=rf"sandbox ExecuteBatch.*UNAVAILABLE.*{target} still unreachable"):
            await sandbox.execute_batch([_program(0)])
        elapsed = time.monotonic() - started
        assert metrics.retries >= 1 and sandbox.retries >= 1
    assert 1.0 <= elapsed < 10


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_a_full_sandbox_answers_resource_exhausted_and_the_client_waits_its_retry_delay(
    tmp_path: Path, servers: list[Server]
) -> None:
    """One worker, one call at a time, no queue: of 6 concurrent calls 5 are refused with a retry
    delay at first; the client sends each again after its delay and all 6 run, each once."""
    server = Server(
        "hyoka-sandbox",
        "hyoka.v1.SandboxService",
        free_port(),
        tmp_path / "sandbox.log",
        "--workers",
        "1",
        "--max-concurrent-calls",
        "1",
        "--max-queued-calls",
        "0",
    )
    servers.append(server)
    await server.ready()
    async with SandboxClient(server.target) as client:
        results = await asyncio.gather(*(client.execute_batch([_program(i)]) for i in range(6)))
        assert client.retries >= 5, client.retries
    outputs = [r.stdout.decode().strip() for batch in results for r in batch]
    assert outputs == [str(i) for i in range(6)]
    assert all(r.status == sandbox_pb2.EXECUTION_STATUS_PASSED for batch in results for r in batch)

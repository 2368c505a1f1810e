"""EvaluationService over a real grpc.aio server with a real client; the model is the simulated
OpenAI-compatible server, the metrics service a real one. Runs stream to several watchers, are
idempotent by run id, stop sending requests as soon as they are cancelled (asserted on what the
server received), and bad input answers INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import pytest

from hyoka.orchestrator.backends.testing.sim_server import LatencyModel, SimServer
from hyoka.orchestrator.evaluation import RunManager
from hyoka.rpc import field_violations
from hyoka.v1 import evaluation_pb2

from .conftest import Service

# About 0.1-0.3 s per answer: a run of 2 x 8 items on 4 slots lasts about a second.
SLOW = LatencyModel(seconds_per_token=0.004, short_tokens=(25, 75), long_tokens=(25, 75))
FAST = LatencyModel(seconds_per_token=0.0005, short_tokens=(2, 10), long_tokens=(2, 10))
TASKS = ("jcommonsenseqa", "jemhopqa")
TERMINAL = {evaluation_pb2.RUN_STATE_SUCCEEDED, evaluation_pb2.RUN_STATE_FAILED, evaluation_pb2.RUN_STATE_CANCELLED}


def start_request(run_id: str, url: str, *, limit: int = 8, tasks: tuple[str, ...] = TASKS) -> Any:
    return evaluation_pb2.StartRunRequest(
        run_id=run_id, model=f"openai-completions:{url}", tasks=tasks, limit=limit, model_id="sim-model"
    )


async def watch(service: Service, run_id: str) -> list[Any]:
    return [event async for event in service.stub.WatchRun(evaluation_pb2.WatchRunRequest(run_id=run_id), timeout=120)]


async def wait_for(condition: Any) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


@pytest.mark.timeout(120)
async def test_two_watchers_both_get_progress_and_the_final_scores(service: Service) -> None:
    with SimServer(4, latency=SLOW) as server:
        reply = await service.stub.StartRun(start_request("two-watchers", server.url), timeout=30)
        assert reply.created and reply.run.run_id == "two-watchers"
        assert [t.task for t in reply.run.tasks] == list(TASKS)
        first, second = await asyncio.gather(watch(service, "two-watchers"), watch(service, "two-watchers"))
    for events in (first, second):
        final = events[-1].run
        assert final.state == evaluation_pb2.RUN_STATE_SUCCEEDED, final.error
        assert all(e.run.state not in TERMINAL for e in events[:-1])  # one terminal event, the last
        sequences = [e.sequence for e in events]
        assert sequences == sorted(set(sequences))
        # Progress on the way: a snapshot with some items done and the run not finished.
        assert any(
            e.run.state == evaluation_pb2.RUN_STATE_RUNNING and 0 < sum(t.items_done for t in e.run.tasks) < 16
            for e in events
        ), [[(t.task, t.items_done) for t in e.run.tasks] for e in events]
        for task in final.tasks:
            assert task.state == evaluation_pb2.TASK_STATE_SUCCEEDED
            assert task.items_total == task.items_done == 8
            assert task.HasField("score") and 0.0 <= task.score <= 1.0 and task.metric and task.benchmark == task.task
        assert final.model_id == "sim-model" and not final.HasField("placement")
        assert "missing: " in final.placement_unavailable_reason and "niilc" in final.placement_unavailable_reason
    assert first[-1].run == second[-1].run
    # The run's records and results are in its own folder of the state directory.
    out = service.settings.out_dir("two-watchers")
    assert (out / "scores.csv").is_file() and (out / "records" / "jcommonsenseqa.jsonl").is_file()
    # A watcher that joins a finished run gets one event; GetRun and ListRuns say the same.
    (late,) = await watch(service, "two-watchers")
    assert late.run.state == evaluation_pb2.RUN_STATE_SUCCEEDED and late.run.tasks == first[-1].run.tasks
    got = await service.stub.GetRun(evaluation_pb2.GetRunRequest(run_id="two-watchers"), timeout=10)
    assert got.run.tasks == first[-1].run.tasks and got.run.request.model.startswith("openai-completions:")
    listed = await service.stub.ListRuns(evaluation_pb2.ListRunsRequest(), timeout=10)
    assert [r.run_id for r in listed.runs] == ["two-watchers"]


@pytest.mark.timeout(120)
async def test_start_run_is_idempotent_by_run_id(service: Service) -> None:
    with SimServer(4, latency=FAST) as server:
        request = evaluation_pb2.StartRunRequest(  # the model given as endpoints this time
            run_id="once",
            endpoints=evaluation_pb2.ModelEndpoints(
                backend="openai-completions", urls=[server.url], options={"max_concurrency": "2"}
            ),
            tasks=["jcommonsenseqa"],
            limit=5,
        )
        first = await service.stub.StartRun(request, timeout=30)
        assert first.run.model == f"openai-completions:{server.url},max_concurrency=2"
        again = await service.stub.StartRun(request, timeout=30)
        assert first.created and not again.created and again.run.run_id == "once"
        events = await watch(service, "once")
        assert events[-1].run.state == evaluation_pb2.RUN_STATE_SUCCEEDED, events[-1].run.error
        after = await service.stub.StartRun(request, timeout=30)  # a finished run is answered, not rerun
        assert not after.created and after.run.state == evaluation_pb2.RUN_STATE_SUCCEEDED
        item_prompts = {p: n for p, n in server.answered.items() if n and p not in _probe_prompts()}
        assert len(item_prompts) == 5 and set(item_prompts.values()) == {1}  # every item asked once

        assert server.max_busy <= 2  # the option reached the backend
        other = start_request("once", server.url, limit=6, tasks=("jcommonsenseqa",))
        with pytest.raises(grpc.RpcError) as raised:
            await service.stub.StartRun(other, timeout=30)
        assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS  # type: ignore[attr-defined]
        assert "run_id" in (raised.value.details() or "")  # type: ignore[attr-defined]
    listed = await service.stub.ListRuns(evaluation_pb2.ListRunsRequest(), timeout=10)
    assert [r.run_id for r in listed.runs] == ["once"]


def _probe_prompts() -> set[str]:
    from hyoka.orchestrator.backends.conformance import PROBE_PROMPTS

    return set(PROBE_PROMPTS)


@pytest.mark.timeout(120)
async def test_cancel_run_stops_requests_at_once(service: Service) -> None:
    """The server answers its first 12 requests and holds every later one: the run then has its
    whole window (3) held. After CancelRun the server receives nothing more."""
    answered = 12
    with SimServer(3, latency=FAST, answer_limit=answered) as server:
        await service.stub.StartRun(start_request("to-cancel", server.url, limit=40), timeout=30)
        await wait_for(lambda: server.received >= answered + 3)
        await asyncio.sleep(0.2)
        assert server.received == answered + 3  # never more than the window in flight
        reply = await service.stub.CancelRun(evaluation_pb2.CancelRunRequest(run_id="to-cancel"), timeout=30)
        assert reply.run.state == evaluation_pb2.RUN_STATE_CANCELLED and "cancelled" in reply.run.error
        assert {t.state for t in reply.run.tasks} <= {
            evaluation_pb2.TASK_STATE_CANCELLED,
            evaluation_pb2.TASK_STATE_SUCCEEDED,
        }
        received = server.received
        await asyncio.sleep(0.5)
        assert server.received == received == answered + 3  # no request after the cancel
        (event,) = await watch(service, "to-cancel")
        assert event.run.state == evaluation_pb2.RUN_STATE_CANCELLED
        again = await service.stub.CancelRun(evaluation_pb2.CancelRunRequest(run_id="to-cancel"), timeout=30)
        assert again.run.state == evaluation_pb2.RUN_STATE_CANCELLED  # cancelling twice is harmless
    listed = await service.stub.ListRuns(
        evaluation_pb2.ListRunsRequest(states=[evaluation_pb2.RUN_STATE_CANCELLED]), timeout=10
    )
    assert [r.run_id for r in listed.runs] == ["to-cancel"]


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"run_id": "bad id!"}, "run_id", "not a valid run id"),
        ({"run_id": ""}, "run_id", "required"),
        ({"run_id": "x" * 65}, "run_id", "1-64 characters"),
        ({"tasks": ["jcommonsenseqa", "foo"]}, "tasks[1]", "unknown task 'foo'"),
        ({"tasks": []}, "tasks", "required"),
        ({"suite": "nope"}, "suite", "unknown suite 'nope'"),
        ({"limit": 0}, "limit", "at least 1"),
        ({"model": "nope:x"}, "model", "unknown backend 'nope'"),
        ({"model": "openai-completions:http://a:1,max_concurrency=0"}, "model", "max_concurrency"),
        ({"model": None}, "model", "required"),
        ({"endpoints": {"backend": "tgi", "urls": ["ftp://a"]}}, "endpoints.urls[0]", "not an http"),
        ({"endpoints": {"backend": "hf-local", "urls": ["http://a:1"]}}, "endpoints.backend", "not one of"),
        ({"endpoints": {"backend": "tgi", "urls": []}}, "endpoints.urls", "required"),
    ],
)
async def test_bad_start_run_input_names_the_field(
    service: Service, change: dict[str, Any], field: str, says: str
) -> None:
    values: dict[str, Any] = {
        "run_id": "r1",
        "model": "openai-completions:http://127.0.0.1:1",
        "tasks": ["jcommonsenseqa"],
        "limit": 3,
    }
    values.update(change)
    if values.get("model") is None or "endpoints" in values:
        values.pop("model")
    request = evaluation_pb2.StartRunRequest(**values)
    with pytest.raises(grpc.RpcError) as raised:
        await service.stub.StartRun(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    violations = field_violations(raised.value)
    assert field in violations and says in violations[field], violations
    listed = await service.stub.ListRuns(evaluation_pb2.ListRunsRequest(), timeout=10)
    assert not listed.runs  # nothing was started


async def test_unknown_runs_and_bad_queries(service: Service) -> None:
    for call, request in (
        (service.stub.GetRun, evaluation_pb2.GetRunRequest(run_id="nope")),
        (service.stub.CancelRun, evaluation_pb2.CancelRunRequest(run_id="nope")),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            await call(request, timeout=10)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as raised:
        await watch(service, "nope")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as raised:
        await service.stub.GetRun(evaluation_pb2.GetRunRequest(run_id=""), timeout=10)
    assert "required" in field_violations(raised.value)["run_id"]
    with pytest.raises(grpc.RpcError) as raised:
        await service.stub.ListRuns(evaluation_pb2.ListRunsRequest(page_size=5000), timeout=10)
    assert "page_size" in field_violations(raised.value)


@pytest.mark.timeout(120)
async def test_a_model_server_that_does_not_answer_fails_the_run(service: Service) -> None:
    """Accepted (the spec is well formed), then failed by the run with the engine's message."""
    with SimServer(1) as server:
        url = server.url
    request = start_request("no-server", url, limit=2, tasks=("jcommonsenseqa",))
    reply = await service.stub.StartRun(request, timeout=30)
    assert reply.created
    events = await watch(service, "no-server")
    final = events[-1].run
    assert final.state == evaluation_pb2.RUN_STATE_FAILED and final.error
    assert final.tasks[0].state == evaluation_pb2.TASK_STATE_FAILED


@pytest.mark.timeout(120)
async def test_a_run_interrupted_by_a_restart_resumes(service: Service) -> None:
    """The manager stops mid-run (server shutdown): the store still says running, and a new
    manager on the same store and state directory finishes the run, asking only for what is left."""
    answered = 12
    with SimServer(3, latency=FAST, answer_limit=answered) as first:
        await service.stub.StartRun(start_request("resume", first.url, limit=20, tasks=("jcommonsenseqa",)), timeout=30)
        await wait_for(lambda: first.received >= answered + 3)
        await service.manager.close()
        asked_first = {p for p, n in first.answered.items() if n}
    record = service.store.get_run("resume")
    assert record is not None and record.state == "queued"  # queued again by the stopping server
    # Same URL is not possible (new port): the stored request names the first server, so point a
    # new server at the same port.
    with SimServer(3, latency=FAST, port=int(first.url.rsplit(":", 1)[1])) as second:
        manager = RunManager(service.store, service.settings)
        assert await manager.resume_unfinished() == ["resume"]
        await wait_for(lambda: manager.get("resume").terminal)
        view = manager.get("resume")
        assert view.state == "succeeded", view.error
        asked_second = {p for p, n in second.answered.items() if n} - _probe_prompts()
        await manager.close()
    assert asked_second and asked_second.isdisjoint(asked_first - _probe_prompts())
    assert view.tasks[0].items_done == view.tasks[0].items_total == 20


@pytest.mark.timeout(60)
async def test_runs_this_server_does_not_hold(service: Service) -> None:
    """A run recorded by `hyoka eval --run-id` in a shared store is listed and watched (by polling
    the store until it ends) but never resumed by the service."""
    store = service.store
    store.create_run("host:/runs/a", {"model": "openai-completions:http://x:1", "tasks": ["niilc"], "limit": 2})
    store.update_run("host:/runs/a", state="running")
    assert await service.manager.resume_unfinished() == []

    async def finish_later() -> None:
        await asyncio.sleep(1.5)
        result = {"task": "niilc", "benchmark_column": "niilc", "metric": "char_f1", "score": 0.25, "num_items": 2}
        store.update_run("host:/runs/a", state="succeeded", results={"model_id": "m", "tasks": [result]})

    finishing = asyncio.create_task(finish_later())
    events = await watch(service, "host:/runs/a")
    await finishing
    assert [e.run.state for e in events] == [evaluation_pb2.RUN_STATE_RUNNING, evaluation_pb2.RUN_STATE_SUCCEEDED]
    (task,) = events[-1].run.tasks
    assert (task.task, task.score, task.items_done, task.metric) == ("niilc", 0.25, 2, "char_f1")
    listed = await service.stub.ListRuns(evaluation_pb2.ListRunsRequest(), timeout=10)
    assert [r.run_id for r in listed.runs] == ["host:/runs/a"] and listed.runs[0].model_id == "m"

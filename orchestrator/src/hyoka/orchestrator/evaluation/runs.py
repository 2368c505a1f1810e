"""Evaluation runs inside a server: each accepted run is an asyncio task in the server's event loop
that calls `runner.evaluation.evaluate` (the engine of `hyoka eval`), with a Progress adapter that
updates the run's live view and wakes its watchers.

- Bookkeeping: the run store (`runner.store`: SQLite or PostgreSQL) holds each run's request,
  state, error and final results (the manager creates the run queued; evaluate() records it
  running and its end, the manager then adds its progress view and placement) and, through
  evaluate(), every item, so a run started again resumes. The run's exports (records, scores.csv,
  results.json) go to `<state_dir>/runs/<run_id>/`, its `--out` directory.
- Idempotency: `start` with a run id already in the store answers that run (not started twice);
  the same id with a different request raises `RunConflict`.
- Watching: every watcher has one wake-up flag; each change sets the flags, and a watcher sends the
  run's snapshot as it is when it gets to it. A slow watcher thus skips intermediate snapshots
  (never the last one) and never holds the run up; any number can watch.
- Cancelling cancels the run's task: the engine abandons its in-flight requests at once and sends
  no more; the run ends cancelled.
- Restart: a server that stops puts its unfinished runs back to queued; runs the store holds as
  queued or running when a manager starts (the server stopped or died during them) are started
  again and resume from their stored items. One server per store: replicas sharing a PostgreSQL
  store would each resume them.
- Placement: a run that succeeds with a score for all 19 benchmarks is placed among the 35
  reference models (`placement.place`); otherwise the reason says which benchmarks are missing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyoka.orchestrator.evaluation.placement import place
from hyoka.orchestrator.evaluation.requests import ORIGIN, Launch, RunRequest
from hyoka.orchestrator.runner.engine import TaskResult
from hyoka.orchestrator.runner.evaluation import EvalConfig, EvalInputError, EvalOutcome, EvalRunError, Progress
from hyoka.orchestrator.runner.store import RunRecord, RunStore
from hyoka.rpc.tls import ClientTLS

log = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
TASK_PENDING, TASK_RUNNING, TASK_SUCCEEDED, TASK_FAILED, TASK_CANCELLED = (
    "pending",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
CANCELLED_MESSAGE = "cancelled by CancelRun"
CANCEL_WAIT_S = 30.0
STORE_POLL_S = 1.0  # WatchRun of a run this server does not hold
STORE_FILE = "runs.db"  # the default run store, in the state directory


class RunNotFound(LookupError):
    pass


class RunConflict(ValueError):
    """The run id is taken by a run with a different request."""


# --- the live view of a run ---------------------------------------------------------------------


@dataclass
class TaskView:
    task: str
    state: str = TASK_PENDING
    items_total: int = 0
    items_done: int = 0
    score: float | None = None
    metric: str = ""
    benchmark: str = ""
    error: str = ""


@dataclass
class RunView:
    """A run as clients see it; `snapshot()` copies it for a reply."""

    run_id: str
    request: RunRequest
    state: str
    created_at: float
    updated_at: float
    tasks: list[TaskView]
    model_id: str = ""
    error: str = ""
    placement: dict[str, Any] | None = None
    placement_reason: str = ""
    sequence: int = 0
    watchers: set[asyncio.Event] = field(default_factory=set, repr=False, compare=False)

    @property
    def model(self) -> str:
        return self.request.model_spec()

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def snapshot(self) -> RunView:
        return dataclasses.replace(self, tasks=[dataclasses.replace(t) for t in self.tasks], watchers=set())

    def results(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the store keeps besides the state and error: the engine's results (`payload`,
        results.json's content) when the run succeeded, and the service's view of the run."""
        return {
            **(payload or {}),
            "model_id": self.model_id,
            "progress": [dataclasses.asdict(t) for t in self.tasks],
            "placement": self.placement,
            "placement_reason": self.placement_reason,
        }

    @classmethod
    def from_record(cls, record: RunRecord) -> RunView:
        request = RunRequest.from_dict(record.run_id, dict(record.request))
        results = record.results or {}
        stored = {t.get("task"): t for t in results.get("progress") or [] if isinstance(t, dict)}
        known = {f.name for f in dataclasses.fields(TaskView)}
        tasks = [
            TaskView(**{k: v for k, v in stored[name].items() if k in known}) if name in stored else TaskView(name)
            for name in request.task_names()
        ]
        if not stored:  # a run that `hyoka eval --run-id` recorded: its results are the engine's
            tasks = [_task_from_result(t) for t in results.get("tasks") or [] if isinstance(t, dict)] or tasks
        return cls(
            run_id=record.run_id,
            request=request,
            state=record.state,
            created_at=record.created_at,
            updated_at=record.updated_at,
            tasks=tasks,
            model_id=str(results.get("model_id") or ""),
            error=record.error or "",
            placement=results.get("placement"),
            placement_reason=str(results.get("placement_reason") or ""),
        )


def _task_from_result(result: dict[str, Any]) -> TaskView:
    """A task of results.json (`TaskResult` as a dict) as a finished task."""
    score = result.get("score")
    return TaskView(
        task=str(result.get("task", "")),
        state=TASK_SUCCEEDED,
        items_total=int(result.get("num_items") or 0),
        items_done=int(result.get("num_items") or 0),
        score=float(score) if isinstance(score, int | float) else None,
        metric=str(result.get("metric") or ""),
        benchmark=str(result.get("benchmark_column") or ""),
    )


@dataclass(frozen=True)
class RunSettings:
    """Where runs write and the services they use (EvalConfig's server-wide fields)."""

    state_dir: Path
    data_dir: Path
    #: The run store's URL as given (with any password): evaluate() opens it too, to keep the
    #: run's items and record the run. None: the SQLite file `<state_dir>/runs.db`.
    store_url: str | None = None
    metrics_url: str | None = None
    sandbox_url: str | None = None
    auth_token: str | None = None  # for metrics_url / sandbox_url
    max_active_runs: int = 2
    tls: ClientTLS | None = None  # for metrics_url / sandbox_url (`hyoka serve`: ClientTLS.from_env())

    def out_dir(self, run_id: str) -> Path:
        return self.state_dir / "runs" / run_id

    def store(self) -> str:
        return self.store_url or str((self.state_dir / STORE_FILE).absolute())


Evaluate = Callable[..., Awaitable[EvalOutcome]]


class _ProgressAdapter(Progress):
    """The engine's progress callbacks -> the run's view and its watchers (from any thread)."""

    def __init__(self, manager: RunManager, view: RunView) -> None:
        self._manager = manager
        self._view = view
        self._by_name = {t.task: t for t in view.tasks}

    def _apply(self, change: Callable[[], None]) -> None:
        def apply() -> None:
            change()
            self._manager._changed(self._view)

        self._manager._call_in_loop(apply)

    def start_task(self, task: str, total: int) -> None:
        def change() -> None:
            view = self._by_name[task]
            view.items_total, view.state = total, TASK_RUNNING

        self._apply(change)

    def advance(self, task: str, n: int) -> None:
        def change() -> None:
            self._by_name[task].items_done += n

        self._apply(change)

    def finish_task(self, result: TaskResult) -> None:
        def change() -> None:
            view = self._by_name[result.task]
            view.state, view.score, view.metric = TASK_SUCCEEDED, result.score, result.metric
            view.benchmark = result.benchmark_column
            view.items_done = max(view.items_done, result.num_items)

        self._apply(change)


class RunManager:
    """Starts, tracks, cancels and resumes runs in the running event loop (create it there)."""

    def __init__(self, store: RunStore, settings: RunSettings, *, evaluate: Evaluate | None = None) -> None:
        from hyoka.orchestrator.runner.evaluation import evaluate as engine

        self._store = store
        self.settings = settings
        self._evaluate: Evaluate = evaluate or engine
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._live: dict[str, RunView] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(max(1, settings.max_active_runs))
        self._closing = False

    # --- lifecycle ---------------------------------------------------------------------------

    async def resume_unfinished(self) -> list[str]:
        """Start again the service's runs that the store holds as queued or running (the server
        stopped during them); they resume from their stored items. Returns their ids. Runs that
        `hyoka eval` recorded in a shared store are not the service's and are left alone."""
        records = self._store.list_runs(limit=100_000, states=[QUEUED, RUNNING])
        resumed = []
        for record in reversed(records):  # oldest first
            if record.run_id in self._live or record.request.get("origin") != ORIGIN:
                continue
            view = RunView.from_record(record)
            view.state, view.error = QUEUED, ""
            self._launch(view)
            resumed.append(record.run_id)
        if resumed:
            log.info("resuming %d unfinished run(s): %s", len(resumed), ", ".join(resumed))
        return resumed

    async def close(self) -> None:
        """Stop every run (server shutdown) and record them queued again: the next server on this
        store resumes them."""
        self._closing = True
        stopping = {run_id: self._live[run_id] for run_id in self._tasks}
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_WAIT_S)
        # evaluate() has recorded them cancelled on the way out: queued again, for the next server.
        for view in stopping.values():
            if view.terminal:
                continue
            view.state, view.error = QUEUED, ""
            try:
                self._record(view)
            except Exception:
                log.exception("run %s: could not queue it again in the run store", view.run_id)

    # --- the API -------------------------------------------------------------------------------

    async def start(self, request: RunRequest) -> tuple[RunView, bool]:
        """(the run, created): a new run is queued and started; an existing run of the same id and
        request is answered as it is."""
        try:
            record, created = self._store.create_run(request.run_id, request.to_dict())
        except ValueError as error:  # runner.store.RunConflictError
            raise RunConflict(str(error)) from None
        if not created:
            existing = self._live.get(request.run_id)
            if existing is None and RunRequest.from_dict(request.run_id, dict(record.request)) != request:
                raise RunConflict(f"run {request.run_id!r} exists with a different request")
            return (existing.snapshot() if existing is not None else RunView.from_record(record)), False
        view = RunView.from_record(record)
        self._launch(view)
        return view.snapshot(), True

    def get(self, run_id: str) -> RunView:
        live = self._live.get(run_id)
        if live is not None:
            return live.snapshot()
        record = self._store.get_run(run_id)
        if record is None:
            raise RunNotFound(run_id)
        return RunView.from_record(record)

    def list(self, *, limit: int = 100, states: list[str] | None = None) -> list[RunView]:
        records = self._store.list_runs(limit=limit, states=states or None)
        return [self._live[r.run_id].snapshot() if r.run_id in self._live else RunView.from_record(r) for r in records]

    async def cancel(self, run_id: str) -> RunView:
        task = self._tasks.get(run_id)
        if task is None:
            return self.get(run_id)  # finished (or unknown: RunNotFound)
        view = self._live[run_id]
        task.cancel()
        await asyncio.wait([task], timeout=CANCEL_WAIT_S)  # not cancelled if this call is
        return view.snapshot()

    async def watch(self, run_id: str) -> AsyncIterator[tuple[RunView, int]]:
        """(snapshot, sequence) now and after each change, until a terminal snapshot."""
        view = self._live.get(run_id)
        if view is None:  # finished, or run by another server on a shared store: poll the store
            sequence, last = 0, None
            while True:
                stored = self.get(run_id)
                if run_id in self._live:  # started here meanwhile (resumed)
                    break
                if last is None or stored.updated_at != last:
                    sequence, last = sequence + 1, stored.updated_at
                    yield stored, sequence
                if stored.terminal:
                    return
                await asyncio.sleep(STORE_POLL_S)
            view = self._live[run_id]
        wake = asyncio.Event()
        view.watchers.add(wake)
        try:
            while True:
                wake.clear()
                snapshot = view.snapshot()
                yield snapshot, snapshot.sequence
                if snapshot.terminal:
                    return
                await wake.wait()
        finally:
            view.watchers.discard(wake)

    # --- running -------------------------------------------------------------------------------

    def _call_in_loop(self, fn: Callable[[], object]) -> None:
        if threading.get_ident() == self._loop_thread:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def _changed(self, view: RunView) -> None:
        view.sequence += 1
        view.updated_at = time.time()
        for wake in view.watchers:
            wake.set()

    def _launch(self, view: RunView) -> None:
        self._live[view.run_id] = view
        task = asyncio.create_task(self._run(view), name=f"run {view.run_id}")
        self._tasks[view.run_id] = task

        def done(_: asyncio.Task[None]) -> None:
            self._tasks.pop(view.run_id, None)
            if view.terminal or self._closing:
                self._live.pop(view.run_id, None)

        task.add_done_callback(done)

    def _record(self, view: RunView, payload: dict[str, Any] | None = None) -> None:
        self._store.update_run(view.run_id, state=view.state, error=view.error or None, results=view.results(payload))

    async def _evaluate_launched(self, view: RunView, launch: Launch, progress: Progress) -> EvalOutcome:
        """Start the run's model server, evaluate through it, remove it (also when cancelled)."""
        from hyoka.orchestrator.launcher import LaunchConfigError, LaunchError, launched_server_async

        try:
            spec = launch.spec()
            backend, options = launch.backend_choice()
            async with launched_server_async(spec) as server:
                config = dataclasses.replace(
                    self._config(view),
                    model=server.model_spec(options, backend=backend),
                    model_key=server.model_key(options, backend=backend),
                )
                return await self._evaluate(config, progress=progress)
        except (LaunchConfigError, LaunchError) as error:
            raise EvalInputError(f"launch: {error}") from None

    def _config(self, view: RunView) -> EvalConfig:
        request, settings = view.request, self.settings
        return EvalConfig(
            model=request.model_spec(),
            tasks=request.task_names(),
            out=settings.out_dir(view.run_id),
            data_dir=settings.data_dir,
            limit=request.limit,
            metrics_url=settings.metrics_url,
            sandbox_url=settings.sandbox_url,
            auth_token=settings.auth_token,
            tls=settings.tls,
            model_id=request.model_id or None,
            tokenizer=request.tokenizer or None,
            store=settings.store(),
            run_id=view.run_id,
        )

    def _finish(self, view: RunView, state: str, error: str = "", payload: dict[str, Any] | None = None) -> None:
        view.state, view.error = state, error
        unfinished = TASK_CANCELLED if state == CANCELLED else TASK_FAILED
        for task in view.tasks:
            if task.state != TASK_SUCCEEDED and state != SUCCEEDED:
                task.state = unfinished
        try:
            self._record(view, payload)
        except Exception:  # the store is down: the live view still ends; log it
            log.exception("run %s: could not record its end (%s) in the run store", view.run_id, state)
        self._changed(view)

    async def _run(self, view: RunView) -> None:
        try:
            async with self._slots:
                view.state = RUNNING
                # The engine reports the items it resumes again: count from 0 (a restarted run).
                view.tasks = [TaskView(t.task) for t in view.tasks]
                self._record(view)
                self._changed(view)
                progress = _ProgressAdapter(self, view)
                if view.request.launch is None:
                    outcome = await self._evaluate(self._config(view), progress=progress)
                else:
                    outcome = await self._evaluate_launched(view, view.request.launch, progress)
                view.model_id = outcome.model_id
                scores = {r.benchmark_column: r.score for r in outcome.results}
                view.placement, view.placement_reason = await asyncio.to_thread(place, outcome.model_id, scores)
                self._finish(view, SUCCEEDED, payload=outcome.payload)
        except asyncio.CancelledError:
            if self._closing:
                raise  # server shutdown: `close` queues it again
            self._finish(view, CANCELLED, CANCELLED_MESSAGE)
        except (EvalInputError, EvalRunError) as error:
            self._finish(view, FAILED, str(error))
        except Exception as error:
            log.exception("run %s failed unexpectedly", view.run_id)
            self._finish(view, FAILED, f"internal error: {type(error).__name__}: {error}")

"""The run engine: send the items of a run's tasks through one bounded in-flight window per model
(`runner/scheduler.py`), score them through the services, and keep each item in the run store
(`runner/store`), exporting the scored records to the task's JSONL records file.

Requests flow: a slot freed by one answer goes straight to the next request, of the same task or
the next one, so one task's tail overlaps the next task's head and a slow answer never holds the
others back. Answers are committed to the store as they arrive (all those of one event-loop turn
in one transaction; before scoring, so a scoring failure or a killed process does not cost the
generation), keyed by model, task, item, prompt hash and generation settings; then scored in
batches of whatever finished while the previous scoring call ran (`Task.score`), and the records
committed to the store under the settings fingerprint and appended to the export. Items with a
stored record are not sent again, nor are items with a stored output: a task definition changed
without changing what is sent (a metric fix) re-scores the stored outputs.

When a request fails (after the backend's retries) or scoring fails, nothing new is sent, the
requests in flight are abandoned, the answers already in are kept and scored, and the error is
raised as `TaskRunFailure` naming the task.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyoka.orchestrator.backends.base import LoglikelihoodResult, ModelBackend
from hyoka.orchestrator.runner.records import RecordsError, RecordStore
from hyoka.orchestrator.runner.scheduler import Window, make_dispatcher
from hyoka.orchestrator.runner.store import RunStore, StoredOutput, StoredRecord, StoreError, open_store
from hyoka.orchestrator.runner.store.keys import generation_hash, prompt_hash
from hyoka.orchestrator.tasks import Item, ItemOutput, Scorers, Task

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class TaskResult:
    task: str
    benchmark_column: str
    metric: str
    score: float  # 0-1: the mean of item scores, or the corpus score (BLEU, ROUGE)
    num_items: int
    num_resumed: int  # items taken from an earlier, interrupted run
    wall_seconds: float
    signatures: tuple[str, ...] = ()
    groups: dict[str, float] = field(default_factory=dict)  # sub-benchmark scores (MMLU subjects, BBH tasks)
    details: dict[str, Any] = field(default_factory=dict)


def settings_fingerprint(task: Task, model: str) -> str:
    """Identifies everything that makes records comparable: the task definition and the model."""
    payload = json.dumps({"model": model, "task": task.spec.model_dump(mode="json")}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


DEFAULT_STORE_NAME = "hyoka.sqlite"  # run_tasks without a store: this SQLite file beside the records


def _output_to_json(out: ItemOutput) -> dict[str, Any]:
    return {"completions": list(out.completions), "logprobs": list(out.logprobs)}


def _output_from_json(record: dict[str, Any]) -> ItemOutput:
    return ItemOutput(
        completions=tuple(str(c) for c in record.get("completions", [])),
        logprobs=tuple(float(x) for x in record.get("logprobs", [])),
    )


def batch_size_for(items: Sequence[Item], max_concurrency: int) -> int:
    """Items per backend call for a batching backend: its concurrency counted in sequences, so a
    task sampling n completions per item sends max_concurrency // n items (at least one) at a time."""
    samples = max((it.generation.n for it in items if it.generation is not None), default=1)
    return max(1, max_concurrency // samples)


class TaskRunFailure(RuntimeError):
    """A run stopped: `error` (a backend, service or scoring error) happened in task `task`."""

    def __init__(self, task: str, error: BaseException) -> None:
        super().__init__(f"task {task}: {error}")
        self.task = task
        self.error = error


@dataclass
class TaskJob:
    """One task of a run: its items, records file (the JSONL export) and callbacks."""

    task: Task
    items: Sequence[Item]
    records_path: Path
    on_progress: ProgressCallback | None = None
    on_finish: Callable[[TaskResult], None] | None = None


@dataclass
class RunStats:
    """What the window saw (for tests and benchmarks)."""

    window: int = 0
    peak_in_flight: int = 0
    requests: int = 0


class _TaskRun:
    """The state of one task during a run."""

    def __init__(self, job: TaskJob, model: str, store: RunStore) -> None:
        self.job = job
        self.task = job.task
        self.model = model
        self.store = store
        check_settings(job.records_path, job.task, model, create=True)
        self.fingerprint = settings_fingerprint(job.task, model)
        self.keys = {it.id: (prompt_hash(it), generation_hash(it)) for it in job.items}
        self.export = RecordStore(job.records_path)
        self._import_legacy()
        done = store.load_records(self.fingerprint)
        self.resumed = {
            it.id: done[it.id].record
            for it in job.items
            if it.id in done and (done[it.id].prompt_hash, done[it.id].settings_hash) == self.keys[it.id]
        }
        self.fresh: dict[str, dict[str, Any]] = {}
        self.outputs = {
            o.item_id: _output_from_json(o.output)
            for o in store.load_outputs(model, job.task.name)
            if self.keys.get(o.item_id) == (o.prompt_hash, o.settings_hash)
        }
        # The export holds exactly this run's resumed records (whatever a killed process left there).
        if self.resumed or job.records_path.exists():
            self.export.rewrite(self.resumed[it.id] for it in job.items if it.id in self.resumed)
        pending = [it for it in job.items if it.id not in self.resumed]
        self.to_send = [it for it in pending if it.id not in self.outputs]
        self.ready: list[Item] = [it for it in pending if it.id in self.outputs]  # outputs kept, not scored
        self.unwritten: list[Item] = []  # answered, not yet in the store
        self.unscored = len(pending)
        self.wake = asyncio.Event()
        self.started = time.perf_counter()
        self.result: TaskResult | None = None
        # per item being generated: its completions and log-likelihoods so far, and parts missing
        self.partial: dict[str, tuple[list[list[str]], list[LoglikelihoodResult | None], list[int]]] = {}

    def _import_legacy(self) -> None:
        """Records and outputs of a run directory written before the store (JSONL files, whose
        settings `check_settings` has just checked) go into the store; records already there win."""
        path = self.job.records_path
        if path.exists():
            records = [
                StoredRecord(item_id, *self.keys[item_id], record)
                for item_id, record in self.export.load().items()
                if item_id in self.keys
            ]
            self.store.save_records(self.fingerprint, self.task.name, records, replace=False)
        legacy_outputs = path.with_suffix(".outputs.jsonl")
        if legacy_outputs.exists():
            kept = RecordStore(legacy_outputs, required=("item_id",)).load()
            self.store.save_outputs(
                self.model,
                self.task.name,
                [
                    StoredOutput(item_id, *self.keys[item_id], _output_to_json(_output_from_json(record)))
                    for item_id, record in kept.items()
                    if item_id in self.keys
                ],
            )

    def stored_output(self, item: Item) -> StoredOutput:
        return StoredOutput(item.id, *self.keys[item.id], _output_to_json(self.outputs[item.id]))

    def flush_outputs(self) -> None:
        if not self.unwritten:
            return
        batch, self.unwritten = self.unwritten, []
        self.store.save_outputs(self.model, self.task.name, [self.stored_output(it) for it in batch])
        self.ready.extend(batch)
        self.wake.set()


async def run_tasks(
    jobs: Sequence[TaskJob],
    backend: ModelBackend,
    scorers: Scorers,
    *,
    model: str,
    window: int | None = None,
    max_score_batch: int = 512,
    stats: RunStats | None = None,
    store: RunStore | None = None,
) -> list[TaskResult]:
    """Evaluate every job's items (resuming from `store`) through one window over `backend`
    (default size: its `max_concurrency`); the results in job order. Raises TaskRunFailure.
    Without a store, each job's is an SQLite file `hyoka.sqlite` beside its records file."""
    await backend.start()
    capacity = backend.capabilities.max_concurrency if window is None else window
    if capacity < 1:
        raise ValueError(f"the in-flight window must hold at least 1 request, got {capacity}")
    if store is not None:
        return await _run_tasks(jobs, backend, scorers, model, capacity, max_score_batch, stats, lambda job: store)
    opened: dict[Path, RunStore] = {}

    def default_store(job: TaskJob) -> RunStore:
        folder = job.records_path.parent
        if folder not in opened:
            opened[folder] = open_store(None, default_path=folder / DEFAULT_STORE_NAME)
        return opened[folder]

    try:
        return await _run_tasks(jobs, backend, scorers, model, capacity, max_score_batch, stats, default_store)
    finally:
        for s in opened.values():
            s.close()


async def _run_tasks(
    jobs: Sequence[TaskJob],
    backend: ModelBackend,
    scorers: Scorers,
    model: str,
    capacity: int,
    max_score_batch: int,
    stats: RunStats | None,
    store_for: Callable[[TaskJob], RunStore],
) -> list[TaskResult]:
    dispatcher, size = make_dispatcher(backend, capacity)
    slots = Window(size)
    stats = stats if stats is not None else RunStats()
    stats.window = size
    runs = [_TaskRun(job, model, store_for(job)) for job in jobs]
    for run in runs:
        if run.job.on_progress and run.resumed:
            run.job.on_progress(len(run.resumed))

    failure: TaskRunFailure | None = None
    finished = asyncio.Event()
    stopping = False
    in_flight: set[asyncio.Task[None]] = set()
    flush_scheduled = False
    loop = asyncio.get_running_loop()
    remaining = len(runs)

    def fail(run: _TaskRun, error: BaseException) -> None:
        nonlocal failure
        if failure is None:
            failure = TaskRunFailure(run.task.name, error)
        finished.set()

    def flush() -> None:
        nonlocal flush_scheduled
        flush_scheduled = False
        for run in runs:
            try:
                run.flush_outputs()
            except (OSError, StoreError) as e:
                fail(run, e)

    def item_done(run: _TaskRun, item: Item) -> None:
        nonlocal flush_scheduled
        completions, lls, _ = run.partial.pop(item.id)
        run.outputs[item.id] = ItemOutput(
            completions=tuple(completions[0]) if completions else (),
            logprobs=tuple(r.logprob for r in lls if r is not None),
        )
        run.unwritten.append(item)
        if not flush_scheduled:  # one write (and fsync) for everything answered in this turn
            flush_scheduled = True
            loop.call_soon(flush)

    async def send(run: _TaskRun, item: Item, part: int, weight: int) -> None:
        try:
            completions, lls, missing = run.partial[item.id]
            if part < 0:
                assert item.generation is not None
                completions.append(await dispatcher.generate(item.generation))
            else:
                lls[part] = await dispatcher.loglikelihood(item.loglikelihood[part])
        except asyncio.CancelledError:
            raise
        except Exception as e:
            fail(run, e)
            return
        finally:
            slots.release(weight)
        missing[0] -= 1
        if missing[0] == 0:
            item_done(run, item)

    async def pump() -> None:
        for run in runs:
            for item in run.to_send:
                parts = ([-1] if item.generation is not None else []) + list(range(len(item.loglikelihood)))
                run.partial[item.id] = ([], [None] * len(item.loglikelihood), [len(parts)])
                if not parts:  # nothing to ask: an empty output
                    item_done(run, item)
                    continue
                for part in parts:
                    weight = slots.weight(item.generation.n if part < 0 and item.generation is not None else 1)
                    await slots.acquire(weight)
                    if failure is not None:
                        slots.release(weight)
                        return
                    stats.requests += 1
                    job = asyncio.create_task(send(run, item, part, weight))
                    in_flight.add(job)
                    job.add_done_callback(in_flight.discard)
                    stats.peak_in_flight = max(stats.peak_in_flight, slots.in_use)

    async def score(run: _TaskRun) -> None:
        nonlocal remaining
        try:
            while True:
                if run.ready:
                    batch, run.ready = run.ready[:max_score_batch], run.ready[max_score_batch:]
                    scored = await run.task.score(batch, [run.outputs[it.id] for it in batch], scorers)
                    records = [s.record(run.task.name) for s in scored]
                    run.store.save_records(
                        run.fingerprint,
                        run.task.name,
                        [StoredRecord(r["item_id"], *run.keys[r["item_id"]], r) for r in records],
                    )
                    run.export.append(records, sync=False)  # the store holds them already
                    for r in records:
                        run.fresh[r["item_id"]] = r
                    run.unscored -= len(batch)
                    if run.job.on_progress:
                        run.job.on_progress(len(batch))
                    continue
                if run.unscored == 0 or stopping:
                    break
                run.wake.clear()
                await run.wake.wait()
            if stopping:
                return
            all_records = {**run.resumed, **run.fresh}
            aggregate = await run.task.aggregate([all_records[it.id] for it in run.job.items], scorers)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            fail(run, e)
            return
        run.result = TaskResult(
            task=run.task.name,
            benchmark_column=run.task.spec.benchmark_column,
            metric=run.task.spec.metric.name,
            score=aggregate.score,
            num_items=len(run.job.items),
            num_resumed=len(run.resumed),
            wall_seconds=time.perf_counter() - run.started,
            signatures=aggregate.signatures,
            groups=aggregate.groups,
            details=aggregate.details,
        )
        if run.job.on_finish:
            run.job.on_finish(run.result)
        remaining -= 1
        if remaining == 0:
            finished.set()

    pump_job = asyncio.create_task(pump())
    scorer_jobs = [asyncio.create_task(score(run)) for run in runs]
    if not runs:
        finished.set()
    try:
        await finished.wait()
        if failure is not None:
            # Send nothing more; keep and score what has come back; then report.
            pump_job.cancel()
            for job in list(in_flight):
                job.cancel()
            await asyncio.gather(pump_job, *in_flight, return_exceptions=True)
            flush()
            stopping = True
            for run in runs:
                run.wake.set()
            await asyncio.gather(*scorer_jobs, return_exceptions=True)
            raise failure
        await pump_job
    finally:
        for job in [pump_job, *in_flight, *scorer_jobs]:
            job.cancel()
        await asyncio.gather(pump_job, *in_flight, *scorer_jobs, return_exceptions=True)
        if failure is None:
            flush()
        await dispatcher.aclose()
        stats.peak_in_flight = max(stats.peak_in_flight, slots.peak)
    return [run.result for run in runs if run.result is not None]


async def run_task(
    task: Task,
    items: Sequence[Item],
    backend: ModelBackend,
    scorers: Scorers,
    records_path: Path,
    *,
    model: str,
    on_progress: ProgressCallback | None = None,
    window: int | None = None,
    store: RunStore | None = None,
) -> TaskResult:
    """Evaluate `items` of one task (resuming from `store`, default: `hyoka.sqlite` beside
    `records_path`, the JSONL export) and return its aggregate score; errors are raised as they
    happened (not wrapped)."""
    job = TaskJob(task, items, records_path, on_progress=on_progress)
    try:
        (result,) = await run_tasks([job], backend, scorers, model=model, window=window, store=store)
    except TaskRunFailure as f:
        raise f.error from None
    return result


def check_settings(records_path: Path, task: Task, model: str, *, create: bool) -> None:
    """Refuse to mix records of different settings (model, task definition) in one file; with
    `create`, record this run's settings next to a new records file."""
    fingerprint = settings_fingerprint(task, model)
    meta = records_path.with_suffix(".settings")
    if meta.exists():
        found = meta.read_text(encoding="utf-8").strip()
        if found != fingerprint:
            raise RecordsError(
                f"{records_path}: written by a run with other settings (model or task definition); "
                "use another --out directory (with --store naming this run's store to reuse its model outputs)"
            )
    elif create:
        records_path.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(fingerprint + "\n", encoding="utf-8")

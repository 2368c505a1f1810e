"""The run engine: send a task's items to a backend in batches sized by its capabilities, score
them through the services, and write each finished item to the task's records file.

Batches go to the backend one at a time (each holding `max_concurrency` sequences, which the
backend fans out or batches itself); scoring a batch overlaps with generating the next one.
Items already in the records file are not sent again, and model outputs are kept in
`<task>.outputs.jsonl` before scoring, so a scoring failure does not cost the generation.
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

from hyoka.orchestrator.backends.base import ModelBackend
from hyoka.orchestrator.runner.records import RecordsError, RecordStore
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


def _output_to_json(item_id: str, out: ItemOutput) -> dict[str, Any]:
    return {"item_id": item_id, "completions": list(out.completions), "logprobs": list(out.logprobs)}


def _output_from_json(record: dict[str, Any]) -> ItemOutput:
    return ItemOutput(
        completions=tuple(str(c) for c in record.get("completions", [])),
        logprobs=tuple(float(x) for x in record.get("logprobs", [])),
    )


def batch_size_for(items: Sequence[Item], max_concurrency: int) -> int:
    """Items per backend call: the backend's concurrency counted in sequences, so a task sampling
    n completions per item sends max_concurrency // n items (at least one) at a time."""
    samples = max((it.generation.n for it in items if it.generation is not None), default=1)
    return max(1, max_concurrency // samples)


async def _outputs(backend: ModelBackend, items: Sequence[Item]) -> list[ItemOutput]:
    """One backend call per request kind for a batch: the generations, and every log-likelihood
    request (choices; SQuAD2 asks for both)."""
    gen_requests = [it.generation for it in items if it.generation is not None]
    completions = iter(await backend.generate_until(gen_requests) if gen_requests else [])
    flat = [r for it in items for r in it.loglikelihood]
    results = await backend.loglikelihood(flat) if flat else []
    outs, pos = [], 0
    for it in items:
        n = len(it.loglikelihood)
        outs.append(
            ItemOutput(
                completions=tuple(next(completions)) if it.generation is not None else (),
                logprobs=tuple(r.logprob for r in results[pos : pos + n]),
            )
        )
        pos += n
    return outs


async def run_task(
    task: Task,
    items: Sequence[Item],
    backend: ModelBackend,
    scorers: Scorers,
    records_path: Path,
    *,
    model: str,
    on_progress: ProgressCallback | None = None,
    max_pending_batches: int = 2,
) -> TaskResult:
    """Evaluate `items` (resuming from `records_path`) and return the task's aggregate score."""
    started = time.perf_counter()
    store = RecordStore(records_path)
    check_settings(records_path, task, model, create=True)
    done = store.load()
    wanted = {it.id for it in items}
    resumed = {k: v for k, v in done.items() if k in wanted}
    if on_progress and resumed:
        on_progress(len(resumed))
    pending = [it for it in items if it.id not in resumed]
    output_store = RecordStore(records_path.with_suffix(".outputs.jsonl"), required=("item_id",))
    cached = {k: _output_from_json(v) for k, v in output_store.load().items() if k in wanted}

    batch_size = batch_size_for(items, backend.capabilities.max_concurrency)
    batches = [pending[i : i + batch_size] for i in range(0, len(pending), batch_size)]
    backend_turn = asyncio.Lock()  # one batch at the backend at a time
    in_flight = asyncio.Semaphore(max_pending_batches)  # bounds batches generated but not yet scored
    fresh: dict[str, dict[str, Any]] = {}

    async def process(batch: list[Item]) -> None:
        async with in_flight:
            todo = [it for it in batch if it.id not in cached]
            if todo:
                async with backend_turn:
                    new = await _outputs(backend, todo)
                output_store.append(_output_to_json(it.id, out) for it, out in zip(todo, new, strict=True))
                cached.update((it.id, out) for it, out in zip(todo, new, strict=True))
            outs = [cached[it.id] for it in batch]
            scored = await task.score(batch, outs, scorers)
            records = [s.record(task.name) for s in scored]
            store.append(records)
            for r in records:
                fresh[r["item_id"]] = r
            if on_progress:
                on_progress(len(batch))

    jobs = [asyncio.create_task(process(b)) for b in batches]
    try:
        await asyncio.gather(*jobs)
    finally:
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    all_records = {**resumed, **fresh}
    aggregate = await task.aggregate([all_records[it.id] for it in items], scorers)
    return TaskResult(
        task=task.name,
        benchmark_column=task.spec.benchmark_column,
        metric=task.spec.metric.name,
        score=aggregate.score,
        num_items=len(items),
        num_resumed=len(resumed),
        wall_seconds=time.perf_counter() - started,
        signatures=aggregate.signatures,
        groups=aggregate.groups,
        details=aggregate.details,
    )


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
                "use another --out directory"
            )
    elif create:
        records_path.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(fingerprint + "\n", encoding="utf-8")

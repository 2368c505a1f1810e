"""The metrics domain service: batch limits and validation, and scoring on a worker pool.

Batches are scored in chunks of `chunk_items`, one chunk at a time per request, on a shared thread
pool: a small request queued behind a big one waits for the chunks already queued (one per running
call) rather than for the whole big batch, and the event loop stays free to accept and answer other
calls. Between chunks a cancelled call (client gone, deadline passed) stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hyoka.metrics.base import Batch, Item, ItemScores, Metric, MetricError, Pairs, ScoreResult, gc_paused
from hyoka.metrics.registry import get_metric


@dataclass(frozen=True)
class ServiceLimits:
    #: Items in one Score request (more: RESOURCE_EXHAUSTED; use ScoreStream).
    max_batch_items: int = 10_000
    #: Items in one ScoreStream call.
    max_stream_items: int = 1_000_000
    #: Characters in one prediction or reference.
    max_text_chars: int = 200_000
    #: Items scored per worker task.
    chunk_items: int = 1000
    #: Scoring threads shared by all calls. Every metric holds the GIL while it scores (MeCab via
    #: fugashi and mecab-python3, rapidfuzz, and the Python around them), so a second thread adds
    #: no throughput, only GIL hand-offs; fairness comes from the chunk queue instead (see above).
    workers: int = 1


class BatchTooLarge(Exception):
    def __init__(self, field: str, count: int, limit: int, hint: str) -> None:
        super().__init__(f"{field}: {count} items exceed the limit of {limit}{hint}")
        self.field = field
        self.description = f"{count} items exceed the limit of {limit}{hint}"


def _check_item_lengths(items: Sequence[Item], offset: int, limit: int) -> None:
    for index, item in enumerate(items, start=offset):
        if len(item.prediction) > limit:
            raise MetricError(f"items[{index}].prediction", f"{len(item.prediction)} characters exceed {limit}")
        for j, ref in enumerate(item.references):
            if len(ref) > limit:
                raise MetricError(f"items[{index}].references[{j}]", f"{len(ref)} characters exceed {limit}")


def _check_pair_lengths(pairs: Pairs, offset: int, limit: int) -> None:
    if max(map(len, pairs.predictions), default=0) <= limit and max(map(len, pairs.references), default=0) <= limit:
        return
    _check_item_lengths(pairs.items(), offset, limit)  # rare: find and name the first long text


class MetricsScorer:
    def __init__(self, limits: ServiceLimits | None = None) -> None:
        self.limits = limits or ServiceLimits()
        self._pool = ThreadPoolExecutor(max_workers=self.limits.workers, thread_name_prefix="metrics")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def metric(self, name: str, options: Mapping[str, str]) -> Metric:
        return get_metric(name, options)

    def check_items(self, metric: Metric, batch: Batch, offset: int = 0, *, payload_bytes: int | None = None) -> None:
        """Raise MetricError naming the first bad item (indices count from `offset`). A payload of
        at most `max_text_chars` bytes cannot hold an over-long text, so lengths go unchecked then."""
        limit = self.limits.max_text_chars
        if payload_bytes is None or payload_bytes > limit:
            if isinstance(batch, Pairs):
                _check_pair_lengths(batch, offset, limit)
            else:
                _check_item_lengths(batch, offset, limit)
        metric.check_items(batch, offset)

    def check_batch_size(self, count: int, *, stream: bool) -> None:
        limit = self.limits.max_stream_items if stream else self.limits.max_batch_items
        if count > limit:
            hint = "" if stream else "; send larger batches with ScoreStream"
            raise BatchTooLarge("items", count, limit, hint)

    async def score_converted(
        self, metric: Metric, convert: Callable[[], Batch], *, payload_bytes: int | None = None
    ) -> ScoreResult:
        """Score one request's batch: built from the wire messages by `convert`, checked,
        scored chunk by chunk on the pool, aggregated."""
        scores, aggregated = await self._score(metric, convert, offset=0, payload_bytes=payload_bytes, finish=True)
        assert aggregated is not None
        corpus, details = aggregated
        return ScoreResult(corpus, scores.scores, metric.signature(scores), details)

    async def score_chunk(
        self, metric: Metric, convert: Callable[[], Batch], *, offset: int, payload_bytes: int | None = None
    ) -> ItemScores:
        """Item scores of one chunk of a stream whose earlier chunks held `offset` items."""
        scores, _ = await self._score(metric, convert, offset=offset, payload_bytes=payload_bytes, finish=False)
        return scores

    async def _score(
        self,
        metric: Metric,
        convert: Callable[[], Batch],
        *,
        offset: int,
        payload_bytes: int | None,
        finish: bool,
    ) -> tuple[ItemScores, tuple[float, dict[str, float]] | None]:
        """One pool task per `chunk_items` items, with the collector paused: the first task also
        builds the items (`convert`) and checks them, the last also frees them and, with `finish`,
        aggregates; so the common one-chunk batch costs a single thread hand-off."""
        loop = asyncio.get_running_loop()
        step = self.limits.chunk_items
        items: Batch = []
        scores = ItemScores([])
        aggregated: tuple[float, dict[str, float]] | None = None

        def run_chunk(start: int) -> bool:
            """Score items[start:start + step]; True when that was the last chunk."""
            nonlocal items, aggregated
            with gc_paused():
                if start == 0:
                    items = convert()
                    if finish and not items:
                        raise MetricError("items", "the batch is empty")
                    self.check_items(metric, items, offset, payload_bytes=payload_bytes)
                if items:
                    scores.extend(metric.score_batch(items[start : start + step]))
                if start + step < len(items):
                    return False
                # Free the items while the collector is still paused: a collection over them
                # after the pause costs more than their deallocation here.
                items = []
                if finish:
                    aggregated = metric.aggregate(scores)
                return True

        start = 0
        while not await loop.run_in_executor(self._pool, run_chunk, start):
            start += step
        return scores, aggregated

    async def finish(self, metric: Metric, scores: ItemScores) -> ScoreResult:
        """The result of a stream whose chunks' item scores were gathered in `scores`."""
        if not scores.scores:
            raise MetricError("items", "the batch is empty")
        loop = asyncio.get_running_loop()
        corpus, details = await loop.run_in_executor(self._pool, metric.aggregate, scores)
        return ScoreResult(corpus, scores.scores, metric.signature(scores), details)

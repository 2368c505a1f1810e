"""How requests reach a backend: a bounded in-flight window, refilled as each request completes.

A run holds one `Window` per model (its capacity in sequences: the backend's `max_concurrency`,
which servers report themselves, e.g. TGI's `/info` `max_concurrent_requests`). The engine's pump
takes a slot for each request and sends it at once; when an answer comes back its slot goes to the
next request, whichever task it belongs to. There is no batch barrier: one slow answer holds one
slot, not a whole batch. A request sampling `n` completions holds `n` slots (at most the window).

Backends that want batches (a local model: `ModelBackend.prefers_batches`) get them from a
`BatchDispatcher`, which gathers the requests queued while the previous batch ran; servers with
continuous batching (TGI, vLLM, SGLang) get one request per call from a `StreamDispatcher`.
Both answer one request at a time, so the engine is the same for either.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from dataclasses import dataclass, field
from typing import Any, Literal

from hyoka.orchestrator.backends.base import (
    BackendError,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    ModelBackend,
)


class Window:
    """A weighted FIFO semaphore: at most `capacity` units held at once (a request larger than the
    window holds all of it). Waiters are served in arrival order, so no request starves."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"the in-flight window must hold at least 1 request, got {capacity}")
        self.capacity = capacity
        self.in_use = 0
        self.peak = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    def weight(self, n: int) -> int:
        return max(1, min(n, self.capacity))

    async def acquire(self, weight: int) -> None:
        if not self._waiters and self.in_use + weight <= self.capacity:
            self._take(weight)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((weight, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(weight)  # granted just as we were cancelled: give it back
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove((weight, future))
            raise

    def _take(self, weight: int) -> None:
        self.in_use += weight
        self.peak = max(self.peak, self.in_use)

    def release(self, weight: int) -> None:
        self.in_use -= weight
        while self._waiters and self.in_use + self._waiters[0][0] <= self.capacity:
            w, future = self._waiters.popleft()
            if future.done():
                continue
            self._take(w)
            future.set_result(None)


class Dispatcher:
    """Sends single requests to a backend."""

    def __init__(self, backend: ModelBackend) -> None:
        self.backend = backend

    async def generate(self, request: GenerationRequest) -> list[str]:
        raise NotImplementedError

    async def loglikelihood(self, request: LoglikelihoodRequest) -> LoglikelihoodResult:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Stop any worker."""


class StreamDispatcher(Dispatcher):
    """One backend call per request (servers batch concurrent requests themselves)."""

    async def generate(self, request: GenerationRequest) -> list[str]:
        (out,) = await self.backend.generate_until([request])
        return out

    async def loglikelihood(self, request: LoglikelihoodRequest) -> LoglikelihoodResult:
        (out,) = await self.backend.loglikelihood([request])
        return out


@dataclass
class _Queued:
    kind: Literal["gen", "ll"]
    request: Any
    weight: int
    future: asyncio.Future[Any] = field(repr=False)


class BatchDispatcher(Dispatcher):
    """Gathers queued requests of one kind into backend calls of at most `batch_capacity`
    sequences; one call at a time (a local model computes one batch at a time anyway)."""

    def __init__(self, backend: ModelBackend, batch_capacity: int) -> None:
        super().__init__(backend)
        self.batch_capacity = max(1, batch_capacity)
        self._queue: list[_Queued] = []
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    async def generate(self, request: GenerationRequest) -> list[str]:
        result: list[str] = await self._submit("gen", request, request.n)
        return result

    async def loglikelihood(self, request: LoglikelihoodRequest) -> LoglikelihoodResult:
        result: LoglikelihoodResult = await self._submit("ll", request, 1)
        return result

    async def _submit(self, kind: Literal["gen", "ll"], request: Any, weight: int) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(kind, request, weight, future))
        self._wake.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._work())
        return await future

    def _take(self) -> list[_Queued]:
        kind = self._queue[0].kind
        batch: list[_Queued] = []
        used = 0
        rest: list[_Queued] = []
        for q in self._queue:
            if q.kind == kind and (not batch or used + q.weight <= self.batch_capacity):
                batch.append(q)
                used += q.weight
            else:
                rest.append(q)
        self._queue = rest
        return batch

    async def _work(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(0)  # let the requests released with this one queue up
            batch = [q for q in self._take() if not q.future.cancelled()]
            if not batch:
                continue
            try:
                if batch[0].kind == "gen":
                    results: list[Any] = list(await self.backend.generate_until([q.request for q in batch]))
                else:
                    results = list(await self.backend.loglikelihood([q.request for q in batch]))
                if len(results) != len(batch):
                    raise BackendError(f"backend answered {len(results)} of {len(batch)} requests")
            except Exception as e:  # every waiter of the batch gets the error
                for q in batch:
                    if not q.future.done():
                        q.future.set_exception(e)
                continue
            for q, r in zip(batch, results, strict=True):
                if not q.future.done():
                    q.future.set_result(r)

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for q in self._queue:
            q.future.cancel()
        self._queue = []


def make_dispatcher(backend: ModelBackend, window: int) -> tuple[Dispatcher, int]:
    """The dispatcher for `backend` and the run's window size: a batching backend gets two
    batches' worth in flight (one computing, the next gathered), a server its own limit."""
    if backend.prefers_batches:
        return BatchDispatcher(backend, window), 2 * window
    return StreamDispatcher(backend), window

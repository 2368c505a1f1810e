"""Several endpoints serving one model (replicas), used as one backend.

`tgi:http://gpu-1:8080+http://gpu-2:8080` (any backend with a `base_url`; `+` between the URLs)
builds one backend per URL with the same options. The run's window is the sum of their limits,
each learnt from its own server; every request goes to the replica with the most free slots
(the lowest share of its limit in use), so a faster or larger replica takes more of the work.
At start every replica must answer and serve the same model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from hyoka.orchestrator.backends.base import (
    BackendConfigError,
    BackendInfo,
    Capabilities,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    ModelBackend,
)

if TYPE_CHECKING:
    from hyoka.orchestrator.tasks.builders import PromptTokenizer

R = TypeVar("R")


def _min_limit(values: Sequence[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


class ReplicaSet(ModelBackend):
    """Spreads requests over `replicas` (see the module docstring)."""

    def __init__(self, replicas: Sequence[ModelBackend], *, names: Sequence[str] | None = None) -> None:
        if not replicas:
            raise BackendConfigError("a replica set needs at least one backend")
        self.replicas = list(replicas)
        self.names = list(names) if names is not None else [f"replica {i}" for i in range(len(replicas))]
        self.load = [0] * len(self.replicas)  # sequences in flight per replica
        self.sent = [0] * len(self.replicas)  # requests sent per replica
        self.provides_tokenizer = self.replicas[0].provides_tokenizer
        self._started = False
        self._start_lock = asyncio.Lock()

    @property
    def capabilities(self) -> Capabilities:
        caps = [r.capabilities for r in self.replicas]
        return Capabilities(
            prompt_logprobs=all(c.prompt_logprobs for c in caps),
            token_ids_input=all(c.token_ids_input for c in caps),
            max_concurrency=sum(c.max_concurrency for c in caps),
            max_stop_sequences=_min_limit([c.max_stop_sequences for c in caps]),
            max_new_tokens_limit=_min_limit([c.max_new_tokens_limit for c in caps]),
            sampling=all(c.sampling for c in caps),
        )

    def tokenizer(self) -> PromptTokenizer | None:
        return self.replicas[0].tokenizer()

    async def start(self) -> None:
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            await asyncio.gather(*(r.start() for r in self.replicas))
            infos = await asyncio.gather(*(r.info() for r in self.replicas))
            models = {info.model for info in infos}
            if len(models) > 1:
                served = ", ".join(f"{n}: {i.model}" for n, i in zip(self.names, infos, strict=True))
                raise BackendConfigError(f"replicas serve different models ({served}); give replicas of one model")
            self._started = True

    def _pick(self) -> int:
        limits = [r.capabilities.max_concurrency for r in self.replicas]
        return min(range(len(self.replicas)), key=lambda i: (self.load[i] / limits[i], self.load[i]))

    async def _routed(self, weight: int, call: Callable[[ModelBackend], Awaitable[R]]) -> R:
        i = self._pick()
        self.load[i] += weight
        self.sent[i] += 1
        try:
            return await call(self.replicas[i])
        finally:
            self.load[i] -= weight

    async def generate_until(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        await self.start()

        async def one(r: GenerationRequest) -> list[str]:
            (out,) = await self._routed(r.n, lambda b: b.generate_until([r]))
            return out

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        await self.start()

        async def one(r: LoglikelihoodRequest) -> LoglikelihoodResult:
            (out,) = await self._routed(1, lambda b: b.loglikelihood([r]))
            return out

        return list(await asyncio.gather(*(one(r) for r in requests)))

    async def health(self) -> None:
        await asyncio.gather(*(r.health() for r in self.replicas))

    async def info(self) -> BackendInfo:
        await self.start()
        first = await self.replicas[0].info()
        details = dict(first.details)
        details["replicas"] = " ".join(self.names)
        details["max_concurrency"] = str(self.capabilities.max_concurrency)
        return BackendInfo(backend=first.backend, model=first.model, details=details)

    async def aclose(self) -> None:
        await asyncio.gather(*(r.aclose() for r in self.replicas), return_exceptions=True)

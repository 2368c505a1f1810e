"""Several endpoints serving one model (replicas), used as one backend.

`tgi:http://gpu-1:8080+http://gpu-2:8080` (any backend with a `base_url`; `+` between the URLs)
builds one backend per URL with the same options. The run's window is the sum of their limits,
each learnt from its own server; every request goes to the replica with the most free slots
(the lowest share of its limit in use), so a faster or larger replica takes more of the work.
At start every replica must answer and serve the same model.

Failover: a request that a replica fails after its own retries (unreachable, killed, 5xx; not a
4xx, which is the request's fault) is sent to another replica, each replica tried at most once,
and the failed replica comes last for new requests for `DOWN_S` seconds. The request fails only
when every replica has failed it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from hyoka.orchestrator.backends.base import (
    BackendConfigError,
    BackendError,
    BackendInfo,
    BackendRequestError,
    Capabilities,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    ModelBackend,
)

if TYPE_CHECKING:
    from hyoka.orchestrator.tasks.builders import PromptTokenizer

R = TypeVar("R")

#: Seconds a replica that failed a request (after its own retries) is sent new requests only when
#: every other replica has failed one in that time too.
DOWN_S = 30.0


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
        self.down_until = [0.0] * len(self.replicas)  # monotonic time until which a failed replica comes last
        self.failovers = 0  # requests sent to another replica after one failed them
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

    def _pick(self, tried: set[int] | frozenset[int] = frozenset()) -> int:
        limits = [r.capabilities.max_concurrency for r in self.replicas]
        now = time.monotonic()
        candidates = [i for i in range(len(self.replicas)) if i not in tried]
        return min(
            candidates,
            key=lambda i: (self.down_until[i] > now, self.load[i] / limits[i], self.load[i]),
        )

    async def _routed(self, weight: int, call: Callable[[ModelBackend], Awaitable[R]]) -> R:
        tried: set[int] = set()
        while True:
            i = self._pick(tried)
            self.load[i] += weight
            self.sent[i] += 1
            try:
                return await call(self.replicas[i])
            except BackendRequestError:
                raise  # the request's own fault: another replica would reject it too
            except BackendError:
                # The replica failed the request after its own retries (unreachable, killed, 5xx):
                # send the request to another one, and send it new requests last for a while.
                self.down_until[i] = time.monotonic() + DOWN_S
                tried.add(i)
                if len(tried) == len(self.replicas):
                    raise
                self.failovers += 1
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

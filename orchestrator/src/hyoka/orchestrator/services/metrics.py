"""Thin async client of the metrics service (protos/hyoka/v1/metrics.proto)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence

from hyoka.orchestrator.services._common import ServiceCallError, ServiceClient
from hyoka.orchestrator.tasks.scoring import CorpusScore, TextScore
from hyoka.rpc.batches import score_columns
from hyoka.rpc.tls import ClientTLS
from hyoka.v1 import metrics_pb2, metrics_pb2_grpc

CHAR_F1 = "char_f1_fuzzywuzzy"  # llm-jp-eval 1.3.0's char F1
#: Score calls outstanding at once: the server scores one batch while the next one travels
#: (benchmarks/bench_metrics.py --in-flight 1 or 2 compares the two).
CALLS_IN_FLIGHT = 2


class MetricsClient(ServiceClient):
    """Scores text through MetricsService.Score, in batches no larger than the server accepts,
    CALLS_IN_FLIGHT at a time. A call that finds the service UNAVAILABLE (restarting) is sent
    again once it is back (`ServiceClient.call`); scores are pure, so nothing counts twice."""

    service_name = "hyoka.v1.MetricsService"

    def __init__(
        self, target: str, *, auth_token: str | None = None, timeout: float = 30.0, tls: ClientTLS | None = None
    ) -> None:
        super().__init__(target, auth_token=auth_token, timeout=timeout, tls=tls)
        self._stub = metrics_pb2_grpc.MetricsServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self._max_batch: int | None = None

    async def max_batch_items(self) -> int:
        if self._max_batch is None:
            info = await self.call(
                "metrics ListMetrics",
                lambda: self._stub.ListMetrics(metrics_pb2.ListMetricsRequest(), timeout=self.timeout),
            )
            self._max_batch = max(1, info.max_batch_items or 1000)
        return self._max_batch

    async def score(
        self,
        metric: str,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]],
        options: Mapping[str, str] | None = None,
    ) -> list[TextScore]:
        """Item scores (0-1) with the server's signature text, in input order."""
        if len(predictions) != len(references):
            raise ValueError("predictions and references differ in length")
        size = await self.max_batch_items()
        in_flight = asyncio.Semaphore(CALLS_IN_FLIGHT)

        async def one_batch(start: int) -> list[TextScore]:
            request = metrics_pb2.ScoreRequest(
                metric=metric,
                options=options or {},
                columns=score_columns(predictions[start : start + size], references[start : start + size]),
            )
            async with in_flight:
                reply = await self.call(
                    f"metrics Score({metric})", lambda: self._stub.Score(request, timeout=self.timeout)
                )
            return [TextScore(value=v, signature=reply.signature.text) for v in reply.item_scores]

        try:
            async with asyncio.TaskGroup() as group:  # the first failure cancels the other calls
                batches = [group.create_task(one_batch(start)) for start in range(0, len(predictions), size)]
        except* ServiceCallError as failures:
            raise failures.exceptions[0] from None
        return [s for batch in batches for s in batch.result()]

    async def corpus(
        self,
        metric: str,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]],
        options: Mapping[str, str] | None = None,
    ) -> CorpusScore:
        """The corpus score over all items: one Score call when they fit in a batch, else one
        ScoreStream (a corpus metric must see every item in one computation)."""
        if len(predictions) != len(references):
            raise ValueError("predictions and references differ in length")
        size = await self.max_batch_items()
        what = f"metrics corpus score ({metric})"
        if len(predictions) <= size:
            request = metrics_pb2.ScoreRequest(
                metric=metric, options=options or {}, columns=score_columns(predictions, references)
            )
            reply = await self.call(what, lambda: self._stub.Score(request, timeout=self.timeout))
            return CorpusScore(reply.corpus_score, reply.signature.text, dict(reply.details))

        async def chunks() -> AsyncIterator[metrics_pb2.ScoreStreamRequest]:
            config = metrics_pb2.ScoreStreamConfig(metric=metric, options=options or {})
            yield metrics_pb2.ScoreStreamRequest(config=config)
            for start in range(0, len(predictions), size):
                columns = score_columns(predictions[start : start + size], references[start : start + size])
                yield metrics_pb2.ScoreStreamRequest(chunk=metrics_pb2.ScoreStreamChunk(columns=columns))

        # A fresh stream of chunks per attempt.
        stream_reply = await self.call(what, lambda: self._stub.ScoreStream(chunks(), timeout=self.timeout * 4))
        return CorpusScore(stream_reply.corpus_score, stream_reply.signature.text, dict(stream_reply.details))

    async def char_f1(self, predictions: Sequence[str], references: Sequence[str]) -> list[TextScore]:
        if not predictions:
            return []
        return await self.score(CHAR_F1, predictions, [[r] for r in references])

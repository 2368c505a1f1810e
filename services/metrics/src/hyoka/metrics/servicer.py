"""The gRPC transport of the metrics service: messages in, domain calls, messages out."""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc

from hyoka.metrics import tokenizers
from hyoka.metrics.base import ItemScores, Metric, MetricError
from hyoka.metrics.registry import METRICS
from hyoka.metrics.service import BatchTooLarge, MetricsScorer
from hyoka.metrics.signature import package_version
from hyoka.metrics.wire import InvalidPayload, fill_result, items_from_proto
from hyoka.rpc.errors import InvalidArgument, ResourceExhausted, handle_errors
from hyoka.v1 import common_pb2, metrics_pb2, metrics_pb2_grpc

COMPONENTS = (
    "hyoka-metrics",
    "sacrebleu",
    "rouge_score",
    "rapidfuzz",
    "fugashi",
    "unidic-lite",
    "mecab-python3",
    "ipadic",
    "neologdn",
    "emoji",
    "nagisa",
    "numpy",
)

_CHUNK_ITEM = re.compile(r"^chunk\.items\[(\d+)\]")


def _global_item_path(field: str, offset: int) -> str:
    """'chunk.items[2].prediction' of a chunk starting at item `offset` -> 'items[offset+2].prediction'."""
    return _CHUNK_ITEM.sub(lambda m: f"items[{offset + int(m[1])}]", field)


def _invalid(error: MetricError, prefix: str = "") -> InvalidArgument:
    return InvalidArgument(prefix + error.field, error.description)


def _too_large(error: BatchTooLarge) -> ResourceExhausted:
    return ResourceExhausted(str(error), [(error.field, error.description)])


class MetricsServicer(metrics_pb2_grpc.MetricsServiceServicer):
    def __init__(self, scorer: MetricsScorer) -> None:
        self._scorer = scorer

    def _metric(self, name: str, options: Any, prefix: str = "") -> Metric:
        try:
            return self._scorer.metric(name, dict(options))
        except MetricError as error:
            raise _invalid(error, prefix) from None

    @handle_errors
    async def Score(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> metrics_pb2.ScoreResponse:  # noqa: N802
        if isinstance(request, InvalidPayload):
            raise InvalidArgument.of(request.violations)
        try:
            self._scorer.check_batch_size(len(request.items), stream=False)
        except BatchTooLarge as error:
            raise _too_large(error) from None
        metric = self._metric(request.metric, request.options)
        pass_counts = not metric.needs_references
        try:
            result = await self._scorer.score_converted(
                metric,
                functools.partial(items_from_proto, request.items, pass_counts=pass_counts),
                payload_bytes=request.ByteSize(),
            )
        except MetricError as error:
            raise _invalid(error) from None
        return fill_result(metrics_pb2.ScoreResponse(), result)  # type: ignore[no-any-return]

    @handle_errors
    async def ScoreStream(  # noqa: N802
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
    ) -> metrics_pb2.ScoreStreamResponse:
        metric: Metric | None = None
        scores = ItemScores([])
        count = 0
        async for message in request_iterator:
            if isinstance(message, InvalidPayload):
                raise InvalidArgument.of([(_global_item_path(f, count), d) for f, d in message.violations])
            kind = message.WhichOneof("kind")
            if metric is None:
                if kind != "config":
                    raise InvalidArgument("config", "the first message must carry the metric and options")
                metric = self._metric(message.config.metric, message.config.options, prefix="config.")
                continue
            if kind != "chunk":
                raise InvalidArgument("config", "only the first message may carry config")
            chunk = message.chunk.items
            pass_counts = not metric.needs_references
            try:
                self._scorer.check_batch_size(count + len(chunk), stream=True)
                items = await self._scorer.prepare(
                    metric,
                    functools.partial(items_from_proto, chunk, pass_counts=pass_counts),
                    offset=count,
                    payload_bytes=message.ByteSize(),
                )
            except BatchTooLarge as error:
                raise _too_large(error) from None
            except MetricError as error:
                raise _invalid(error) from None
            count += len(items)
            scores.extend(await self._scorer.score_items(metric, items))
        if metric is None:
            raise InvalidArgument("config", "the stream ended before its config message")
        try:
            result = await self._scorer.finish(metric, scores)
        except MetricError as error:
            raise _invalid(error) from None
        return fill_result(metrics_pb2.ScoreStreamResponse(), result)  # type: ignore[no-any-return]

    @handle_errors
    async def ListMetrics(  # noqa: N802
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> metrics_pb2.ListMetricsResponse:
        if isinstance(request, InvalidPayload):
            raise InvalidArgument.of(request.violations)
        response = metrics_pb2.ListMetricsResponse(
            max_batch_items=self._scorer.limits.max_batch_items,
            max_stream_items=self._scorer.limits.max_stream_items,
        )
        for spec in METRICS.values():
            response.metrics.add(
                name=spec.name,
                description=spec.description,
                corpus_level=spec.corpus_level,
                options=[
                    metrics_pb2.MetricOption(
                        name=o.name, description=o.description, default_value=o.default, allowed_values=o.allowed
                    )
                    for o in spec.options
                ],
            )
        for name in COMPONENTS:
            if (version := package_version(name)) != "absent":
                response.components.append(common_pb2.ComponentVersion(name=name, version=version))
        if package_version("fugashi") != "absent":
            response.components.append(
                common_pb2.ComponentVersion(name="mecab-dictionary", version=tokenizers.mecab_dictionary())
            )
        return response

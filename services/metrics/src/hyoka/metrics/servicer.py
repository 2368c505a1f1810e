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
from hyoka.metrics.wire import InvalidPayload, WireBatch, fill_result
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

_CHUNK_FIELD = re.compile(r"^chunk\.(items|columns\.predictions|columns\.references)\[(\d+)\]")


def _stream_field(field: str, first_item: int, first_reference: int) -> str:
    """A chunk-local field ('chunk.items[2].prediction', 'chunk.columns.references[5]') with indices
    counted across the stream: items from `first_item`, column references from `first_reference`."""

    def globalise(match: re.Match[str]) -> str:
        first = first_reference if match[1] == "columns.references" else first_item
        return f"{match[1]}[{first + int(match[2])}]"

    return _CHUNK_FIELD.sub(globalise, field)


def _invalid(error: MetricError, prefix: str = "") -> InvalidArgument:
    return InvalidArgument(prefix + error.field, error.description)


def _too_large(error: BatchTooLarge, batch: WireBatch) -> ResourceExhausted:
    field = batch.request_field(error.field)
    return ResourceExhausted(f"{field}: {error.description}", [(field, error.description)])


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
        batch = self._batch(request)
        try:
            self._scorer.check_batch_size(len(batch), stream=False)
        except BatchTooLarge as error:
            raise _too_large(error, batch) from None
        metric = self._metric(request.metric, request.options)
        try:
            result = await self._scorer.score_converted(
                metric,
                functools.partial(batch.to_batch, pass_counts=not metric.needs_references),
                payload_bytes=request.ByteSize(),
            )
        except MetricError as error:
            raise InvalidArgument(batch.request_field(error.field), error.description) from None
        return fill_result(metrics_pb2.ScoreResponse(), result)  # type: ignore[no-any-return]

    @staticmethod
    def _batch(message: Any, first_item: int = 0, first_reference: int = 0) -> WireBatch:
        try:
            return WireBatch.of(message, first_item=first_item, first_reference=first_reference)
        except MetricError as error:
            raise _invalid(error) from None

    @handle_errors
    async def ScoreStream(  # noqa: N802
        self, request_iterator: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
    ) -> metrics_pb2.ScoreStreamResponse:
        metric: Metric | None = None
        scores = ItemScores([])
        count = references = 0  # items so far, and references sent in columns so far
        async for message in request_iterator:
            if isinstance(message, InvalidPayload):
                raise InvalidArgument.of([(_stream_field(f, count, references), d) for f, d in message.violations])
            kind = message.WhichOneof("kind")
            if metric is None:
                if kind != "config":
                    raise InvalidArgument("config", "the first message must carry the metric and options")
                metric = self._metric(message.config.metric, message.config.options, prefix="config.")
                continue
            if kind != "chunk":
                raise InvalidArgument("config", "only the first message may carry config")
            batch = self._batch(message.chunk, count, references)
            try:
                self._scorer.check_batch_size(count + len(batch), stream=True)
                scores.extend(
                    await self._scorer.score_chunk(
                        metric,
                        functools.partial(batch.to_batch, pass_counts=not metric.needs_references),
                        offset=count,
                        payload_bytes=message.ByteSize(),
                    )
                )
            except BatchTooLarge as error:
                raise _too_large(error, batch) from None
            except MetricError as error:
                raise InvalidArgument(batch.request_field(error.field), error.description) from None
            count += len(batch)
            references += batch.reference_count
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

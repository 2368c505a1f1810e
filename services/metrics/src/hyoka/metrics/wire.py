"""Wire-level helpers for the metrics service: request deserialisers that turn a request with
invalid UTF-8 into a precise field violation, and conversions between messages and domain types.

proto3 `string` fields must hold UTF-8; protobuf rejects a message with a bad string at parse time
with no hint of which field it was, and gRPC would answer INTERNAL. So the contract keeps `string`
(what every client expects) and the server deserialises leniently: on a parse failure it parses the
same bytes with a wire-compatible copy of the schema whose `string` fields are `bytes` (and whose
maps are plain repeated entries), finds the first field that is not UTF-8, and hands the servicer an
`InvalidPayload` naming it ("items[3].references[0]"). Valid requests take the normal fast path.

That fast path, too, parses with a copy of the schema (`server_class`): one whose ScoreColumns
texts are `bytes`. protobuf would check their UTF-8 while parsing and Python again while making them
`str` (~0.2 ms per 1,000 pairs, over 1% of char F1's time); WireBatch decodes them once and names a
text that is not UTF-8 ("columns.references[7]").
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from hyoka.metrics.base import Batch, Item, MetricError, Pairs, ScoreResult
from hyoka.rpc.batches import score_columns
from hyoka.v1 import common_pb2, metrics_pb2, metrics_pb2_grpc

SERVICE_NAME = "hyoka.v1.MetricsService"


@dataclass(frozen=True)
class InvalidPayload:
    """A request that could not be parsed: (field path, description) pairs."""

    violations: tuple[tuple[str, str], ...]


def _all_strings_to_bytes(file_proto: descriptor_pb2.FileDescriptorProto) -> None:
    def visit(message: descriptor_pb2.DescriptorProto) -> None:
        for field in message.field:
            if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
        for nested in message.nested_type:
            if nested.options.map_entry:
                nested.options.map_entry = False  # map keys may not be bytes; same wire format
            visit(nested)

    for message in file_proto.message_type:
        visit(message)


def _column_texts_to_bytes(file_proto: descriptor_pb2.FileDescriptorProto) -> None:
    (columns,) = (m for m in file_proto.message_type if m.name == "ScoreColumns")
    for field in columns.field:
        if field.name in ("predictions", "references"):
            field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES


@cache
def _schema_copy(retype: Callable[[descriptor_pb2.FileDescriptorProto], None]) -> descriptor_pool.DescriptorPool:
    """A pool holding a copy of metrics.proto (and common.proto), changed by `retype` in place."""
    pool = descriptor_pool.DescriptorPool()
    common = descriptor_pb2.FileDescriptorProto()
    common_pb2.DESCRIPTOR.CopyToProto(common)
    pool.Add(common)
    metrics = descriptor_pb2.FileDescriptorProto()
    metrics_pb2.DESCRIPTOR.CopyToProto(metrics)
    retype(metrics)
    del metrics.service[:]
    pool.Add(metrics)
    return pool


def _copied_class(retype: Callable[[descriptor_pb2.FileDescriptorProto], None], full_name: str) -> type[Message]:
    cls: type[Message] = message_factory.GetMessageClass(_schema_copy(retype).FindMessageTypeByName(full_name))
    return cls


def lenient_class(full_name: str) -> type[Message]:
    """The wire-compatible copy of a metrics message with `bytes` in place of every `string`."""
    return _copied_class(_all_strings_to_bytes, full_name)


def server_class(full_name: str) -> type[Message]:
    """The copy of a metrics message the server parses requests with: ScoreColumns' texts are
    `bytes` (decoded by WireBatch), everything else is as the contract has it."""
    return _copied_class(_column_texts_to_bytes, full_name)


def _utf8_problem(data: bytes) -> str | None:
    """Why `data` is not UTF-8, or None when it is."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"is not valid UTF-8 (byte {error.start})"
    return None


def _first_bad_utf8(message: Message, path: str = "") -> tuple[str, str] | None:
    for field, value in message.ListFields():
        name = f"{path}.{field.name}" if path else field.name
        is_entry = field.message_type is not None and field.message_type.name.endswith("Entry")
        values = value if field.is_repeated else [value]
        for index, element in enumerate(values):
            where = f"{name}[{index}]" if field.is_repeated and not is_entry else name
            if isinstance(element, bytes):
                if problem := _utf8_problem(element):
                    return where, problem
            elif is_entry:
                # a map entry: name the map for a bad key, "map.key" for a bad value
                key, entry_value = element.key, element.value  # type: ignore[attr-defined]
                if isinstance(key, bytes) and _utf8_problem(key):
                    return name, "has a key that is not valid UTF-8"
                if isinstance(entry_value, bytes) and _utf8_problem(entry_value):
                    return f"{name}.{key.decode() if isinstance(key, bytes) else key}", "is not valid UTF-8"
            elif isinstance(element, Message):
                found = _first_bad_utf8(element, where)
                if found is not None:
                    return found
    return None


def lenient_deserializer(message_class: type[Message]) -> Callable[[bytes], Message | InvalidPayload]:
    full_name = message_class.DESCRIPTOR.full_name
    parse = server_class(full_name).FromString

    def deserialize(data: bytes) -> Message | InvalidPayload:
        try:
            return parse(data)
        except DecodeError:
            pass
        try:
            raw = lenient_class(full_name).FromString(data)
        except DecodeError:
            return InvalidPayload((("request", f"is not a valid {full_name} message"),))
        found = _first_bad_utf8(raw)
        return InvalidPayload((found,) if found else (("request", f"is not a valid {full_name} message"),))

    return deserialize


def add_metrics_servicer(servicer: metrics_pb2_grpc.MetricsServiceServicer, server: grpc.aio.Server) -> None:
    """`add_MetricsServiceServicer_to_server` with the lenient request deserialisers."""
    handlers = {
        "Score": grpc.unary_unary_rpc_method_handler(
            servicer.Score,
            request_deserializer=lenient_deserializer(metrics_pb2.ScoreRequest),
            response_serializer=metrics_pb2.ScoreResponse.SerializeToString,
        ),
        "ScoreStream": grpc.stream_unary_rpc_method_handler(
            servicer.ScoreStream,
            request_deserializer=lenient_deserializer(metrics_pb2.ScoreStreamRequest),
            response_serializer=metrics_pb2.ScoreStreamResponse.SerializeToString,
        ),
        "ListMetrics": grpc.unary_unary_rpc_method_handler(
            servicer.ListMetrics,
            request_deserializer=lenient_deserializer(metrics_pb2.ListMetricsRequest),
            response_serializer=metrics_pb2.ListMetricsResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


def items_from_proto(items: Any, *, pass_counts: bool = True) -> Batch:
    """The domain batch of ScoreItem messages: Pairs when every item has one reference and
    `pass_counts` is off (text metrics ignore that field, and every field read costs time on
    large batches), else Items."""
    if not pass_counts:
        predictions: list[str] = []
        references: list[str] = []
        for item in items:
            if len(refs := item.references) != 1:
                break
            predictions.append(item.prediction)
            references.append(refs[0])
        else:
            return Pairs(predictions, references)
    return [
        Item(
            item.prediction,
            tuple(item.references),
            (item.pass_counts.total, item.pass_counts.correct)
            if pass_counts and item.HasField("pass_counts")
            else None,
        )
        for item in items
    ]


def _texts(values: Any, field: str, first: int) -> list[str]:
    """A repeated text field as str: decoded here when it was parsed as bytes (`server_class`);
    a value that is not UTF-8 names its index counted from `first`."""
    if not values or isinstance(values[0], str):
        return list(values)
    try:
        return [value.decode() for value in values]
    except UnicodeDecodeError:
        index, problem = next((i, p) for i, value in enumerate(values) if (p := _utf8_problem(value)))
        raise MetricError(f"{field}[{first + index}]", problem) from None


_ITEM_FIELD = re.compile(r"^items\[(\d+)\](?:\.(prediction|references)(?:\[(\d+)\])?)?$")


class WireBatch:
    """One batch (a Score request, or a chunk of a stream) as it came on the wire: ScoreItem
    messages or ScoreColumns. Converts to domain items on demand and names the request field behind
    a domain error ("items[3].references[1]" of a columns batch is "columns.references[k]").

    `first_item` and `first_reference` are the stream-wide indices of this chunk's first item and
    first column reference, so that indices in errors count across a stream."""

    def __init__(
        self, items: Any, columns: Any, *, has_columns: bool, first_item: int = 0, first_reference: int = 0
    ) -> None:
        if has_columns and len(items):
            raise MetricError("columns", "send the batch in items or in columns, not both")
        self._items = items
        self._columns = columns if has_columns else None
        self.first_item = first_item
        self.first_reference = first_reference
        self.reference_count = len(columns.references) if has_columns else 0

    @classmethod
    def of(cls, message: Any, *, first_item: int = 0, first_reference: int = 0) -> WireBatch:
        """The batch of a ScoreRequest or ScoreStreamChunk."""
        return cls(
            message.items,
            message.columns,
            has_columns=message.HasField("columns"),
            first_item=first_item,
            first_reference=first_reference,
        )

    @property
    def is_columns(self) -> bool:
        return self._columns is not None

    def __len__(self) -> int:
        return len(self._columns.predictions) if self._columns is not None else len(self._items)

    def to_batch(self, *, pass_counts: bool = True) -> Batch:
        """The domain batch: Items, or Pairs for columns with one reference each."""
        if self._columns is None:
            return items_from_proto(self._items, pass_counts=pass_counts)
        if pass_counts:
            raise MetricError("columns", "pass_at_k reads ScoreItem.pass_counts; send this batch in items")
        return self._batch_from_columns(self._columns)

    def _batch_from_columns(self, columns: Any) -> Batch:
        predictions = _texts(columns.predictions, "columns.predictions", self.first_item)
        references = _texts(columns.references, "columns.references", self.first_reference)
        counts = list(columns.reference_counts)
        if not counts:
            if len(references) != len(predictions):
                raise MetricError(
                    "columns.references",
                    f"{len(references)} references for {len(predictions)} predictions"
                    " (one each unless reference_counts says otherwise)",
                )
            return Pairs(predictions, references)
        if len(counts) != len(predictions):
            raise MetricError("columns.reference_counts", f"{len(counts)} counts for {len(predictions)} predictions")
        if (total := sum(counts)) != len(references):
            raise MetricError(
                "columns.references", f"reference_counts add up to {total}, but {len(references)} references were sent"
            )
        starts = [0, *itertools.accumulate(counts)]
        return [Item(p, tuple(references[a:b])) for p, a, b in zip(predictions, starts, starts[1:], strict=False)]

    def request_field(self, field: str) -> str:
        """The request field behind a domain error's field (items[i]... with stream-wide i)."""
        if self._columns is None:
            return field
        if field == "items":
            return "columns.predictions"
        if (match := _ITEM_FIELD.match(field)) is None:
            return field
        index, part, reference = int(match[1]), match[2], match[3]
        local = index - self.first_item
        if part == "references" and reference is not None:
            counts = self._columns.reference_counts  # empty: one reference each
            start = sum(counts[:local]) if counts else local
            return f"columns.references[{self.first_reference + start + int(reference)}]"
        if part == "references":
            return f"columns.reference_counts[{index}]"
        return f"columns.predictions[{index}]"


def items_to_proto(items: list[Item]) -> list[metrics_pb2.ScoreItem]:
    out = []
    for item in items:
        message = metrics_pb2.ScoreItem(prediction=item.prediction, references=item.references)
        if item.pass_counts is not None:
            message.pass_counts.total, message.pass_counts.correct = item.pass_counts
        out.append(message)
    return out


def columns_to_proto(items: Sequence[Item]) -> metrics_pb2.ScoreColumns:
    """The columnar form of text items."""
    return score_columns([item.prediction for item in items], [item.references for item in items])


def fill_result(response: Any, result: ScoreResult) -> Any:
    """Fill a ScoreResponse or ScoreStreamResponse (same field layout) from a domain result."""
    response.corpus_score = result.corpus_score
    response.item_scores.extend(result.item_scores)
    response.signature.metric = result.signature.metric
    response.signature.fields.update(result.signature.as_dict())
    response.signature.text = result.signature.text
    response.details.update(result.details)
    return response


def options_dict(options: Mapping[str, str]) -> dict[str, str]:
    return dict(options)

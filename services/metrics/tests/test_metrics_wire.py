"""The wire layer without a server: columns <-> domain items, and which request field a domain
error names in each wire form."""

from __future__ import annotations

import pytest

from hyoka.metrics import Item
from hyoka.metrics.base import MetricError, Pairs
from hyoka.metrics.wire import WireBatch, columns_to_proto, items_to_proto, server_class
from hyoka.v1 import metrics_pb2


def _columns_request(items: list[Item]) -> metrics_pb2.ScoreRequest:
    return metrics_pb2.ScoreRequest(metric="bleu", columns=columns_to_proto(items))


def test_columns_round_trip_to_the_same_items(pairs: list[tuple[str, str]]) -> None:
    items = [Item(p, (r,)) for p, r in pairs[:300]]
    items[5] = Item(items[5].prediction, ("one", "two", "three"))
    items[9] = Item("", ("",))
    batch = WireBatch.of(_columns_request(items))
    assert batch.is_columns and len(batch) == 300 and batch.reference_count == 302
    assert batch.to_batch(pass_counts=False) == items


def test_one_reference_each_needs_no_counts() -> None:
    columns = columns_to_proto([Item("a", ("x",)), Item("b", ("y",))])
    assert list(columns.reference_counts) == []
    # one reference each: Pairs, scored without an Item per pair
    batch = WireBatch.of(metrics_pb2.ScoreRequest(columns=columns)).to_batch(pass_counts=False)
    assert batch == Pairs(["a", "b"], ["x", "y"])
    assert isinstance(batch, Pairs) and batch.items() == [Item("a", ("x",)), Item("b", ("y",))]


@pytest.mark.parametrize(
    ("columns", "field"),
    [
        (metrics_pb2.ScoreColumns(predictions=["a", "b"], references=["x"]), "columns.references"),
        (
            metrics_pb2.ScoreColumns(predictions=["a", "b"], references=["x", "y"], reference_counts=[2]),
            "columns.reference_counts",
        ),
        (
            metrics_pb2.ScoreColumns(predictions=["a", "b"], references=["x", "y"], reference_counts=[1, 2]),
            "columns.references",
        ),
    ],
)
def test_column_lengths_that_disagree_name_the_field(columns: metrics_pb2.ScoreColumns, field: str) -> None:
    with pytest.raises(MetricError) as error:
        WireBatch.of(metrics_pb2.ScoreRequest(columns=columns)).to_batch(pass_counts=False)
    assert error.value.field == field


def test_items_with_one_reference_each_become_pairs() -> None:
    one_each = [Item("a", ("x",)), Item("b", ("y",))]
    batch = WireBatch.of(metrics_pb2.ScoreRequest(items=items_to_proto(one_each))).to_batch(pass_counts=False)
    assert batch == Pairs(["a", "b"], ["x", "y"])
    several = [Item("a", ("x",)), Item("b", ("y", "z"))]
    assert WireBatch.of(metrics_pb2.ScoreRequest(items=items_to_proto(several))).to_batch(pass_counts=False) == several
    with_counts = [Item("", (), (5, 2)), Item("", (), (3, 0))]
    request = metrics_pb2.ScoreRequest(items=items_to_proto(with_counts))
    assert WireBatch.of(request).to_batch(pass_counts=True) == with_counts


def test_items_and_columns_together_are_refused() -> None:
    request = metrics_pb2.ScoreRequest(items=items_to_proto([Item("a", ("a",))]))
    request.columns.predictions.append("b")
    with pytest.raises(MetricError) as error:
        WireBatch.of(request)
    assert error.value.field == "columns"


def test_pass_counts_need_items() -> None:
    batch = WireBatch.of(_columns_request([Item("a", ("a",))]))
    with pytest.raises(MetricError) as error:
        batch.to_batch(pass_counts=True)
    assert error.value.field == "columns"


def test_domain_fields_map_to_column_fields() -> None:
    items = [Item("a", ("x",)), Item("b", ("y", "z")), Item("c", ("w",))]
    chunk = metrics_pb2.ScoreStreamChunk(columns=columns_to_proto(items))
    # a later chunk of a stream: 10 items and 12 column references came before it
    batch = WireBatch.of(chunk, first_item=10, first_reference=12)
    batch.to_batch(pass_counts=False)
    assert batch.request_field("items[11].prediction") == "columns.predictions[11]"
    assert batch.request_field("items[11].references[1]") == "columns.references[14]"
    assert batch.request_field("items[12].references[0]") == "columns.references[15]"
    assert batch.request_field("items[12].references") == "columns.reference_counts[12]"
    assert batch.request_field("items") == "columns.predictions"
    assert batch.request_field("options.tokenize") == "options.tokenize"
    items_batch = WireBatch.of(metrics_pb2.ScoreStreamChunk(items=items_to_proto(items)), first_item=10)
    assert items_batch.request_field("items[11].references[1]") == "items[11].references[1]"


def test_one_reference_each_maps_by_item_index() -> None:
    batch = WireBatch.of(_columns_request([Item("a", ("x",)), Item("b", ("y",))]))
    batch.to_batch(pass_counts=False)
    assert batch.request_field("items[1].references[0]") == "columns.references[1]"


def test_the_server_schema_reads_column_texts_as_bytes_and_decodes_them_once() -> None:
    items = [Item("東京都", ("とうきょう",)), Item("😀 ok", ("",))]
    data = metrics_pb2.ScoreRequest(metric="bleu", options={"tokenize": "13a"}, columns=columns_to_proto(items))
    parsed = server_class("hyoka.v1.ScoreRequest").FromString(data.SerializeToString())
    assert list(parsed.columns.predictions) == [b"\xe6\x9d\xb1\xe4\xba\xac\xe9\x83\xbd", "😀 ok".encode()]
    assert parsed.metric == "bleu" and dict(parsed.options) == {"tokenize": "13a"}  # the rest as the contract
    assert WireBatch.of(parsed).to_batch(pass_counts=False) == Pairs(["東京都", "😀 ok"], ["とうきょう", ""])


def test_column_text_that_is_not_utf8_is_named_across_the_stream() -> None:
    chunk = server_class("hyoka.v1.ScoreStreamChunk")()
    chunk.columns.predictions.extend([b"a", b"b"])
    chunk.columns.references.extend([b"a", b"b\xe3\x81", b"c"])
    chunk.columns.reference_counts.extend([1, 2])
    with pytest.raises(MetricError) as error:
        WireBatch.of(chunk, first_item=4, first_reference=6).to_batch(pass_counts=False)
    assert (error.value.field, error.value.description) == ("columns.references[7]", "is not valid UTF-8 (byte 1)")

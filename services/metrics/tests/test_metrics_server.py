"""Integration tests: the real metrics server on a free loopback port, called with real gRPC
clients (hyoka.rpc channels and the generated stub)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from hyoka.metrics import Item, score
from hyoka.metrics.server import MetricsServerConfig, start_metrics_server
from hyoka.metrics.wire import columns_to_proto, items_to_proto, lenient_class
from hyoka.rpc.client import ChannelConfig, aio_channel
from hyoka.rpc.errors import field_violations
from hyoka.v1 import metrics_pb2, metrics_pb2_grpc

TIMEOUT = 30.0


@pytest.fixture
async def stub(metrics_server: tuple[str, Any]) -> AsyncIterator[metrics_pb2_grpc.MetricsServiceStub]:
    target, _ = metrics_server
    async with aio_channel(ChannelConfig(target)) as channel:
        yield metrics_pb2_grpc.MetricsServiceStub(channel)


def _request(metric: str, items: list[Item], **options: str) -> metrics_pb2.ScoreRequest:
    return metrics_pb2.ScoreRequest(metric=metric, options=options, items=items_to_proto(items))


async def _still_serving(stub: metrics_pb2_grpc.MetricsServiceStub) -> None:
    response = await stub.Score(_request("exact_match", [Item("a", ("a",))]), timeout=TIMEOUT)
    assert response.corpus_score == 1.0


async def _expect_invalid(call: Any, field: str, code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() == code, error.value.details()
    violations = field_violations(error.value)
    assert field in violations, violations
    return violations[field]


async def test_health_and_reflection(metrics_server: tuple[str, Any]) -> None:
    target, _ = metrics_server
    async with aio_channel(ChannelConfig(target)) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="hyoka.v1.MetricsService"), timeout=TIMEOUT
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = [s.name async for r in responses for s in r.list_services_response.service]
        assert "hyoka.v1.MetricsService" in names


async def test_score_over_grpc_equals_in_process(
    stub: metrics_pb2_grpc.MetricsServiceStub, pairs: list[tuple[str, str]]
) -> None:
    items = [Item(p, (r,)) for p, r in pairs[:400]]
    for metric, options in [("char_f1_fuzzywuzzy", {}), ("bleu", {"tokenize": "ja-mecab"}), ("rouge2", {})]:
        expected = score(metric, items, options)
        response = await stub.Score(_request(metric, items, **options), timeout=TIMEOUT)
        assert response.corpus_score == expected.corpus_score
        assert list(response.item_scores) == expected.item_scores
        assert response.signature.text == expected.signature.text
        assert dict(response.signature.fields) == expected.signature.as_dict()
        assert dict(response.details) == expected.details


async def test_score_stream_equals_one_batch(
    stub: metrics_pb2_grpc.MetricsServiceStub, pairs: list[tuple[str, str]]
) -> None:
    items = [Item(p, (r,)) for p, r in pairs[:1500]]  # more than the fixture's max_batch_items (500)
    expected = score("bleu", items, {"tokenize": "mecab-13a"})

    async def requests() -> AsyncIterator[metrics_pb2.ScoreStreamRequest]:
        yield metrics_pb2.ScoreStreamRequest(
            config=metrics_pb2.ScoreStreamConfig(metric="bleu", options={"tokenize": "mecab-13a"})
        )
        for start in range(0, len(items), 300):
            chunk = metrics_pb2.ScoreStreamChunk(items=items_to_proto(items[start : start + 300]))
            yield metrics_pb2.ScoreStreamRequest(chunk=chunk)

    response = await stub.ScoreStream(requests(), timeout=TIMEOUT)
    assert response.corpus_score == expected.corpus_score
    assert list(response.item_scores) == expected.item_scores
    assert response.signature.text == expected.signature.text


def _with_extra_references(pairs: list[tuple[str, str]]) -> list[Item]:
    """Items with one reference, every seventh with three (the prediction itself among them)."""
    return [Item(p, (r, "別の参照", p) if i % 7 == 3 else (r,)) for i, (p, r) in enumerate(pairs)]


def _columns(metric: str, items: list[Item], **options: str) -> metrics_pb2.ScoreRequest:
    return metrics_pb2.ScoreRequest(metric=metric, options=options, columns=columns_to_proto(items))


async def test_columns_score_as_items_do(
    stub: metrics_pb2_grpc.MetricsServiceStub, pairs: list[tuple[str, str]]
) -> None:
    for items in ([Item(p, (r,)) for p, r in pairs[:400]], _with_extra_references(pairs[:400])):
        for metric, options in [
            ("char_f1_fuzzywuzzy", {}),
            ("bleu", {"tokenize": "ja-mecab"}),
            ("rouge2", {"tokenizer": "mecab"}),
            ("exact_match", {}),
        ]:
            expected = score(metric, items, options)
            by_items = await stub.Score(_request(metric, items, **options), timeout=TIMEOUT)
            by_columns = await stub.Score(_columns(metric, items, **options), timeout=TIMEOUT)
            assert by_columns == by_items
            assert by_columns.corpus_score == expected.corpus_score
            assert list(by_columns.item_scores) == expected.item_scores
            assert by_columns.signature.text == expected.signature.text


async def test_score_stream_takes_columns_and_items_chunks(
    stub: metrics_pb2_grpc.MetricsServiceStub, pairs: list[tuple[str, str]]
) -> None:
    items = _with_extra_references(pairs[:1200])
    expected = score("char_f1_fuzzywuzzy", items, {})

    async def requests() -> AsyncIterator[metrics_pb2.ScoreStreamRequest]:
        yield metrics_pb2.ScoreStreamRequest(config=metrics_pb2.ScoreStreamConfig(metric="char_f1_fuzzywuzzy"))
        for number, start in enumerate(range(0, len(items), 400)):
            part = items[start : start + 400]
            chunk = (
                metrics_pb2.ScoreStreamChunk(columns=columns_to_proto(part))
                if number != 1
                else metrics_pb2.ScoreStreamChunk(items=items_to_proto(part))
            )
            yield metrics_pb2.ScoreStreamRequest(chunk=chunk)

    response = await stub.ScoreStream(requests(), timeout=TIMEOUT)
    assert response.corpus_score == expected.corpus_score
    assert list(response.item_scores) == expected.item_scores


def _both_forms() -> metrics_pb2.ScoreRequest:
    request = _request("exact_match", [Item("a", ("a",))])
    request.columns.predictions.append("b")
    request.columns.references.append("b")
    return request


@pytest.mark.parametrize(
    ("request_", "field", "code"),
    [
        (_both_forms(), "columns", grpc.StatusCode.INVALID_ARGUMENT),
        (
            metrics_pb2.ScoreRequest(
                metric="bleu", columns=metrics_pb2.ScoreColumns(predictions=["a", "b"], references=["a"])
            ),
            "columns.references",
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            metrics_pb2.ScoreRequest(
                metric="bleu",
                columns=metrics_pb2.ScoreColumns(predictions=["a", "b"], references=["a", "b"], reference_counts=[2]),
            ),
            "columns.reference_counts",
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            metrics_pb2.ScoreRequest(
                metric="bleu",
                columns=metrics_pb2.ScoreColumns(predictions=["a", "b"], references=["a"], reference_counts=[1, 0]),
            ),
            "columns.reference_counts[1]",
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            _columns("exact_match_mgsm", [Item("1", ("1",)), Item("2", ("2", "two"))]),
            "columns.references[2]",
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            _columns("exact_match", [Item("a", ("a",)), Item("b", ("b", "x" * 200_001))]),
            "columns.references[2]",
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        # one reference each (scored as Pairs): the first item with a long text, prediction first
        (
            _columns("exact_match", [Item("a", ("a",)), Item("b", ("x" * 200_001,)), Item("y" * 200_001, ("c",))]),
            "columns.references[1]",
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            _columns("exact_match", [Item("a", ("a",)), Item("y" * 200_001, ("x" * 200_001,))]),
            "columns.predictions[1]",
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (_columns("pass_at_k", [Item("a", ("a",))], k="1"), "columns", grpc.StatusCode.INVALID_ARGUMENT),
        (
            metrics_pb2.ScoreRequest(metric="bleu", columns=metrics_pb2.ScoreColumns()),
            "columns.predictions",
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (_columns("exact_match", [Item("a", ("a",))] * 501), "columns.predictions", grpc.StatusCode.RESOURCE_EXHAUSTED),
    ],
)
async def test_bad_columns_name_the_field(
    stub: metrics_pb2_grpc.MetricsServiceStub, request_: metrics_pb2.ScoreRequest, field: str, code: grpc.StatusCode
) -> None:
    await _expect_invalid(stub.Score(request_, timeout=TIMEOUT), field, code)
    await _still_serving(stub)


async def test_pass_at_k_over_grpc(stub: metrics_pb2_grpc.MetricsServiceStub) -> None:
    request = metrics_pb2.ScoreRequest(metric="pass_at_k", options={"k": "1"})
    request.items.add(pass_counts=metrics_pb2.PassCounts(total=10, correct=3))
    request.items.add(pass_counts=metrics_pb2.PassCounts(total=10, correct=10))
    response = await stub.Score(request, timeout=TIMEOUT)
    assert list(response.item_scores) == pytest.approx([0.3, 1.0])


async def test_list_metrics(stub: metrics_pb2_grpc.MetricsServiceStub) -> None:
    response = await stub.ListMetrics(metrics_pb2.ListMetricsRequest(), timeout=TIMEOUT)
    by_name = {m.name: m for m in response.metrics}
    for name in ("char_f1_fuzzywuzzy", "exact_match_gsm8k", "bleu", "rouge2", "pass_at_k"):
        assert name in by_name
    tokenize = next(o for o in by_name["bleu"].options if o.name == "tokenize")
    assert {"13a", "ja-mecab", "mecab-13a"} <= set(tokenize.allowed_values)
    assert by_name["bleu"].corpus_level
    components = {c.name: c.version for c in response.components}
    assert "sacrebleu" in components and components["mecab-dictionary"].startswith("unidic-lite")
    assert response.max_batch_items == 500


@pytest.mark.parametrize(
    ("metric", "options", "items", "field"),
    [
        ("no_such_metric", {}, [Item("a", ("a",))], "metric"),
        ("bleu", {"colour": "red"}, [Item("a", ("a",))], "options.colour"),
        ("bleu", {"tokenize": "moses"}, [Item("a", ("a",))], "options.tokenize"),
        ("pass_at_k", {"k": "zero"}, [Item("", (), (1, 1))], "options.k"),
        ("bleu", {}, [], "items"),
        ("bleu", {}, [Item("a", ("a",)), Item("b", ())], "items[1].references"),
        ("pass_at_k", {"k": "5"}, [Item("", (), (3, 1))], "items[0].pass_counts.total"),
        ("exact_match_mgsm", {}, [Item("12", ("twelve",))], "items[0].references[0]"),
    ],
)
async def test_bad_requests_name_the_field(
    stub: metrics_pb2_grpc.MetricsServiceStub, metric: str, options: dict[str, str], items: list[Item], field: str
) -> None:
    await _expect_invalid(stub.Score(_request(metric, items, **options), timeout=TIMEOUT), field)
    await _still_serving(stub)


async def test_oversize_batch_is_resource_exhausted(stub: metrics_pb2_grpc.MetricsServiceStub) -> None:
    items = [Item("a", ("a",))] * 501
    description = await _expect_invalid(
        stub.Score(_request("exact_match", items), timeout=TIMEOUT), "items", grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    assert "500" in description
    await _still_serving(stub)


async def test_oversize_text_is_invalid(stub: metrics_pb2_grpc.MetricsServiceStub) -> None:
    items = [Item("a", ("a",)), Item("x" * 200_001, ("a",))]
    await _expect_invalid(stub.Score(_request("exact_match", items), timeout=TIMEOUT), "items[1].prediction")
    items = [Item("a", ("a", "b")), Item("c", ("d", "x" * 200_001))]  # several references: Items
    await _expect_invalid(stub.Score(_request("exact_match", items), timeout=TIMEOUT), "items[1].references[1]")


def _columns_only(
    request: Any, predictions: list[bytes], references: list[bytes], counts: tuple[int, ...] = ()
) -> None:
    request.ClearField("items")
    request.columns.predictions.extend(predictions)
    request.columns.references.extend(references)
    request.columns.reference_counts.extend(counts)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda r: r.items.add(prediction=b"ok\xff", references=[b"ok"]), "items[1].prediction"),
        (lambda r: r.items.add(prediction=b"ok", references=[b"ok", b"\xe3\x81"]), "items[1].references[1]"),
        (lambda r: _columns_only(r, [b"ok", b"\xffok"], [b"a", b"b"]), "columns.predictions[1]"),
        (lambda r: _columns_only(r, [b"ok", b"ok"], [b"a", b"b", b"\xe3\x81"], [1, 2]), "columns.references[2]"),
        (lambda r: setattr(r, "metric", b"bl\xc3eu"), "metric"),
        (lambda r: r.options.add(key=b"tokenize", value=b"\xff"), "options.tokenize"),
    ],
)
async def test_invalid_utf8_names_the_field(metrics_server: tuple[str, Any], build: Any, field: str) -> None:
    target, _ = metrics_server
    raw_request = lenient_class("hyoka.v1.ScoreRequest")
    request = raw_request(metric=b"exact_match")
    request.items.add(prediction=b"fine", references=[b"fine"])
    build(request)
    async with aio_channel(ChannelConfig(target)) as channel:
        call = channel.unary_unary(
            "/hyoka.v1.MetricsService/Score",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=metrics_pb2.ScoreResponse.FromString,
        )
        await _expect_invalid(call(request, timeout=TIMEOUT), field)
        await _still_serving(metrics_pb2_grpc.MetricsServiceStub(channel))


async def test_stream_errors(stub: metrics_pb2_grpc.MetricsServiceStub, metrics_server: tuple[str, Any]) -> None:
    async def stream(*messages: metrics_pb2.ScoreStreamRequest) -> AsyncIterator[metrics_pb2.ScoreStreamRequest]:
        for message in messages:
            yield message

    config = metrics_pb2.ScoreStreamRequest(config=metrics_pb2.ScoreStreamConfig(metric="exact_match"))
    chunk = metrics_pb2.ScoreStreamRequest(
        chunk=metrics_pb2.ScoreStreamChunk(items=items_to_proto([Item("a", ("a",))] * 3))
    )
    await _expect_invalid(stub.ScoreStream(stream(chunk), timeout=TIMEOUT), "config")
    await _expect_invalid(stub.ScoreStream(stream(config), timeout=TIMEOUT), "items")
    bad_config = metrics_pb2.ScoreStreamRequest(
        config=metrics_pb2.ScoreStreamConfig(metric="exact_match", options={"x": "1"})
    )
    await _expect_invalid(stub.ScoreStream(stream(bad_config, chunk), timeout=TIMEOUT), "config.options.x")
    no_refs = metrics_pb2.ScoreStreamRequest(chunk=metrics_pb2.ScoreStreamChunk(items=items_to_proto([Item("a", ())])))
    await _expect_invalid(stub.ScoreStream(stream(config, chunk, no_refs), timeout=TIMEOUT), "items[3].references")
    many = [chunk] * 1700  # 5,100 items > the fixture's max_stream_items (5,000)
    await _expect_invalid(
        stub.ScoreStream(stream(config, *many), timeout=TIMEOUT), "items", grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    # invalid UTF-8 in a later chunk is reported with its index across the stream
    target, _ = metrics_server
    raw = lenient_class("hyoka.v1.ScoreStreamRequest")
    bad_chunk = raw()
    bad_chunk.chunk.items.add(prediction=b"a", references=[b"a"])
    bad_chunk.chunk.items.add(prediction=b"\xff", references=[b"a"])
    async with aio_channel(ChannelConfig(target)) as channel:
        call = channel.stream_unary(
            "/hyoka.v1.MetricsService/ScoreStream",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=metrics_pb2.ScoreStreamResponse.FromString,
        )
        raw_config = raw()
        raw_config.config.metric = b"exact_match"
        raw_first = raw()
        raw_first.chunk.items.add(prediction=b"a", references=[b"a"])
        await _expect_invalid(call(stream(raw_config, raw_first, bad_chunk), timeout=TIMEOUT), "items[2].prediction")
        # and in columns: references count across the stream's column chunks
        columns_first = raw()
        columns_first.chunk.columns.predictions.extend([b"a", b"b"])
        columns_first.chunk.columns.references.extend([b"a", b"b", b"c"])
        columns_first.chunk.columns.reference_counts.extend([1, 2])
        bad_columns = raw()
        bad_columns.chunk.columns.predictions.extend([b"a", b"b"])
        bad_columns.chunk.columns.references.extend([b"a", b"\xe3"])
        await _expect_invalid(
            call(stream(raw_config, raw_first, columns_first, bad_columns), timeout=TIMEOUT), "columns.references[4]"
        )
    await _still_serving(stub)


async def test_deadline_is_honoured(stub: metrics_pb2_grpc.MetricsServiceStub, pairs: list[tuple[str, str]]) -> None:
    items = [Item(p, (r,)) for p, r in pairs[:500]]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.Score(_request("rougeL", items, tokenizer="mecab-jlmeval"), timeout=0.01)
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await _still_serving(stub)


async def test_work_stops_when_the_deadline_passes(
    pairs: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hyoka.metrics.base import Metric

    chunks: list[int] = []
    original = Metric.score_chunk

    def counting(self: Metric, items: Any) -> Any:
        chunks.append(len(items))
        return original(self, items)

    monkeypatch.setattr(Metric, "score_chunk", counting)
    running = await start_metrics_server(MetricsServerConfig(port=0, chunk_items=20, workers=1))
    try:
        async with aio_channel(ChannelConfig(f"127.0.0.1:{running.port}")) as channel:
            stub = metrics_pb2_grpc.MetricsServiceStub(channel)
            items = [Item(p, (r,)) for p, r in pairs] * 3  # 300 chunks of 20, about a second of work
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.Score(_request("rougeL", items, tokenizer="mecab-jlmeval"), timeout=0.1)
            assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            await asyncio.sleep(0.5)
            started = len(chunks)
            await asyncio.sleep(0.5)
            assert len(chunks) == started < 300  # the server gave up: no more chunks after the deadline
            await _still_serving(stub)
    finally:
        await running.stop(0)


async def test_big_batch_does_not_starve_small_ones(pairs: list[tuple[str, str]]) -> None:
    # one scoring thread (the default): the chunk queue alone keeps the small call from waiting
    assert MetricsServerConfig().workers == 1
    running = await start_metrics_server(MetricsServerConfig(port=0, chunk_items=100))
    try:
        async with aio_channel(ChannelConfig(f"127.0.0.1:{running.port}")) as channel:
            stub = metrics_pb2_grpc.MetricsServiceStub(channel)
            big_items = [Item(p, (r,)) for p, r in pairs] * 3  # 6,000 items, 60 chunks
            finished: list[str] = []

            async def call(name: str, request: metrics_pb2.ScoreRequest) -> None:
                await stub.Score(request, timeout=120)
                finished.append(name)

            big = asyncio.create_task(call("big", _request("rougeL", big_items, tokenizer="mecab-jlmeval")))
            await asyncio.sleep(0.2)  # the big batch is being scored
            await call("small", _request("rougeL", big_items[:20], tokenizer="mecab-jlmeval"))
            await big
            assert finished == ["small", "big"]
    finally:
        await running.stop(0)


async def test_bearer_token_required_except_health() -> None:
    running = await start_metrics_server(MetricsServerConfig(port=0, auth_token="s3cret"))
    target = f"127.0.0.1:{running.port}"
    try:
        async with aio_channel(ChannelConfig(target)) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await metrics_pb2_grpc.MetricsServiceStub(channel).ListMetrics(
                    metrics_pb2.ListMetricsRequest(), timeout=TIMEOUT
                )
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
        async with aio_channel(ChannelConfig(target, auth_token="wrong")) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await metrics_pb2_grpc.MetricsServiceStub(channel).ListMetrics(
                    metrics_pb2.ListMetricsRequest(), timeout=TIMEOUT
                )
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
        async with aio_channel(ChannelConfig(target, auth_token="s3cret")) as channel:
            await _still_serving(metrics_pb2_grpc.MetricsServiceStub(channel))
    finally:
        await running.stop(0)


async def test_message_size_limit_is_enforced_and_the_server_keeps_serving() -> None:
    running = await start_metrics_server(MetricsServerConfig(port=0, max_message_bytes=64 * 1024))
    try:
        async with aio_channel(ChannelConfig(f"127.0.0.1:{running.port}")) as channel:
            stub = metrics_pb2_grpc.MetricsServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.Score(_request("exact_match", [Item("x" * 100_000, ("x",))]), timeout=TIMEOUT)
            assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            await _still_serving(stub)
    finally:
        await running.stop(0)

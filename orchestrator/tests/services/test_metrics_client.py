"""MetricsClient against a real metrics server: batches cut to the server's limit, the columnar
wire form with one or several references per item, two calls in flight, scores in input order and
equal to the library's in-process, errors as ServiceCallError."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hyoka.metrics import Item, score
from hyoka.metrics.server import MetricsServer, MetricsServerConfig, start_metrics_server
from hyoka.metrics.synthetic import generate_pairs
from hyoka.orchestrator.services import MetricsClient, ServiceCallError


@pytest.fixture
async def small_batch_server() -> AsyncIterator[MetricsServer]:
    server = await start_metrics_server(MetricsServerConfig(port=0, max_batch_items=64))
    try:
        yield server
    finally:
        await server.stop(0)


async def test_scores_equal_the_library_in_process(small_batch_server: MetricsServer) -> None:
    pairs = generate_pairs(200, seed=7)
    predictions = [p for p, _ in pairs]
    references = [[r, p] if i % 5 == 0 else [r] for i, (p, r) in enumerate(pairs)]
    expected = score("rougeL", [Item(p, tuple(r)) for p, r in zip(predictions, references, strict=True)], {})
    async with MetricsClient(f"127.0.0.1:{small_batch_server.port}") as client:
        assert await client.max_batch_items() == 64  # so 200 items take four calls
        scores = await client.score("rougeL", predictions, references)
    assert [s.value for s in scores] == expected.item_scores
    assert {s.signature for s in scores} == {expected.signature.text}


async def test_char_f1_takes_one_reference_each(small_batch_server: MetricsServer) -> None:
    async with MetricsClient(f"127.0.0.1:{small_batch_server.port}") as client:
        scores = await client.char_f1(["東京都", "大阪"], ["東京都", "京都"])
    assert [s.value for s in scores] == score(
        "char_f1_fuzzywuzzy", [Item("東京都", ("東京都",)), Item("大阪", ("京都",))], {}
    ).item_scores


async def test_a_failed_call_raises_service_call_error(small_batch_server: MetricsServer) -> None:
    pairs = generate_pairs(200, seed=7)  # four calls, two at a time: every one fails
    async with MetricsClient(f"127.0.0.1:{small_batch_server.port}") as client:
        with pytest.raises(ServiceCallError, match=r"INVALID_ARGUMENT.*options\.tokenizer"):
            await client.score("rougeL", [p for p, _ in pairs], [[r] for _, r in pairs], {"tokenizer": "nope"})
        # the client stays usable
        assert [s.value for s in await client.char_f1(["東京"], ["東京"])] == [1.0]


@pytest.mark.parametrize("n", [50, 200])  # one Score call, then a ScoreStream of four chunks
async def test_corpus_score_covers_every_item_in_one_computation(small_batch_server: MetricsServer, n: int) -> None:
    pairs = generate_pairs(n, seed=11)
    predictions = [p for p, _ in pairs]
    references = [[r] for _, r in pairs]
    options = {"tokenize": "ja-mecab"}
    expected = score("bleu", [Item(p, tuple(r)) for p, r in zip(predictions, references, strict=True)], options)
    async with MetricsClient(f"127.0.0.1:{small_batch_server.port}") as client:
        corpus = await client.corpus("bleu", predictions, references, options)
    # Corpus BLEU is not the mean of batch scores: equality needs all items in one computation.
    assert corpus.value == expected.corpus_score
    assert corpus.signature == expected.signature.text
    assert dict(corpus.details) == pytest.approx(expected.details)


async def test_a_failed_corpus_call_raises_service_call_error(small_batch_server: MetricsServer) -> None:
    async with MetricsClient(f"127.0.0.1:{small_batch_server.port}") as client:
        with pytest.raises(ServiceCallError, match=r"corpus score \(bleu\).*INVALID_ARGUMENT.*options\.tokenize"):
            await client.corpus("bleu", ["a"] * 100, [["a"]] * 100, {"tokenize": "nope"})

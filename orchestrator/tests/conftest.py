"""Fixtures shared by the orchestrator's tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from hyoka.orchestrator.tasks import CorpusScore, TextScore


class InProcessMetrics:
    """The metrics service's own code (`hyoka.metrics`), called in this process: the real metrics
    for tests of the run engine that need no gRPC server (the gRPC path has its own tests)."""

    async def score(
        self,
        metric: str,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]],
        options: Mapping[str, str] | None = None,
    ) -> list[TextScore]:
        from hyoka.metrics import Item, score

        result = score(metric, [Item(p, tuple(r)) for p, r in zip(predictions, references, strict=True)], options)
        return [TextScore(v, result.signature.text) for v in result.item_scores]

    async def corpus(
        self,
        metric: str,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]],
        options: Mapping[str, str] | None = None,
    ) -> CorpusScore:
        from hyoka.metrics import Item, score

        result = score(metric, [Item(p, tuple(r)) for p, r in zip(predictions, references, strict=True)], options)
        return CorpusScore(result.corpus_score, result.signature.text, dict(result.details))


@pytest.fixture
def inprocess_metrics() -> InProcessMetrics:
    return InProcessMetrics()

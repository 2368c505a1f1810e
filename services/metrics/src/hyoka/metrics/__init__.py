"""hyoka's metrics: the text metrics of the 19 benchmarks, faithful to their reference
implementations, usable in-process (`score`) or over gRPC (`hyoka-metrics serve`).

>>> from hyoka.metrics import Item, score
>>> score("exact_match", [Item("答え", ("答え",))]).corpus_score
1.0

Metric names and options: `hyoka.metrics.registry`.
"""

from __future__ import annotations

from collections.abc import Mapping

from hyoka.metrics.base import Batch, Item, ItemScores, Metric, MetricError, Pairs, ScoreResult
from hyoka.metrics.registry import METRICS, get_metric
from hyoka.metrics.signature import Signature


def score(metric: str, batch: Batch, options: Mapping[str, str] | None = None) -> ScoreResult:
    """Score `batch` (Items, or one-reference Pairs) with `metric` in this thread; raises
    MetricError on bad input."""
    return get_metric(metric, options).score(batch)


__all__ = [
    "METRICS",
    "Batch",
    "Item",
    "ItemScores",
    "Metric",
    "MetricError",
    "Pairs",
    "ScoreResult",
    "Signature",
    "get_metric",
    "score",
]

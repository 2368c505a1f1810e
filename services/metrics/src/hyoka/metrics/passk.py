"""pass@k by the unbiased estimator of Chen et al. (2021), as human-eval and
bigcode-evaluation-harness compute it: `1 - prod(1 - k / arange(n - c + 1, n + 1))`, or 1 when
fewer than k samples failed. Each item carries (n, c) in `pass_counts`; the corpus score is the mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hyoka.metrics.base import Item, ItemScores, Metric, MetricError
from hyoka.metrics.signature import Signature, package_version


def pass_at_k(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


class PassAtK(Metric):
    name = "pass_at_k"
    needs_references = False

    @property
    def k(self) -> int:
        return int(self.options["k"])

    def check_item(self, index: int, item: Item) -> None:
        if item.pass_counts is None:
            raise MetricError(f"items[{index}].pass_counts", "pass_at_k needs the sample counts")
        total, correct = item.pass_counts
        if total < self.k:
            raise MetricError(f"items[{index}].pass_counts.total", f"{total} samples is fewer than k={self.k}")
        if correct > total:
            raise MetricError(f"items[{index}].pass_counts.correct", f"{correct} correct exceeds {total} samples")

    def score_items(self, items: Sequence[Item]) -> ItemScores:
        k = self.k
        return ItemScores([pass_at_k(*item.pass_counts, k) for item in items if item.pass_counts is not None])

    def signature(self, scores: ItemScores | None = None) -> Signature:
        return Signature(
            self.name,
            (("impl", "unbiased-estimator(chen2021)"), ("k", str(self.k)), ("numpy", package_version("numpy"))),
        )

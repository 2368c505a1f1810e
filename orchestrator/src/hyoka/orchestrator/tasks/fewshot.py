"""Few-shot selection, exactly as each harness does it (../shared/datasets/FEWSHOT.md).

- llm-jp-eval 1.3.0: shuffle the raw train file once with seed 42, keep the first 90% as its
  train split, and use the first k of those for every question.
- lm-evaluation-harness 0.4.2 "default" sampler: one private `random.Random(1234)` per task;
  documents are visited in split order and each draws `sample(pool, k)` in turn, so the shots of
  document i depend on every earlier draw; a drawn copy of the current document is dropped
  without a replacement.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def without_id(doc: dict[str, Any]) -> dict[str, Any]:
    """A document as the harness compares it: our loaders add an `id` the upstream record lacks."""
    return {k: v for k, v in doc.items() if k != "id"}


def llm_jp_eval_shots(raw_train: Sequence[T], k: int, *, seed: int = 42, train_fraction: float = 0.9) -> list[T]:
    """The k shots llm-jp-eval uses for every question of a task."""
    shuffled = list(raw_train)
    # Same algorithm as `random.seed(seed); random.shuffle(x)` on the global generator.
    random.Random(seed).shuffle(shuffled)
    train_split = shuffled[: int(len(shuffled) * train_fraction)]
    return train_split[:k]


class LmEvalDefaultSampler(Generic[T]):
    """lm-eval 0.4.2's `default` sampler. Call `shots` for documents in split order, once each.

    `same(a, b)` says whether a drawn document is the current one (lm-eval: dict equality).
    """

    def __init__(
        self, pool: Sequence[T], *, seed: int = 1234, same: Callable[[T, T], bool] = lambda a, b: a == b
    ) -> None:
        self._pool = list(pool)
        self._rnd = random.Random(seed)
        self._same = same

    def draw(self, n: int) -> list[int]:
        """Pool positions of the next `n` draws (the sampler's `sample(pool, n)`)."""
        # random.sample picks positions from the population size alone, so drawing positions
        # gives exactly the documents lm-eval draws from a list of the same length.
        return self._rnd.sample(range(len(self._pool)), n)

    def shots(self, doc: T, num_fewshot: int, *, fewshot_split_is_test_split: bool = False) -> list[T]:
        """Shots for `doc`: draw num_fewshot (+1 when the few-shot split is declared equal to the
        test split), remove documents equal to `doc`, keep the first num_fewshot."""
        n = num_fewshot + 1 if fewshot_split_is_test_split else num_fewshot
        drawn = [self._pool[i] for i in self.draw(n)]
        return [d for d in drawn if not self._same(d, doc)][:num_fewshot]

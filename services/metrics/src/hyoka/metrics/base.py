"""The domain types every metric shares.

A metric scores a batch in two steps so that large batches can be cut into chunks (and run on a
worker pool, or arrive over a stream): `score_items` gives each item's score and, for corpus-level
metrics, its sufficient statistics; `aggregate` turns all items' scores and statistics into the
corpus score. Running both over a whole batch is exactly the reference computation.
"""

from __future__ import annotations

import abc
import gc
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

from hyoka.metrics.signature import Signature

_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = True


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while scoring.

    Scoring allocates hundreds of thousands of tuples, lists and Counters that hold no reference
    cycles (reference counting frees them), yet each allocation burst triggers collector passes
    that cost about a quarter of BLEU's and ROUGE's time. Pauses nest across threads: the collector
    comes back (if it was on) when the last concurrent scoring ends.
    """
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


class MetricError(ValueError):
    """Bad input for a metric; `field` is the request path of the offending value
    (e.g. "metric", "options.tokenize", "items[3].references")."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


@dataclass(slots=True)
class Item:
    """One scored unit: a prediction and its references, or pass counts for pass@k.

    Treat as immutable. (Not `frozen`: a frozen dataclass costs three times as much to build, and
    the server builds one per item of every request.)"""

    prediction: str
    references: Sequence[str]
    pass_counts: tuple[int, int] | None = None  # (total samples n, correct c)


@dataclass(frozen=True, slots=True)
class Pairs:
    """A batch of items with exactly one reference each, held as two columns: the wire's columnar
    form, scored without building an Item per pair (see `Metric.score_pairs`)."""

    predictions: list[str]
    references: list[str]

    def __len__(self) -> int:
        return len(self.predictions)

    def __getitem__(self, part: slice) -> Pairs:
        return Pairs(self.predictions[part], self.references[part])

    def items(self) -> list[Item]:
        return [Item(p, (r,)) for p, r in zip(self.predictions, self.references, strict=True)]


#: What a metric scores: domain items, or one-reference pairs in columns.
Batch = Sequence[Item] | Pairs


@dataclass
class ItemScores:
    """Per-item scores (0-1) and, for corpus-level metrics, per-item sufficient statistics."""

    scores: list[float]
    stats: list[list[int]] = field(default_factory=list)
    #: Reference counts seen (BLEU's signature records them: "nrefs:1" or "nrefs:var").
    ref_counts: set[int] = field(default_factory=set)

    def extend(self, other: ItemScores) -> None:
        self.scores.extend(other.scores)
        self.stats.extend(other.stats)
        self.ref_counts |= other.ref_counts


@dataclass(frozen=True)
class ScoreResult:
    corpus_score: float
    item_scores: list[float]
    signature: Signature
    details: dict[str, float] = field(default_factory=dict)


class Metric(abc.ABC):
    """A metric bound to its (validated) options."""

    name: ClassVar[str]
    #: True when the corpus score is not the mean of the item scores.
    corpus_level: ClassVar[bool] = False
    #: Whether items carry text references (False for pass@k).
    needs_references: ClassVar[bool] = True

    def __init__(self, options: Mapping[str, str]) -> None:
        self.options = dict(options)

    @abc.abstractmethod
    def score_items(self, items: Sequence[Item]) -> ItemScores: ...

    def score_pairs(self, pairs: Pairs) -> ItemScores:
        """`score_items` of one-reference pairs; a metric that works on columns inside overrides
        this to skip building the Items."""
        return self.score_items(pairs.items())

    def score_batch(self, batch: Batch) -> ItemScores:
        return self.score_pairs(batch) if isinstance(batch, Pairs) else self.score_items(batch)

    def score_chunk(self, batch: Batch) -> ItemScores:
        """`score_batch` with the garbage collector paused (see `gc_paused`)."""
        with gc_paused():
            return self.score_batch(batch)

    def aggregate(self, scores: ItemScores) -> tuple[float, dict[str, float]]:
        """The corpus score and details; the default is the mean of the item scores."""
        return math.fsum(scores.scores) / len(scores.scores), {}

    @abc.abstractmethod
    def signature(self, scores: ItemScores | None = None) -> Signature:
        """The signature of this metric's scores (`scores` lets it record batch facts such as
        BLEU's reference count)."""

    def check_item(self, index: int, item: Item) -> None:
        """Raise MetricError for an item this metric cannot score."""
        if self.needs_references and not item.references:
            raise MetricError(f"items[{index}].references", "needs at least one reference")

    def check_items(self, batch: Batch, offset: int = 0) -> None:
        """`check_item` over a batch whose first item has index `offset`."""
        # the one check a metric without its own check_item makes, in one sweep (pairs have
        # their reference by construction)
        if type(self).check_item is Metric.check_item and (
            isinstance(batch, Pairs) or all(item.references for item in batch)
        ):
            return
        for position, item in enumerate(batch.items() if isinstance(batch, Pairs) else batch):
            self.check_item(offset + position, item)

    def score(self, batch: Batch) -> ScoreResult:
        """Score a whole batch in this thread."""
        if not batch:
            raise MetricError("items", "the batch is empty")
        self.check_items(batch)
        scores = self.score_chunk(batch)
        corpus, details = self.aggregate(scores)
        return ScoreResult(corpus, scores.scores, self.signature(scores), details)

"""What tasks need from the scoring services, as small protocols.

The run engine passes the gRPC clients of the metrics and sandbox services
(`hyoka.orchestrator.services`); tasks only see these methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hyoka.orchestrator.tasks.builders import PromptTokenizer


@dataclass(frozen=True)
class CodeSubmission:
    """One problem's n completions; the program run is prompt + completion + test + check(entry_point)."""

    problem_id: str
    prompt: str
    completions: tuple[str, ...]
    test: str
    entry_point: str


@dataclass(frozen=True)
class CodeVerdict:
    pass_at_1: float  # unbiased estimator over the n completions
    passed: tuple[bool, ...]  # per completion
    statuses: tuple[str, ...] = ()  # per completion, as the sandbox names them (passed, failed, timeout...)
    signature: str = ""  # the settings behind the verdict (program layout, timeout, estimator)


@dataclass(frozen=True)
class TextScore:
    value: float | None  # None where the metric has no item-level score (corpus BLEU)
    signature: str  # the metric's signature text, recorded with the result


@dataclass(frozen=True)
class CorpusScore:
    value: float
    signature: str
    details: Mapping[str, float] = field(default_factory=dict)  # e.g. BLEU's precisions, brevity penalty


class TextMetrics(Protocol):
    async def score(
        self,
        metric: str,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]],
        options: Mapping[str, str] | None = None,
    ) -> list[TextScore]:
        """Item scores (0-1) in input order, each with the metric's signature."""
        ...

    async def corpus(
        self,
        metric: str,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]],
        options: Mapping[str, str] | None = None,
    ) -> CorpusScore:
        """The corpus score over every item at once (one call or one stream, never batched)."""
        ...


class CodeChecker(Protocol):
    async def check(self, submissions: Sequence[CodeSubmission]) -> list[CodeVerdict]: ...


@dataclass(frozen=True)
class Scorers:
    metrics: TextMetrics | None = None
    sandbox: CodeChecker | None = None
    tokenizer: PromptTokenizer | None = None  # the evaluated model's, for metric.model_tokenizer

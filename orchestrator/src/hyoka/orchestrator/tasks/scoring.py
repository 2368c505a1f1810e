"""What tasks need from the scoring services, as small protocols.

The run engine passes the gRPC clients of the metrics and sandbox services
(`hyoka.orchestrator.services`); tasks only see these two methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


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
    value: float
    signature: str  # the metric's signature text, recorded with the result


class TextMetrics(Protocol):
    async def char_f1(self, predictions: Sequence[str], references: Sequence[str]) -> list[TextScore]:
        """Per pair: fuzzywuzzy token_sort_ratio(prediction, reference) / 100."""
        ...


class CodeChecker(Protocol):
    async def check(self, submissions: Sequence[CodeSubmission]) -> list[CodeVerdict]: ...


@dataclass(frozen=True)
class Scorers:
    metrics: TextMetrics | None = None
    sandbox: CodeChecker | None = None

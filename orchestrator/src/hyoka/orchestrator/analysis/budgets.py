"""Compute budgets: parameters and English / Japanese training tokens per model, and the
Chinchilla-style compute C = 6 N D per language that the paper correlates with the components."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from hyoka.orchestrator.analysis.errors import TableProblem

Language = Literal["en", "ja"]
LANGUAGES: tuple[Language, ...] = ("en", "ja")
LANGUAGE_NAMES: dict[Language, str] = {"en": "English", "ja": "Japanese"}

# The budget table's columns, exactly (order free).
BUDGET_COLUMNS = ("model_id", "params_B", "en_tokens_B", "ja_tokens_B", "source", "confidence", "is_estimate", "notes")
NUMBER_COLUMNS = ("params_B", "en_tokens_B", "ja_tokens_B")
# The confidence levels of ../shared/paper/README.md.
CONFIDENCE_LEVELS = (
    "verified",
    "verified-total",
    "verified-cpt-total",
    "verified-secondary",
    "recalled",
    "unverified",
)


@dataclass(frozen=True)
class ModelBudget:
    """One model's figures, in billions; None means unknown."""

    model_id: str
    params_b: float | None
    en_tokens_b: float | None
    ja_tokens_b: float | None
    source: str = ""
    confidence: str = ""
    is_estimate: bool = False
    notes: str = ""

    def tokens_b(self, language: Language) -> float | None:
        return self.en_tokens_b if language == "en" else self.ja_tokens_b

    def log10_compute(self, language: Language) -> tuple[float | None, str]:
        """(log10 C, "") with C = 6 N D in FLOPs, or (None, why it is unknown)."""
        tokens = self.tokens_b(language)
        if self.params_b is None:
            return None, "params_B unknown"
        if tokens is None:
            return None, f"{language}_tokens_B unknown"
        if tokens == 0:
            return None, f"{language}_tokens_B is 0 (log undefined)"
        return math.log10(6.0 * self.params_b * 1e9 * tokens * 1e9), ""


@dataclass(frozen=True)
class BudgetTable:
    rows: tuple[ModelBudget, ...]

    @cached_property
    def _by_model(self) -> dict[str, ModelBudget]:
        return {row.model_id: row for row in reversed(self.rows)}  # reversed: the first row wins

    def get(self, model_id: str) -> ModelBudget | None:
        return self._by_model.get(model_id)

    def restricted_to(self, models: Collection[str]) -> BudgetTable:
        """The rows for `models` only (the shipped table covers the 35 paper models; a user's own
        score table may hold fewer)."""
        return BudgetTable(tuple(row for row in self.rows if row.model_id in models))


def build_budget_table(rows: Sequence[ModelBudget], known_models: Collection[str] | None = None) -> BudgetTable:
    """Validate budget rows; `field` of a TableProblem is the budget column at fault."""
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        if not row.model_id.strip():
            raise TableProblem("empty model_id", row=index, field="model_id")
        if row.model_id in seen:
            raise TableProblem(
                f"repeated model '{row.model_id}' (first at position {seen[row.model_id] + 1})",
                row=index,
                field="model_id",
            )
        seen[row.model_id] = index
        if known_models is not None and row.model_id not in known_models:
            raise TableProblem(f"unknown model '{row.model_id}' (not in the score table)", row=index, field="model_id")
        figures = {"params_B": row.params_b, "en_tokens_B": row.en_tokens_b, "ja_tokens_B": row.ja_tokens_b}
        for column, value in figures.items():
            if value is None:
                continue
            if not math.isfinite(value):
                raise TableProblem(f"{value} is not a finite number", row=index, field=column)
            if column == "params_B" and value <= 0:
                raise TableProblem(f"parameter count {value:g} must be positive", row=index, field=column)
            if value < 0:
                raise TableProblem(f"token count {value:g} must not be negative", row=index, field=column)
        if row.confidence and row.confidence not in CONFIDENCE_LEVELS:
            raise TableProblem(
                f"unknown confidence '{row.confidence}' (one of: {', '.join(CONFIDENCE_LEVELS)})",
                row=index,
                field="confidence",
            )
        if any(value is not None for value in figures.values()):
            # Every figure must be traceable: a source and a confidence (README of paper/).
            if not row.source.strip():
                raise TableProblem("a row with figures needs a source", row=index, field="source")
            if not row.confidence:
                raise TableProblem("a row with figures needs a confidence", row=index, field="confidence")
    return BudgetTable(tuple(rows))

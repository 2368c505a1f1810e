"""Compute budgets: parameters and English / Japanese training tokens per model, and the
Chinchilla-style compute C = 6 N D per language that the paper correlates with the components.

Each token figure has a status: `stated` (published, or arithmetic on published figures only),
`estimate` (rests on an estimation rule; `*_estimated_B` says how much of the figure does, the
part the sensitivity check perturbs) or `unknown` (empty cell)."""

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

# The budget table's required columns (order free) ...
BUDGET_COLUMNS = ("model_id", "params_B", "en_tokens_B", "ja_tokens_B", "source", "confidence", "is_estimate", "notes")
# ... and the optional per-language columns of the sourced schema (budgets_35.md): without them a
# figure's status follows is_estimate, and an estimate is estimated as a whole.
OPTIONAL_BUDGET_COLUMNS = ("en_status", "ja_status", "en_rule", "ja_rule", "en_estimated_B", "ja_estimated_B")
NUMBER_COLUMNS = ("params_B", "en_tokens_B", "ja_tokens_B")
OPTIONAL_NUMBER_COLUMNS = ("en_estimated_B", "ja_estimated_B")
# The confidence levels of ../shared/paper/README.md: how well a row's inputs were checked.
CONFIDENCE_LEVELS = (
    "verified",
    "verified-total",
    "verified-cpt-total",
    "verified-secondary",
    "recalled",
    "unverified",
)
Status = Literal["stated", "estimate", "unknown"]
STATUSES: tuple[Status, ...] = ("stated", "estimate", "unknown")
# Where the row says nothing else: a row with no figure must still say where it looked.
UNKNOWN_SOURCE_PREFIX = "unknown"


@dataclass(frozen=True)
class ModelBudget:
    """One model's figures, in billions; None means unknown. Empty status strings mean "derive
    from the figure and is_estimate" (tables without the optional columns)."""

    model_id: str
    params_b: float | None
    en_tokens_b: float | None
    ja_tokens_b: float | None
    source: str = ""
    confidence: str = ""
    is_estimate: bool = False
    notes: str = ""
    en_status: str = ""
    ja_status: str = ""
    en_rule: str = ""
    ja_rule: str = ""
    en_estimated_b: float | None = None
    ja_estimated_b: float | None = None

    def tokens_b(self, language: Language) -> float | None:
        return self.en_tokens_b if language == "en" else self.ja_tokens_b

    def status(self, language: Language) -> Status:
        given = self.en_status if language == "en" else self.ja_status
        if given in STATUSES:
            return given  # type: ignore[return-value]
        if self.tokens_b(language) is None:
            return "unknown"
        return "estimate" if self.is_estimate else "stated"

    def rule(self, language: Language) -> str:
        return self.en_rule if language == "en" else self.ja_rule

    def estimated_part_b(self, language: Language) -> float:
        """How many of the language's tokens (billions) rest on an estimation rule: 0 for a
        stated or unknown figure, the whole figure for an estimate without a stated part."""
        tokens = self.tokens_b(language)
        if tokens is None or self.status(language) != "estimate":
            return 0.0
        part = self.en_estimated_b if language == "en" else self.ja_estimated_b
        return tokens if part is None else part

    def log10_compute(self, language: Language, *, stated_only: bool = False) -> tuple[float | None, str]:
        """(log10 C, "") with C = 6 N D in FLOPs, or (None, why it is unknown). `stated_only`:
        an estimated figure counts as unknown."""
        tokens = self.tokens_b(language)
        if self.params_b is None:
            return None, "params_B unknown"
        if tokens is None:
            return None, f"{language}_tokens_B unknown"
        if stated_only and self.status(language) == "estimate":
            return None, f"{language}_tokens_B is an estimate"
        return log10_compute(self.params_b, tokens, language)


def log10_compute(params_b: float, tokens_b: float, language: Language = "en") -> tuple[float | None, str]:
    if tokens_b <= 0:
        return None, f"{language}_tokens_B is 0 (log undefined)"
    return math.log10(6.0 * params_b * 1e9 * tokens_b * 1e9), ""


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

    def status_counts(self) -> dict[Language, dict[Status, int]]:
        """How many rows have a stated, estimated or unknown figure, per language."""
        counts: dict[Language, dict[Status, int]] = {lang: dict.fromkeys(STATUSES, 0) for lang in LANGUAGES}
        for row in self.rows:
            for language in LANGUAGES:
                counts[language][row.status(language)] += 1
        return counts


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
        for language in LANGUAGES:
            _check_language(row, index, language)
        estimated = any(row.status(lang) == "estimate" for lang in LANGUAGES)
        if estimated and not row.is_estimate:
            raise TableProblem(
                "a row with an estimated figure must have is_estimate true", row=index, field="is_estimate"
            )
        if row.is_estimate and not estimated and row.en_status and row.ja_status:
            raise TableProblem("is_estimate is true but no figure is an estimate", row=index, field="is_estimate")
    return BudgetTable(tuple(rows))


def _check_language(row: ModelBudget, index: int, language: Language) -> None:
    given = row.en_status if language == "en" else row.ja_status
    tokens = row.tokens_b(language)
    part = row.en_estimated_b if language == "en" else row.ja_estimated_b
    status_field, part_field = f"{language}_status", f"{language}_estimated_B"
    if given and given not in STATUSES:
        raise TableProblem(f"unknown status '{given}' (one of: {', '.join(STATUSES)})", row=index, field=status_field)
    if given == "unknown" and tokens is not None:
        raise TableProblem(f"status 'unknown' but {language}_tokens_B is given", row=index, field=status_field)
    if given in ("stated", "estimate") and tokens is None:
        raise TableProblem(f"status '{given}' needs a {language}_tokens_B figure", row=index, field=status_field)
    if given == "estimate" and not row.rule(language).strip():
        raise TableProblem(f"an estimate needs its rule in {language}_rule", row=index, field=f"{language}_rule")
    if part is not None:
        if row.status(language) != "estimate":
            raise TableProblem(f"{part_field} is only for an estimated figure", row=index, field=part_field)
        if not math.isfinite(part) or part <= 0 or (tokens is not None and part > tokens * (1 + 1e-9)):
            raise TableProblem(
                f"estimated part {part:g} must be positive and at most {language}_tokens_B", row=index, field=part_field
            )

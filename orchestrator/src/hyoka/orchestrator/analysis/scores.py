"""The model x benchmark score table and its validation (shared by files and gRPC)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hyoka.orchestrator.analysis.errors import TableProblem

MIN_MODELS = 3  # PC2 needs at least 3 models (n - 1 components after centring)
MIN_BENCHMARKS = 2


@dataclass(frozen=True, eq=False)
class ScoreTable:
    """Scores on the 0-1 scale, one row per model. NaN marks a missing score (only allowed in
    tables of new models to project, never in the reference matrix)."""

    models: tuple[str, ...]
    benchmarks: tuple[str, ...]
    values: npt.NDArray[np.float64]  # shape (len(models), len(benchmarks))
    groups: tuple[str, ...]
    display_names: tuple[str, ...]

    def label(self, index: int) -> str:
        """Short label for plots: the display name, else the part of the id after the last '/'."""
        return self.display_names[index] or self.models[index].rsplit("/", 1)[-1]


def _first_repeat(names: Sequence[str]) -> tuple[int, int] | None:
    """(first index, repeated index) of the first name that appears twice."""
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            return seen[name], index
        seen[name] = index
    return None


def build_score_table(
    models: Sequence[str],
    benchmarks: Sequence[str],
    rows: Sequence[Sequence[float | None]],
    groups: Sequence[str] | None = None,
    display_names: Sequence[str] | None = None,
    *,
    complete: bool = True,
) -> ScoreTable:
    """Validate and build a table. `complete=True` (the reference matrix) also requires every
    score, at least 3 models and 2 benchmarks, and a spread on every benchmark (to standardise)."""
    for index, name in enumerate(benchmarks):
        if not name.strip():
            raise TableProblem("empty benchmark name", column=index, field="benchmark")
    if (repeat := _first_repeat(benchmarks)) is not None:
        first, again = repeat
        raise TableProblem(
            f"repeated benchmark '{benchmarks[again]}' (first at position {first + 1})", column=again, field="benchmark"
        )
    for index, model in enumerate(models):
        if not model.strip():
            raise TableProblem("empty model_id", row=index, field="model_id")
    if (repeat := _first_repeat(models)) is not None:
        first, again = repeat
        raise TableProblem(
            f"repeated model '{models[again]}' (first at position {first + 1})", row=again, field="model_id"
        )
    if len(rows) != len(models):
        raise TableProblem(f"{len(rows)} score rows for {len(models)} models")
    values = np.full((len(models), len(benchmarks)), np.nan)
    for i, row in enumerate(rows):
        if len(row) != len(benchmarks):
            raise TableProblem(f"{len(row)} scores for {len(benchmarks)} benchmarks", row=i, field="scores")
        for j, value in enumerate(row):
            if value is None:
                if complete:
                    raise TableProblem("missing score", row=i, column=j, field="score")
                continue
            if not math.isfinite(value):
                raise TableProblem(f"score {value} is not a finite number", row=i, column=j, field="score")
            if not 0.0 <= value <= 1.0:
                raise TableProblem(f"score {value:g} is outside [0, 1]", row=i, column=j, field="score")
            values[i, j] = value
    if complete:
        if len(models) < MIN_MODELS:
            raise TableProblem(f"{len(models)} models; the analysis needs at least {MIN_MODELS}", field="models")
        if len(benchmarks) < MIN_BENCHMARKS:
            raise TableProblem(
                f"{len(benchmarks)} benchmark(s); the analysis needs at least {MIN_BENCHMARKS}", field="benchmarks"
            )
        for j, name in enumerate(benchmarks):
            column = values[:, j]
            if np.all(column == column[0]):
                raise TableProblem(
                    f"every model scores {column[0]:g} on '{name}', so it cannot be standardised",
                    column=j,
                    field="benchmark",
                )
    return ScoreTable(
        models=tuple(models),
        benchmarks=tuple(benchmarks),
        values=values,
        groups=tuple(groups) if groups is not None else ("",) * len(models),
        display_names=tuple(display_names) if display_names is not None else ("",) * len(models),
    )

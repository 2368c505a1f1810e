"""A finished run among the 35 reference models: the published score table's principal
components (the analysis `hyoka analyze` and AnalysisService run on their shipped default), the
run's scores projected onto them (`analysis.pca.project`, as AnalysisService projects a new model)
and the reference models nearest to it in that space.

A run is placed only when it has a score for every benchmark of the reference table (the 19 of
the paper's suite); otherwise `place` says which ones are missing."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np

from hyoka.orchestrator.analysis import (
    FactorModel,
    ScoreTable,
    TableProblem,
    build_score_table,
    fit_factor_model,
    project,
)
from hyoka.orchestrator.analysis.loaders import load_default_scores
from hyoka.orchestrator.analysis.pipeline import DEFAULT_COMPONENTS

NEAREST = 5


@cache
def _reference() -> tuple[ScoreTable, FactorModel, np.ndarray[Any, np.dtype[np.float64]]]:
    table = load_default_scores()
    model, pc_scores = fit_factor_model(table, DEFAULT_COMPONENTS)
    return table, model, pc_scores


def reference_benchmarks() -> tuple[str, ...]:
    return _reference()[0].benchmarks


def place(model_id: str, scores: Mapping[str, float]) -> tuple[dict[str, Any] | None, str]:
    """(placement, "") for scores (benchmark column -> 0-1 score) covering every reference
    benchmark, else (None, why not). The placement is JSON-able: `projection` (model_id, values =
    PC1..PC3, observed/missing benchmarks, method), `nearest` (model_id, display_name, group,
    distance, values; nearest first) and `explained_variance_ratio`."""
    table, model, pc_scores = _reference()
    missing = [b for b in table.benchmarks if b not in scores]
    if missing:
        return None, (
            f"placement needs a score for all {len(table.benchmarks)} benchmarks of the reference table "
            f"(suite paper); missing: {', '.join(missing)}"
        )
    try:
        new = build_score_table(
            [model_id or "evaluated-model"],
            list(table.benchmarks),
            [[float(scores[b]) for b in table.benchmarks]],
            complete=False,
        )
        (projection,) = project(model, new)
    except TableProblem as error:  # a score outside [0, 1], say
        return None, f"placement failed: {error}"
    point = np.asarray(projection.values, dtype=np.float64)
    distances = np.linalg.norm(pc_scores - point, axis=1)
    order = np.argsort(distances, kind="stable")[:NEAREST]
    nearest = [
        {
            "model_id": table.models[i],
            "display_name": table.display_names[i],
            "group": table.groups[i],
            "distance": float(distances[i]),
            "values": [float(v) for v in pc_scores[i]],
        }
        for i in order
    ]
    return {
        "projection": {
            "model_id": projection.model_id,
            "values": list(projection.values),
            "observed_benchmarks": list(projection.observed),
            "missing_benchmarks": list(projection.missing),
            "method": projection.method,
        },
        "nearest": nearest,
        "explained_variance_ratio": [float(v) for v in model.explained_variance_ratio],
    }, ""

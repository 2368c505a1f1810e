"""Run outputs besides the records: `results.json` (everything) and `scores.csv` (the published
table's format: `model_id` then one column per benchmark, named as in
../shared/paper/scores_35_base_models_swallow_v202407.csv, on a 0-1 scale)."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hyoka.orchestrator.runner.engine import TaskResult
from hyoka.orchestrator.tasks.registry import PAPER_BENCHMARKS

# Column order of the published 35-model table: the paper suite's tasks, each named as its column.
BENCHMARK_COLUMNS = PAPER_BENCHMARKS


def write_scores_csv(path: Path, model_id: str, results: Sequence[TaskResult]) -> None:
    """One row for this model, with the evaluated benchmarks in the published column order."""
    by_column = {r.benchmark_column: r.score for r in results}
    columns = [c for c in BENCHMARK_COLUMNS if c in by_column]
    columns += sorted(c for c in by_column if c not in BENCHMARK_COLUMNS)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model_id", *columns])
        writer.writerow([model_id, *(f"{by_column[c]:.4f}" for c in columns)])


def results_payload(
    *,
    model_id: str,
    model_spec: str,
    info: dict[str, Any],
    services: dict[str, str],
    results: Sequence[TaskResult],
) -> dict[str, Any]:
    """`results.json`'s content (also the results of the run in the run store)."""
    return {
        "model_id": model_id,
        "model_spec": model_spec,
        "backend": info,
        "services": services,
        "tasks": [dataclasses.asdict(r) for r in results],
    }


def write_results_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

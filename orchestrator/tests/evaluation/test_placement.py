"""Placement of a finished run among the 35 reference models: the same projection as
AnalysisService, nearest reference models by distance in the component space."""

from __future__ import annotations

import pytest

from hyoka.orchestrator.analysis import build_score_table, run_analysis
from hyoka.orchestrator.analysis.loaders import load_default_scores
from hyoka.orchestrator.evaluation.placement import place, reference_benchmarks
from hyoka.orchestrator.tasks.registry import PAPER_BENCHMARKS


def test_a_reference_models_own_scores_place_it_on_itself() -> None:
    table = load_default_scores()
    assert reference_benchmarks() == PAPER_BENCHMARKS
    i = table.models.index("tokyotech-llm/Swallow-7b-hf") if "tokyotech-llm/Swallow-7b-hf" in table.models else 3
    scores = dict(zip(table.benchmarks, table.values[i].tolist(), strict=True))
    placement, reason = place("mine", scores)
    assert placement is not None and reason == ""
    assert placement["nearest"][0]["model_id"] == table.models[i]
    assert placement["nearest"][0]["distance"] == pytest.approx(0.0, abs=1e-9)
    distances = [n["distance"] for n in placement["nearest"]]
    assert distances == sorted(distances) and len(distances) == 5
    # The same numbers as the analysis (AnalysisService's projection of a new model).
    new = build_score_table(["mine"], list(table.benchmarks), [table.values[i].tolist()], complete=False)
    (projection,) = run_analysis(table, new_models=[new]).projections
    assert placement["projection"]["values"] == pytest.approx(list(projection.values))
    assert len(placement["projection"]["values"]) == 3 and placement["projection"]["missing_benchmarks"] == []
    assert placement["explained_variance_ratio"] == pytest.approx([0.652, 0.154, 0.070], abs=0.002)


def test_missing_benchmarks_are_named() -> None:
    placement, reason = place("mine", {"niilc": 0.5, "mmlu": 0.5})
    assert placement is None
    assert "missing: jcommonsenseqa, jemhopqa, jsquad" in reason and "niilc," not in reason


def test_a_score_outside_the_scale_is_not_placed() -> None:
    scores = dict.fromkeys(PAPER_BENCHMARKS, 0.5) | {"niilc": 1.5}
    placement, reason = place("mine", scores)
    assert placement is None and "placement failed" in reason

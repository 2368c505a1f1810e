"""Projection of new models into the reference component space, with and without missing scores."""

from __future__ import annotations

import numpy as np
import pytest

from hyoka.orchestrator.analysis import ScoreTable, TableProblem, build_score_table, fit_factor_model, project


def _new(table: ScoreTable, benchmarks: list[str], rows: list[list[float | None]], ids: list[str]) -> ScoreTable:
    return build_score_table(ids, benchmarks, rows, complete=False)


def test_a_reference_model_projects_onto_its_own_scores(paper_table: ScoreTable) -> None:
    model, scores = fit_factor_model(paper_table)
    i = paper_table.models.index("tokyotech-llm/Swallow-70b-hf")
    new = _new(paper_table, list(paper_table.benchmarks), [paper_table.values[i].tolist()], ["copy"])
    [projection] = project(model, new)
    assert projection.values == pytest.approx(scores[i], abs=1e-10)
    assert projection.missing == ()
    assert projection.implied_scores == {}


def test_benchmark_order_of_the_new_model_does_not_matter(paper_table: ScoreTable) -> None:
    model, scores = fit_factor_model(paper_table)
    i = 5
    reversed_names = list(reversed(paper_table.benchmarks))
    new = _new(paper_table, reversed_names, [paper_table.values[i][::-1].tolist()], ["reversed"])
    assert project(model, new)[0].values == pytest.approx(scores[i], abs=1e-10)


def test_missing_benchmarks_are_reported_and_least_squares_recovers_a_held_out_model(paper_table: ScoreTable) -> None:
    """Leave one model out, hide 4 benchmarks, project: the position stays close to the one with all
    benchmarks, and much closer than filling the gaps with the reference mean (z = 0) would be."""
    target = paper_table.models.index("tokyotech-llm/Llama-3-Swallow-70B-v0.1")
    keep = [i for i in range(35) if i != target]
    reference = build_score_table(
        [paper_table.models[i] for i in keep], paper_table.benchmarks, paper_table.values[keep].tolist()
    )
    model, _ = fit_factor_model(reference)
    full_row = paper_table.values[target]
    full = project(model, _new(paper_table, list(paper_table.benchmarks), [full_row.tolist()], ["m"]))[0]
    hidden = {"niilc", "humaneval", "mmlu", "xlsum_ja"}
    partial_row = [None if b in hidden else float(v) for b, v in zip(paper_table.benchmarks, full_row, strict=True)]
    partial = project(model, _new(paper_table, list(paper_table.benchmarks), [partial_row], ["m"]))[0]
    assert set(partial.missing) == hidden
    assert len(partial.observed) == 15
    assert set(partial.implied_scores) == hidden
    z = model.standardise(full_row)
    z[[paper_table.benchmarks.index(b) for b in hidden]] = 0.0
    mean_imputed = model.loadings @ z
    error_ls = np.abs(np.subtract(partial.values, full.values)).sum()
    error_mean = np.abs(mean_imputed - np.asarray(full.values)).sum()
    assert error_ls < error_mean
    assert error_ls < 1.0  # PC1 spans about 13 units on this table
    # The implied score of a hidden benchmark is in the right region of the 0-1 scale.
    assert partial.implied_scores["mmlu"] == pytest.approx(full_row[paper_table.benchmarks.index("mmlu")], abs=0.1)


def test_unknown_benchmark_is_named(paper_table: ScoreTable) -> None:
    model, _ = fit_factor_model(paper_table)
    new = _new(paper_table, ["niilc", "jglue_marc"], [[0.5, 0.5]], ["m"])
    with pytest.raises(TableProblem) as raised:
        project(model, new)
    assert raised.value.column == 1 and "jglue_marc" in raised.value.message


def test_too_few_observed_benchmarks_is_an_error(paper_table: ScoreTable) -> None:
    model, _ = fit_factor_model(paper_table)
    new = _new(paper_table, ["niilc", "mmlu", "gsm8k"], [[0.5, 0.6, None]], ["sparse"])
    with pytest.raises(TableProblem) as raised:
        project(model, new)
    assert raised.value.row == 0 and "needs at least 3" in raised.value.message

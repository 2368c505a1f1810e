"""Compute budgets: C = 6 N D, validation of the budget table, and the log-linear fits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hyoka.orchestrator.analysis import ModelBudget, ScoreTable, TableProblem, build_budget_table, run_analysis
from hyoka.orchestrator.analysis.budgets import CONFIDENCE_LEVELS
from hyoka.orchestrator.analysis.loaders import (
    default_budgets_available,
    load_budgets,
    load_default_budgets,
    parse_budgets_csv,
)

from .conftest import FIXTURE_EN_MODELS


def test_compute_is_six_n_d_per_language() -> None:
    row = ModelBudget("m", params_b=7.0, en_tokens_b=2000.0, ja_tokens_b=100.0)
    assert row.log10_compute("en") == (pytest.approx(math.log10(6 * 7e9 * 2000e9)), "")
    assert row.log10_compute("ja") == (pytest.approx(math.log10(6 * 7e9 * 100e9)), "")
    assert ModelBudget("m", None, 1.0, 1.0).log10_compute("en") == (None, "params_B unknown")
    assert ModelBudget("m", 1.0, None, 1.0).log10_compute("en") == (None, "en_tokens_B unknown")
    assert ModelBudget("m", 1.0, 1.0, 0.0).log10_compute("ja")[0] is None


def test_fits_use_exactly_the_models_with_known_budgets(paper_table: ScoreTable, budget_file: Path) -> None:
    budgets = load_budgets(budget_file, set(paper_table.models))
    result = run_analysis(paper_table, budgets)
    en = result.fit(1, "en")
    assert en is not None
    assert list(en.models) == [m for m in paper_table.models if m in FIXTURE_EN_MODELS]  # score-table order
    assert en.n == 5
    excluded = dict(en.excluded)
    assert excluded["01-ai/Yi-1.5-6B"] == "en_tokens_B unknown"
    assert excluded["mistralai/Mistral-7B-v0.1"] == "en_tokens_B unknown"
    assert excluded["Qwen/Qwen2-7B"] == "no budget row"
    assert len(en.excluded) == 35 - 5
    assert set(en.estimated_models) == {
        "meta-llama/Llama-2-7b-hf",
        "meta-llama/Llama-2-13b-hf",
        "meta-llama/Llama-2-70b-hf",
    }
    # r, slope and intercept recomputed by hand from the PC scores and 6 N D.
    rows = {r.model_id: r for r in budgets.rows}
    x = [math.log10(6 * rows[m].params_b * 1e9 * rows[m].en_tokens_b * 1e9) for m in en.models]  # type: ignore[operator]
    y = [result.pc_scores[paper_table.models.index(m), 0] for m in en.models]
    assert en.r == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    slope, intercept = np.polyfit(x, y, 1)
    assert (en.slope, en.intercept) == (pytest.approx(slope), pytest.approx(intercept))
    ja = result.fit(2, "ja")
    assert ja is not None and ja.n == 5
    assert dict(ja.excluded)["01-ai/Yi-1.5-6B"] == "ja_tokens_B is 0 (log undefined)"
    assert ja.paper == (0.779, 25) and en.paper == (0.916, 27)


def test_fewer_than_three_models_gives_no_r(paper_table: ScoreTable) -> None:
    rows = [
        ModelBudget("meta-llama/Llama-2-7b-hf", 6.7, 1794, 2, "s", "recalled"),
        ModelBudget("meta-llama/Llama-2-70b-hf", 70, 1794, 2, "s", "recalled"),
    ]
    result = run_analysis(paper_table, build_budget_table(rows, set(paper_table.models)))
    fit = result.fit(1, "en")
    assert fit is not None and fit.n == 2 and fit.r is None and fit.slope is None


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        (ModelBudget("", 1, 1, 1, "s", "verified"), "model_id", "empty"),
        (ModelBudget("nobody/unknown", 1, 1, 1, "s", "verified"), "model_id", "unknown model"),
        (ModelBudget("meta-llama/Llama-2-7b-hf", 0, 1, 1, "s", "verified"), "params_B", "positive"),
        (ModelBudget("meta-llama/Llama-2-7b-hf", 7, -1, 1, "s", "verified"), "en_tokens_B", "negative"),
        (ModelBudget("meta-llama/Llama-2-7b-hf", 7, 1, math.inf, "s", "verified"), "ja_tokens_B", "finite"),
        (ModelBudget("meta-llama/Llama-2-7b-hf", 7, 1, 1, "s", "guess"), "confidence", "unknown confidence"),
        (ModelBudget("meta-llama/Llama-2-7b-hf", 7, 1, 1, "", "verified"), "source", "needs a source"),
        (ModelBudget("meta-llama/Llama-2-7b-hf", 7, 1, 1, "s", ""), "confidence", "needs a confidence"),
    ],
)
def test_bad_budget_rows_name_the_field(paper_table: ScoreTable, row: ModelBudget, field: str, words: str) -> None:
    good = ModelBudget("meta-llama/Llama-2-13b-hf", 13, 1794, 2, "s", "recalled")
    with pytest.raises(TableProblem) as raised:
        build_budget_table([good, row], set(paper_table.models))
    assert raised.value.row == 1 and raised.value.field == field and words in raised.value.message


def test_repeated_budget_model(paper_table: ScoreTable) -> None:
    row = ModelBudget("meta-llama/Llama-2-13b-hf", 13, 1794, 2, "s", "recalled")
    with pytest.raises(TableProblem, match="repeated model"):
        build_budget_table([row, row], set(paper_table.models))


@pytest.mark.skipif(not default_budgets_available(), reason="budgets_35.csv not shipped yet")
def test_shipped_budget_table_is_valid_and_traceable(paper_table: ScoreTable) -> None:
    from hyoka.orchestrator.analysis.loaders import DEFAULT_BUDGETS, default_resource

    text = default_resource(DEFAULT_BUDGETS).read_text(encoding="utf-8")
    table = parse_budgets_csv(text, DEFAULT_BUDGETS, set(paper_table.models))  # every model is a paper model
    assert {row.model_id for row in table.rows} == set(paper_table.models)
    for row in table.rows:
        if any(v is not None for v in (row.params_b, row.en_tokens_b, row.ja_tokens_b)):
            assert row.source and row.confidence in CONFIDENCE_LEVELS
    assert load_default_budgets({"meta-llama/Llama-2-7b-hf"}).rows[0].model_id == "meta-llama/Llama-2-7b-hf"

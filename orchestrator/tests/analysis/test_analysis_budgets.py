"""Compute budgets: C = 6 N D, validation of the budget table, and the log-linear fits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hyoka.orchestrator.analysis import (
    AnalysisResult,
    InputError,
    ModelBudget,
    ScoreTable,
    TableProblem,
    build_budget_table,
    run_analysis,
)
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


# ----------------------------------------------------------------------------------------------
# Per-language status, (a) stated-only fits and the sensitivity band

SOURCED_HEADER = (
    "model_id,params_B,en_tokens_B,ja_tokens_B,en_status,ja_status,en_rule,ja_rule,en_estimated_B,ja_estimated_B,"
    "source,confidence,is_estimate,notes\n"
)
SOURCED = SOURCED_HEADER + (
    "meta-llama/Llama-2-7b-hf,6.7,1794,2,stated,stated,S1,S1,,,paper,verified,false,x\n"
    "meta-llama/Llama-2-70b-hf,70,1794,2,stated,stated,S1,S1,,,paper,verified,false,x\n"
    "llm-jp/llm-jp-13b-v2.0,13,115,132.1,stated,stated,S1,S1,,,card,verified,false,x\n"
    "rinna/youri-7b,6.7,1800.8,35.2,estimate,estimate,S1+E3,S1+E3,6.8,33.2,card,verified,true,x\n"
    "cyberagent/calm2-7b,7,650,650,estimate,estimate,E2,E2,,,card,verified-total,true,x\n"
    "mistralai/Mistral-7B-v0.1,7.2,,,unknown,unknown,U1,U1,,,unknown: nothing published,unverified,false,x\n"
)


def test_sourced_schema_statuses_and_estimated_parts(tmp_path: Path, paper_table: ScoreTable) -> None:
    path = tmp_path / "b.csv"
    path.write_text(SOURCED)
    table = load_budgets(path, set(paper_table.models))
    youri, calm, llama = (table.get(m) for m in ("rinna/youri-7b", "cyberagent/calm2-7b", "meta-llama/Llama-2-7b-hf"))
    assert youri is not None and calm is not None and llama is not None
    assert (youri.status("en"), youri.rule("ja"), youri.estimated_part_b("en")) == ("estimate", "S1+E3", 6.8)
    assert calm.estimated_part_b("ja") == 650  # no stated part: the whole figure is estimated
    assert (llama.status("ja"), llama.estimated_part_b("ja")) == ("stated", 0.0)
    assert llama.log10_compute("en", stated_only=True)[0] is not None
    assert youri.log10_compute("en", stated_only=True) == (None, "en_tokens_B is an estimate")
    assert table.status_counts()["en"] == {"stated": 3, "estimate": 2, "unknown": 1}


def test_old_schema_statuses_follow_is_estimate(budget_file: Path, paper_table: ScoreTable) -> None:
    table = load_budgets(budget_file, set(paper_table.models))
    llama, swallow, mistral = (
        table.get(m) for m in ("meta-llama/Llama-2-7b-hf", "tokyotech-llm/Swallow-7b-hf", "mistralai/Mistral-7B-v0.1")
    )
    assert llama is not None and swallow is not None and mistral is not None
    assert (llama.status("en"), llama.estimated_part_b("en"), llama.rule("en")) == ("estimate", 1794, "")
    assert (swallow.status("en"), mistral.status("ja")) == ("stated", "unknown")
    result = run_analysis(paper_table, table)
    stated = result.fit_stated(1, "en")
    assert stated is not None and stated.n == 2 and stated.r is None  # llm-jp and Swallow only
    assert dict(stated.excluded)["meta-llama/Llama-2-7b-hf"] == "en_tokens_B is an estimate"


@pytest.mark.parametrize(
    ("edit", "column", "words"),
    [
        (
            ("rinna/youri-7b,6.7,1800.8,35.2,estimate", "rinna/youri-7b,6.7,1800.8,35.2,guess"),
            "en_status",
            "unknown status",
        ),
        (("S1+E3,S1+E3,6.8", "S1+E3,,6.8"), "ja_rule", "needs its rule"),
        (("S1+E3,6.8,33.2", "S1+E3,6.8,40"), "ja_estimated_B", "at most ja_tokens_B"),
        (("S1,S1,,,card", "S1,S1,5,,card"), "en_estimated_B", "only for an estimated figure"),
        (("7.2,,,unknown,unknown", "7.2,1,,unknown,unknown"), "en_status", "status 'unknown' but"),
        (("13,115,132.1,stated", "13,,132.1,stated"), "en_status", "needs a en_tokens_B"),
        (("33.2,card,verified,true", "33.2,card,verified,false"), "is_estimate", "must have is_estimate true"),
        (
            (
                "S1,S1,,,paper,verified,false,x\nmeta-llama/Llama-2-70b",
                "S1,S1,,,paper,verified,true,x\nmeta-llama/Llama-2-70b",
            ),
            "is_estimate",
            "no figure is an estimate",
        ),
        (("is_estimate,notes", "is_estimate,notes,en_share"), "en_share", "unknown column"),
    ],
)
def test_bad_sourced_rows_name_the_column(
    tmp_path: Path, paper_table: ScoreTable, edit: tuple[str, str], column: str, words: str
) -> None:
    assert edit[0] in SOURCED
    path = tmp_path / "b.csv"
    path.write_text(SOURCED.replace(edit[0], edit[1], 1))
    with pytest.raises(InputError) as raised:
        load_budgets(path, set(paper_table.models))
    assert f"column '{column}'" in str(raised.value) and words in str(raised.value)


def _sourced_result(tmp_path: Path, paper_table: ScoreTable, **kwargs: int) -> AnalysisResult:
    path = tmp_path / "b.csv"
    path.write_text(SOURCED)
    return run_analysis(paper_table, load_budgets(path, set(paper_table.models)), **kwargs)  # type: ignore[arg-type]


def test_sensitivity_perturbs_only_estimated_parts(tmp_path: Path, paper_table: ScoreTable) -> None:
    result = _sourced_result(tmp_path, paper_table)
    band = result.band(1, "en")
    fit = result.fit(1, "en")
    assert band is not None and fit is not None
    assert band.perturbed_models == ("cyberagent/calm2-7b", "rinna/youri-7b")  # score-table order
    assert band.r_base == fit.r and band.n == fit.n == 5 and band.valid_draws == band.draws == 1000
    assert band.p05 is not None and band.p95 is not None and band.p05 < band.p95
    # By hand: the same seeded draws, applied to the estimated parts only.
    rng = np.random.default_rng(band.seed)
    rows = {r.model_id: r for r in result.budgets.rows}  # type: ignore[union-attr]
    factors = rng.uniform(0.5, 1.5, size=(1000, fit.n))
    tokens = np.array([rows[m].en_tokens_b for m in fit.models], dtype=float)
    parts = np.array([rows[m].estimated_part_b("en") for m in fit.models])
    x = np.log10(
        6 * np.array([rows[m].params_b for m in fit.models], dtype=float) * 1e18 * (tokens - parts + parts * factors)
    )
    rs = [np.corrcoef(row, fit.pc_values)[0, 1] for row in x]
    assert band.median == pytest.approx(float(np.median(rs)), abs=1e-12)
    assert band.p05 == pytest.approx(float(np.quantile(rs, 0.05)), abs=1e-12)


def test_sensitivity_is_seeded_and_needs_estimates_to_move(tmp_path: Path, paper_table: ScoreTable) -> None:
    first, again = _sourced_result(tmp_path, paper_table), _sourced_result(tmp_path, paper_table)
    other = _sourced_result(tmp_path, paper_table, sensitivity_seed=7)
    assert first.sensitivity == again.sensitivity
    assert first.band(1, "en") != other.band(1, "en")
    stated_only = (
        SOURCED_HEADER + "\n".join(line for line in SOURCED.splitlines()[1:] if ",stated,stated," in line) + "\n"
    )
    path = tmp_path / "stated.csv"
    path.write_text(stated_only)
    result = run_analysis(paper_table, load_budgets(path, set(paper_table.models)))
    band = result.band(1, "en")
    assert band is not None and band.perturbed_models == () and band.r_base is not None
    assert band.p05 == pytest.approx(band.r_base) and band.p95 == pytest.approx(band.r_base)
    few = _sourced_result(tmp_path, paper_table, sensitivity_draws=10)
    assert few.sensitivity[0].draws == 10

"""The shipped budget table (budgets_35.csv): its schema, that every figure is traceable (a source,
a confidence, a status and a rule, or an explicit "unknown"), the arithmetic of its estimation
rules, and the correlation figures it gives against the paper's (issue 12)."""

from __future__ import annotations

import csv
import io
import math

import pytest

from hyoka.orchestrator.analysis import AnalysisResult, BudgetTable, ScoreTable, run_analysis
from hyoka.orchestrator.analysis.budgets import (
    BUDGET_COLUMNS,
    CONFIDENCE_LEVELS,
    LANGUAGES,
    OPTIONAL_BUDGET_COLUMNS,
    STATUSES,
    UNKNOWN_SOURCE_PREFIX,
)
from hyoka.orchestrator.analysis.loaders import DEFAULT_BUDGETS, default_resource, parse_budgets_csv

SHIPPED_COLUMNS = [
    "model_id",
    "params_B",
    "en_tokens_B",
    "ja_tokens_B",
    "en_status",
    "ja_status",
    "en_rule",
    "ja_rule",
    "en_estimated_B",
    "ja_estimated_B",
    "source",
    "confidence",
    "is_estimate",
    "notes",
]


def _text() -> str:
    return default_resource(DEFAULT_BUDGETS).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def shipped(paper_table: ScoreTable) -> BudgetTable:
    return parse_budgets_csv(_text(), DEFAULT_BUDGETS, set(paper_table.models))


@pytest.fixture(scope="module")
def result(paper_table: ScoreTable, shipped: BudgetTable) -> AnalysisResult:
    return run_analysis(paper_table, shipped)


def test_schema_is_pinned(paper_table: ScoreTable) -> None:
    header = next(csv.reader(io.StringIO(_text())))
    assert header == SHIPPED_COLUMNS
    assert set(header) == set(BUDGET_COLUMNS) | set(OPTIONAL_BUDGET_COLUMNS)
    records = list(csv.DictReader(io.StringIO(_text())))
    assert [r["model_id"] for r in records] == list(paper_table.models), "all 35 models, in score-table order"
    for record in records:
        for column in ("params_B", "en_tokens_B", "ja_tokens_B", "en_estimated_B", "ja_estimated_B"):
            if record[column]:
                assert record[column] == f"{float(record[column]):.1f}", (record["model_id"], column)


def test_every_row_has_a_source_or_an_explicit_unknown(shipped: BudgetTable) -> None:
    for row in shipped.rows:
        assert row.source.strip(), row.model_id
        assert row.confidence in CONFIDENCE_LEVELS, row.model_id
        assert row.notes.strip(), row.model_id
        has_figure = any(row.tokens_b(lang) is not None for lang in LANGUAGES)
        if not has_figure:
            assert row.source.startswith(f"{UNKNOWN_SOURCE_PREFIX}:"), row.model_id
        else:
            assert "http" in row.source or "arXiv" in row.source, row.model_id


def test_every_figure_has_a_status_and_a_rule(shipped: BudgetTable) -> None:
    for row in shipped.rows:
        for language in LANGUAGES:
            given = row.en_status if language == "en" else row.ja_status
            assert given in STATUSES, (row.model_id, language)  # explicit, never derived
            status, rule = row.status(language), row.rule(language)
            assert rule, (row.model_id, language)
            if status == "unknown":
                assert row.tokens_b(language) is None and rule.startswith("U")
            elif status == "stated":
                assert rule.startswith("S") and "E" not in rule.split("(")[0], (row.model_id, rule)
            else:
                assert "E" in rule and 0 < row.estimated_part_b(language) <= row.tokens_b(language)  # type: ignore[operator]
        assert row.is_estimate == any(row.status(lang) == "estimate" for lang in LANGUAGES), row.model_id


def test_status_counts(shipped: BudgetTable) -> None:
    assert shipped.status_counts() == {
        "en": {"stated": 10, "estimate": 17, "unknown": 8},
        "ja": {"stated": 9, "estimate": 19, "unknown": 7},
    }


# The published inputs the rules combine (budgets_35.md cites each).
LLAMA2_TOTAL, LLAMA2_EN, LLAMA2_JA, LLAMA2_UNKNOWN = 2000.0, 0.8970, 0.0010, 0.0838
LLAMA3_TOTAL, LLAMA3_NON_EN = 15000.0, 0.05
JA_OF_NON_EN = LLAMA2_JA / (1 - LLAMA2_EN - LLAMA2_UNKNOWN)  # rule E1: 0.10 / 1.92
CPT_JA = round((0.90 + 0.90 + 0.72 + 0.80) / 4, 2)  # rule E3


@pytest.mark.parametrize(
    ("model", "en", "ja"),
    [
        ("meta-llama/Llama-2-7b-hf", LLAMA2_TOTAL * LLAMA2_EN, LLAMA2_TOTAL * LLAMA2_JA),  # S1
        (
            "tokyotech-llm/Swallow-13b-hf",
            LLAMA2_TOTAL * LLAMA2_EN + 10,
            LLAMA2_TOTAL * LLAMA2_JA + 90,
        ),  # S1, 9:1 of 100B
        ("elyza/ELYZA-japanese-Llama-2-13b", LLAMA2_TOTAL * LLAMA2_EN, LLAMA2_TOTAL * LLAMA2_JA + 18),  # S1
        ("llm-jp/llm-jp-13b-v2.0", 4.7 + 110.3, 1.4 + 130.7),  # S1: stated dataset rows
        ("meta-llama/Meta-Llama-3-8B", LLAMA3_TOTAL * 0.95, LLAMA3_TOTAL * LLAMA3_NON_EN * JA_OF_NON_EN),  # S1, E1
        ("rinna/youri-7b", LLAMA2_TOTAL * LLAMA2_EN + 40 * (1 - CPT_JA), LLAMA2_TOTAL * LLAMA2_JA + 40 * CPT_JA),  # E3
        ("karakuri-ai/karakuri-lm-70b-v0.1", LLAMA2_TOTAL * LLAMA2_EN + 16 * 0.2, LLAMA2_TOTAL * LLAMA2_JA + 16 * 0.8),
        (
            "tokyotech-llm/Llama-3-Swallow-70B-v0.1",
            LLAMA3_TOTAL * 0.95 + 100 * (1 - CPT_JA),
            LLAMA3_TOTAL * LLAMA3_NON_EN * JA_OF_NON_EN + 100 * CPT_JA,
        ),
        ("Qwen/Qwen2-72B", 7000 * 0.95 / 2, 7000 * LLAMA3_NON_EN * JA_OF_NON_EN),  # E2, E1
        ("Qwen/Qwen1.5-7B", 3000 * 0.95 / 2, 3000 * LLAMA3_NON_EN * JA_OF_NON_EN),  # E9
        ("cyberagent/calm2-7b", 650.0, 650.0),  # E2
        ("sbintuitions/sarashina2-7b", 2100.0 - 1000.0, 1000.0),  # E7
        ("Fugaku-LLM/Fugaku-LLM-13B", 380 * 0.4, 380 * 0.6),  # E8, S1
        ("01-ai/Yi-1.5-34B", 3600 / 2, None),  # E2, U2
        ("Rakuten/RakutenAI-7B", None, 175 * CPT_JA),  # U1, E6 + E3
        ("tokyotech-llm/Swallow-MX-8x7b-NVE-v0.1", None, 100 * 0.72),  # E6 + E5
        ("mistralai/Mistral-7B-v0.1", None, None),  # U1
    ],
)
def test_rule_arithmetic(shipped: BudgetTable, model: str, en: float | None, ja: float | None) -> None:
    row = shipped.get(model)
    assert row is not None
    for got, want in ((row.en_tokens_b, en), (row.ja_tokens_b, ja)):
        if want is None:
            assert got is None
        else:
            assert got == pytest.approx(want, abs=0.051)  # one decimal place


def test_correlations_reach_the_papers_n_and_are_pinned(result: AnalysisResult) -> None:
    en_b, ja_b = result.fit(1, "en"), result.fit(2, "ja")
    en_a, ja_a = result.fit_stated(1, "en"), result.fit_stated(2, "ja")
    assert en_b is not None and ja_b is not None and en_a is not None and ja_a is not None
    assert en_b.n >= 25 and ja_b.n >= 25  # issue 12 acceptance
    assert (en_b.n, ja_b.n, en_a.n, ja_a.n) == (27, 28, 10, 9)
    assert en_b.r == pytest.approx(0.910, abs=0.0005)
    assert ja_b.r == pytest.approx(0.793, abs=0.0005)
    assert en_a.r == pytest.approx(0.978, abs=0.0005)
    assert ja_a.r == pytest.approx(0.885, abs=0.0005)
    assert en_b.paper == (0.916, 27) and ja_b.paper == (0.779, 25)
    # (b) leaves out exactly the models whose base pre-training data is undisclosed (English) and
    # Mistral / Mixtral / Command-R / Yi (Japanese).
    assert {m for m, _ in en_b.excluded} == {
        "CohereForAI/c4ai-command-r-v01",
        "mistralai/Mistral-7B-v0.1",
        "mistral-community/Mistral-7B-v0.2",
        "mistralai/Mixtral-8x7B-v0.1",
        "tokyotech-llm/Swallow-MS-7b-v0.1",
        "tokyotech-llm/Swallow-MX-8x7b-NVE-v0.1",
        "stabilityai/japanese-stablelm-base-gamma-7b",
        "Rakuten/RakutenAI-7B",
    }
    assert {m for m, _ in ja_b.excluded} == {
        "CohereForAI/c4ai-command-r-v01",
        "mistralai/Mistral-7B-v0.1",
        "mistral-community/Mistral-7B-v0.2",
        "mistralai/Mixtral-8x7B-v0.1",
        "01-ai/Yi-1.5-6B",
        "01-ai/Yi-1.5-9B",
        "01-ai/Yi-1.5-34B",
    }
    assert dict(en_a.excluded)["cyberagent/calm2-7b"] == "en_tokens_B is an estimate"


def test_sensitivity_bands_are_pinned(result: AnalysisResult) -> None:
    en, ja = result.band(1, "en"), result.band(2, "ja")
    assert en is not None and ja is not None
    assert (en.draws, en.valid_draws, en.seed, en.half_width) == (1000, 1000, 20241219, 0.5)
    assert len(en.perturbed_models) == 17 and len(ja.perturbed_models) == 19
    assert en.p05 == pytest.approx(0.881, abs=0.0005)
    assert en.median == pytest.approx(0.903, abs=0.0005)
    assert en.p95 == pytest.approx(0.922, abs=0.0005)
    assert ja.p05 == pytest.approx(0.763, abs=0.0005)
    assert ja.median == pytest.approx(0.788, abs=0.0005)
    assert ja.p95 == pytest.approx(0.817, abs=0.0005)
    for band in (en, ja):
        assert band.r_min is not None and band.r_max is not None and band.p05 is not None and band.p95 is not None
        assert band.r_min <= band.p05 <= band.median <= band.p95 <= band.r_max  # type: ignore[operator]
        assert not math.isnan(band.median)  # type: ignore[arg-type]

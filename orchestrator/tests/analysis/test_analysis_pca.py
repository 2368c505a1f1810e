"""The PCA on the paper's 35 x 19 table: the issue's acceptance figures, agreement with an
independent reference decomposition, and the sign convention."""

from __future__ import annotations

import numpy as np
import pytest

from hyoka.orchestrator.analysis import ScoreTable, build_score_table, fit_factor_model
from hyoka.orchestrator.analysis.pipeline import run_analysis
from hyoka.orchestrator.analysis.report import top_loadings

from .conftest import REFERENCE_EVR, REFERENCE_LOADINGS, REFERENCE_SCORES

CODE_AND_ARITHMETIC = {"humaneval", "jhumaneval", "mgsm_ja", "gsm8k"}


def test_paper_table_shape(paper_table: ScoreTable) -> None:
    assert paper_table.values.shape == (35, 19)
    assert "params_B_leaderboard_2024-07" not in paper_table.benchmarks
    assert "ja_avg_leaderboard" not in paper_table.benchmarks
    assert set(paper_table.groups) == {"ja_from_scratch", "ja_continual_pretraining", "en", "multilingual"}


def test_explained_variance_matches_the_issue(paper_table: ScoreTable) -> None:
    model, _ = fit_factor_model(paper_table)
    assert model.explained_variance_ratio == pytest.approx([0.652, 0.154, 0.070], abs=0.002)
    assert model.explained_variance_ratio == pytest.approx(REFERENCE_EVR, abs=1e-4)
    assert model.explained_variance_ratio_all.sum() == pytest.approx(1.0)


def test_pc2_is_japanese_knowledge(paper_table: ScoreTable) -> None:
    result = run_analysis(paper_table)
    assert {b for b, _ in top_loadings(result, 2, 3)} == {"niilc", "wmt20_en_ja", "jemhopqa"}


def test_pc3_is_code_and_arithmetic(paper_table: ScoreTable) -> None:
    result = run_analysis(paper_table)
    assert {b for b, _ in top_loadings(result, 3, 4)} == CODE_AND_ARITHMETIC


def test_pc1_is_general_ability(paper_table: ScoreTable) -> None:
    model, _ = fit_factor_model(paper_table)
    assert (model.loadings[0] > 0).all()  # every benchmark loads positively on PC1


def test_loadings_and_scores_match_the_reference_decomposition(paper_table: ScoreTable) -> None:
    model, scores = fit_factor_model(paper_table)
    for (benchmark, component), expected in REFERENCE_LOADINGS.items():
        assert model.loadings[component - 1, paper_table.benchmarks.index(benchmark)] == pytest.approx(
            expected, abs=1e-4
        )
    for model_id, expected in REFERENCE_SCORES.items():
        assert scores[paper_table.models.index(model_id)] == pytest.approx(expected, abs=1e-3)


def test_loadings_are_orthonormal_and_scores_centred(paper_table: ScoreTable) -> None:
    model, scores = fit_factor_model(paper_table)
    assert model.loadings @ model.loadings.T == pytest.approx(np.eye(3), abs=1e-10)
    assert scores.mean(axis=0) == pytest.approx(np.zeros(3), abs=1e-10)
    # Variance of each PC score = its eigenvalue = ratio * number of benchmarks (z-scored, ddof=0).
    assert scores.var(axis=0) == pytest.approx(model.explained_variance_ratio * 19, rel=1e-9)


def test_sign_convention_is_deterministic_under_reordering_and_sign_of_input(paper_table: ScoreTable) -> None:
    model, scores = fit_factor_model(paper_table)
    assert (model.loadings.sum(axis=1) > 0).all()
    order = np.random.default_rng(7).permutation(len(paper_table.models))
    shuffled = build_score_table(
        [paper_table.models[i] for i in order], paper_table.benchmarks, paper_table.values[order].tolist()
    )
    model2, scores2 = fit_factor_model(shuffled)
    assert model2.loadings == pytest.approx(model.loadings, abs=1e-9)
    assert scores2 == pytest.approx(scores[order], abs=1e-9)


def test_components_are_capped_by_the_table_size(paper_table: ScoreTable) -> None:
    small = build_score_table(paper_table.models[:3], paper_table.benchmarks, paper_table.values[:3].tolist())
    model, scores = fit_factor_model(small, components=5)
    assert model.n_components == 2  # 3 models -> 2 components after centring
    assert scores.shape == (3, 2)
    assert model.explained_variance_ratio.sum() == pytest.approx(1.0)

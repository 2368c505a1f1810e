"""The report directory: every file, self-contained HTML, JSON content, all-or-nothing writing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hyoka.orchestrator.analysis import ScoreTable, build_score_table, run_analysis
from hyoka.orchestrator.analysis.loaders import load_budgets
from hyoka.orchestrator.analysis.report import OutputDirError, write_report

from .conftest import BUDGET_FIXTURE

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _result(paper_table: ScoreTable, budget_file: Path):  # type: ignore[no-untyped-def]
    i = paper_table.models.index("tokyotech-llm/Swallow-7b-hf")
    row = [
        None if b in ("niilc", "bbh") else float(v)
        for b, v in zip(paper_table.benchmarks, paper_table.values[i], strict=True)
    ]
    new = build_score_table(["my/new-model"], paper_table.benchmarks, [row], complete=False)
    budgets = load_budgets(budget_file, set(paper_table.models))
    return run_analysis(
        paper_table, budgets, new_models=[new], scores_source="default: paper", budgets_source=str(budget_file)
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, paper_table: ScoreTable) -> tuple[Path, list[str]]:
    """One full report (budgets, a projected model), shared by the read-only tests below."""
    base = tmp_path_factory.mktemp("report")
    budget_file = base / "budgets.csv"
    budget_file.write_text(BUDGET_FIXTURE)
    out = base / "report"
    return out, write_report(_result(paper_table, budget_file), out)


def test_report_has_every_file(report: tuple[Path, list[str]]) -> None:
    out, names = report
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    for required in (
        "report.html",
        "report.md",
        "analysis.json",
        "loadings.csv",
        "pc_scores.csv",
        "explained_variance.csv",
        "budget_correlations.csv",
        "budget_sensitivity.csv",
        "budgets_used.csv",
        "projections.csv",
        "loadings_heatmap.png",
        "pc1_pc2_scatter.png",
        "pc1_vs_budget.png",
        "pc2_vs_budget.png",
        "pc3_vs_budget.png",
    ):
        assert (out / required).is_file(), required
    for png in out.glob("*.png"):
        assert png.read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in out.parent.iterdir()) == ["budgets.csv", "report"], "no staging directory left"


def test_analysis_json_has_the_required_keys(report: tuple[Path, list[str]], paper_table: ScoreTable) -> None:
    out, _ = report
    data = json.loads((out / "analysis.json").read_text())
    assert data["explained_variance_ratio"] == pytest.approx([0.652, 0.154, 0.070], abs=0.002)
    assert set(data["loadings"]) == set(paper_table.benchmarks)
    assert all(len(v) == 3 for v in data["loadings"].values())
    assert set(data["pc_scores"]) == set(paper_table.models)
    for key in ("pc1_vs_en", "pc2_vs_ja"):
        fit = data["budget_correlations"][key]
        assert isinstance(fit["r"], float) and fit["n"] == len(fit["models"]) == 5
    assert data["budget_correlations"]["pc1_vs_en"]["paper_r"] == 0.916
    assert data["budget_correlations"]["pc1_vs_en"]["basis"] == "all"
    stated = data["budget_correlations_stated"]["pc1_vs_en"]
    assert stated["basis"] == "stated" and stated["n"] == 2 and stated["r"] is None  # Llama 2 rows are estimates
    band = data["budget_sensitivity"]["pc2_vs_ja"]
    assert band["draws"] == 1000 and band["paper_r"] == 0.779 and band["paper_n"] == 25
    assert band["r_p05"] <= band["r_median"] <= band["r_p95"]
    assert set(band["perturbed_models"]) == {"meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-13b-hf",
                                             "meta-llama/Llama-2-70b-hf"}  # fmt: skip
    assert data["budget_status_counts"]["en"] == {"stated": 2, "estimate": 3, "unknown": 3}
    assert data["budgets"]["meta-llama/Llama-2-7b-hf"]["en_status"] == "estimate"
    projection = data["projections"]["my/new-model"]
    assert sorted(projection["missing_benchmarks"]) == ["bbh", "niilc"]
    assert len(projection["pc_scores"]) == 3


def test_html_is_self_contained(report: tuple[Path, list[str]]) -> None:
    out, _ = report
    page = (out / "report.html").read_text()
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in page and "<script" not in page
    assert page.count("<img") == len(list(out.glob("*.png")))
    assert "estimates" in page.lower()
    markdown = (out / "report.md").read_text()
    assert "![pc1_pc2_scatter.png](pc1_pc2_scatter.png)" in markdown
    assert "ESTIMATES" in markdown and "meta-llama/Llama-2-7b-hf" in markdown
    assert "| PC1 vs log10 C_en | 0.916 (27) |" in markdown  # the paper beside (a), (b) and the band
    assert "(a) stated only: r (n)" in markdown and "Sensitivity of (b): 1000 draws" in markdown
    assert "(b) under +-50% perturbation" in page


def test_a_previous_report_is_replaced_whole(tmp_path: Path, paper_table: ScoreTable) -> None:
    out = tmp_path / "report"
    write_report(run_analysis(paper_table), out)
    (out / "stale.txt").write_text("from an older run")
    write_report(run_analysis(paper_table, components=2), out)
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "analysis.json").read_text())["n_components"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_refuses_to_replace_a_directory_that_is_not_a_report(tmp_path: Path, paper_table: ScoreTable) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(OutputDirError, match="holds no previous hyoka report"):
        write_report(run_analysis(paper_table), out)
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]
    (out / "analysis.json").write_text('{"someone": "else"}')  # an analysis.json that is not ours
    with pytest.raises(OutputDirError, match="holds no previous hyoka report"):
        write_report(run_analysis(paper_table), out)
    assert sorted(p.name for p in out.iterdir()) == ["analysis.json", "thesis.tex"]


def test_a_failed_write_leaves_the_previous_report(
    tmp_path: Path, paper_table: ScoreTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report"
    write_report(run_analysis(paper_table), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_write_text = Path.write_text

    def disk_full_on_html(self: Path, *args: object, **kwargs: object) -> int:
        if self.name == "report.html":  # fault injection: the last file of the new report fails
            raise OSError(28, "No space left on device")
        return real_write_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", disk_full_on_html)
    with pytest.raises(OutputDirError, match="No space left on device"):
        write_report(run_analysis(paper_table, components=2), out)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["report"], "the staging directory is removed"


def test_summary_prints_a_b_and_the_band_beside_the_paper(paper_table: ScoreTable) -> None:
    from rich.console import Console

    from hyoka.orchestrator.analysis.loaders import default_budgets_available, load_default_budgets
    from hyoka.orchestrator.analysis.summary import print_summary

    if not default_budgets_available():
        pytest.skip("budgets_35.csv not shipped")
    result = run_analysis(paper_table, load_default_budgets(set(paper_table.models)), budgets_source="default")
    console = Console(record=True, width=400, highlight=False, soft_wrap=True)
    print_summary(result, console)
    text = console.export_text()
    assert "figures: en 10 stated, 17 estimated, 8 unknown; ja 9 stated, 19 estimated, 7 unknown" in text
    assert "r(PC1, log10 C_en) = 0.910 (n=27)   paper 0.916 (n=27)   [English budget]" in text
    assert "r(PC2, log10 C_ja) = 0.793 (n=28)   paper 0.779 (n=25)   [Japanese budget]" in text
    assert "(a) stated figures only: r = 0.978 (n=10)" in text
    assert "(a) stated figures only: r = 0.885 (n=9)" in text
    assert "sensitivity of (b): median r = 0.903, 5-95% band 0.881 to 0.922 (1000 seeded draws" in text
    assert "sensitivity of (b): median r = 0.788, 5-95% band 0.763 to 0.817 (1000 seeded draws" in text

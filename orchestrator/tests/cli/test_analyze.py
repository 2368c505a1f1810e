"""`hyoka analyze` end to end through the typer app (and once through a real process): defaults,
custom inputs and projections, and bad input -> one line naming file/row/column, exit code 2,
nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyoka.orchestrator.analysis.loaders import default_budgets_available, load_default_scores
from hyoka.orchestrator.cli import app

runner = CliRunner()

BUDGETS = """model_id,params_B,en_tokens_B,ja_tokens_B,source,confidence,is_estimate,notes
meta-llama/Llama-2-7b-hf,6.7,1794,2,Llama 2 paper,recalled,true,
meta-llama/Llama-2-13b-hf,13,1794,2,Llama 2 paper,recalled,true,
meta-llama/Llama-2-70b-hf,70,1794,2,Llama 2 paper,recalled,true,
llm-jp/llm-jp-13b-v2.0,13,115,132.1,model card,verified,false,
tokyotech-llm/Swallow-7b-hf,6.7,1804,92,Fujii et al. 2024,verified-secondary,false,
"""
MODELS = [
    "meta-llama/Llama-2-7b-hf",
    "meta-llama/Llama-2-13b-hf",
    "meta-llama/Llama-2-70b-hf",
    "llm-jp/llm-jp-13b-v2.0",
    "tokyotech-llm/Swallow-7b-hf",
    "Qwen/Qwen2-72B",
    "cyberagent/calm2-7b",
    "mistralai/Mistral-7B-v0.1",
]


def _scores_csv(models: list[str] = MODELS) -> str:
    table = load_default_scores()
    lines = [",".join(["model_id", "group", *table.benchmarks])]
    for model in models:
        i = table.models.index(model)
        lines.append(",".join([model, table.groups[i], *(f"{v:.4f}" for v in table.values[i])]))
    return "\n".join(lines) + "\n"


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "analyze" in result.output and "serve" in result.output


@pytest.mark.skipif(not default_budgets_available(), reason="budgets_35.csv not shipped yet")
def test_defaults_write_the_report_and_print_the_correlations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["analyze"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "hyoka-report"
    data = json.loads((out / "analysis.json").read_text())
    assert data["explained_variance_ratio"] == pytest.approx([0.652, 0.154, 0.070], abs=0.002)
    assert len(data["pc_scores"]) == 35
    en, ja = data["budget_correlations"]["pc1_vs_en"], data["budget_correlations"]["pc2_vs_ja"]
    assert f"r(PC1, log10 C_en) = {en['r']:.3f} (n={en['n']})" in result.stdout
    assert f"r(PC2, log10 C_ja) = {ja['r']:.3f} (n={ja['n']})" in result.stdout
    assert "paper 0.916 (n=27)" in result.stdout and "paper 0.779 (n=25)" in result.stdout
    assert "budget figures that are estimates" in result.stdout
    assert "Llama-2-7b-hf" in result.stdout  # the models used are listed
    for name in ("report.html", "report.md", "loadings_heatmap.png", "pc1_pc2_scatter.png", "pc1_vs_budget.png"):
        assert (out / name).is_file()


def test_custom_scores_budgets_and_new_models(tmp_path: Path) -> None:
    scores = _write(tmp_path, "scores.csv", _scores_csv())
    budgets = _write(tmp_path, "budgets.csv", BUDGETS)
    table = load_default_scores()
    i = table.models.index("tokyotech-llm/Swallow-13b-hf")
    partial = {
        b: float(v) for b, v in zip(table.benchmarks, table.values[i], strict=True) if b not in ("niilc", "mmlu")
    }
    new_json = _write(tmp_path, "new.json", json.dumps([{"model_id": "my/swallow-13b-partial", "scores": partial}]))
    new_csv = _write(tmp_path, "new.csv", "model_id,niilc,mmlu,gsm8k,humaneval\nmy/other,0.5,0.6,0.3,\n")
    out = tmp_path / "out"
    args = ["analyze", "--scores", str(scores), "--budgets", str(budgets), "--out", str(out)]
    result = runner.invoke(app, [*args, "--new-model", str(new_json), "--new-model", str(new_csv)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "analysis.json").read_text())
    assert data["models"] == MODELS
    assert data["budget_correlations"]["pc1_vs_en"]["n"] == 5
    assert set(data["budget_correlations"]["pc1_vs_en"]["excluded"]) == set(MODELS[5:])
    assert data["projections"]["my/swallow-13b-partial"]["missing_benchmarks"] == ["niilc", "mmlu"]
    assert len(data["projections"]["my/other"]["observed_benchmarks"]) == 3
    assert "Projected my/swallow-13b-partial" in result.stdout
    assert (out / "projections.csv").read_text().count("\n") == 3


def test_no_budgets(tmp_path: Path) -> None:
    result = runner.invoke(app, ["analyze", "--no-budgets", "--out", str(tmp_path / "o"), "--components", "4"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "o" / "analysis.json").read_text())
    assert data["budget_correlations"] == {} and len(data["explained_variance_ratio"]) == 4
    assert "No budget table" in result.stdout


BAD_SCORES = [
    ('model_id,a,b\nm1,0.1,"0.2\n', "line 2", "malformed CSV"),
    ("model_id,a,b\nm1,0.1,0.2\nm2,0.1,x\nm3,0.2,0.3\n", "line 3 (model 'm2'), column 'b'", "'x' is not a number"),
    ("model_id,a,b\nm1,0.1,0.2\nm2,0.1,1.01\nm3,0.2,0.3\n", "line 3 (model 'm2'), column 'b'", "outside [0, 1]"),
    ("model_id,a,b\nm1,0.1,0.2\nm1,0.1,0.5\nm3,0.2,0.3\n", "line 3 (model 'm1'), column 'model_id'", "repeated model"),
    ("model_id,a,b,a\nm1,0.1,0.2,0.1\n", "line 1 (header), column 'a'", "repeated column 'a'"),
    ("model_id,a,b\nm1,0.1,0.2\nm2,0.2,0.3\n", "lines 2-3", "at least 3"),
]


@pytest.mark.parametrize(("text", "where", "what"), BAD_SCORES)
def test_bad_scores_exit_2_with_one_line_and_write_nothing(tmp_path: Path, text: str, where: str, what: str) -> None:
    path = _write(tmp_path, "bad.csv", text)
    out = tmp_path / "out"
    result = runner.invoke(app, ["analyze", "--scores", str(path), "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: {path}, {where}")
    assert what in result.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            BUDGETS + "nobody/unknown,1,1,1,s,verified,false,\n",
            "line 7 (model 'nobody/unknown'), column 'model_id': unknown model",
        ),
        (BUDGETS.replace("notes", "notes,niilc"), "line 1 (header), column 'niilc': unknown column 'niilc'"),
        (
            BUDGETS.replace("13,115,", "13,lots,"),
            "line 5 (model 'llm-jp/llm-jp-13b-v2.0'), column 'en_tokens_B': 'lots' is not a number",
        ),
    ],
)
def test_bad_budgets_exit_2(tmp_path: Path, text: str, where: str) -> None:
    path = _write(tmp_path, "budgets.csv", text)
    out = tmp_path / "out"
    result = runner.invoke(app, ["analyze", "--budgets", str(path), "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr.strip() == result.stderr.strip().splitlines()[0]
    assert f"error: {path}, {where}" in result.stderr
    assert not out.exists()


def test_bad_new_model_exit_2_and_previous_report_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert runner.invoke(app, ["analyze", "--no-budgets", "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    new = _write(tmp_path, "new.csv", "model_id,niilc,jglue_marc\nm,0.5,0.5\n")
    result = runner.invoke(app, ["analyze", "--no-budgets", "--out", str(out), "--new-model", str(new)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {new}, column 'jglue_marc': unknown benchmark 'jglue_marc'")
    sparse = _write(tmp_path, "sparse.csv", "model_id,niilc,mmlu\nm,0.5,0.5\n")
    result = runner.invoke(app, ["analyze", "--no-budgets", "--out", str(out), "--new-model", str(sparse)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {sparse}, model 'm': model 'm' has 2 score(s)")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_refuses_an_output_directory_with_other_content(tmp_path: Path) -> None:
    out = tmp_path / "docs"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["analyze", "--no-budgets", "--out", str(out)])
    assert result.exit_code == 2 and "refusing to replace it" in result.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_real_process_exit_code_and_stderr(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.csv", "model_id,a\nm1,0.5\nm2,2\nm3,0.1\n")
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from hyoka.orchestrator.cli import main; main()",
            "analyze",
            "--scores",
            str(path),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2
    assert completed.stderr == f"error: {path}, line 3 (model 'm2'), column 'a': score 2 is outside [0, 1]\n"
    assert completed.stdout == ""
    assert not (tmp_path / "o").exists()

"""Fixtures for the factor-analysis tests: the shipped paper table, a small budget table written
by the tests themselves, and helpers to write input files."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyoka.orchestrator.analysis import ScoreTable
from hyoka.orchestrator.analysis.loaders import load_default_scores

# A budget table in the shipped schema for six of the 35 models (figures in billions). Independent
# of the shipped budgets_35.csv, so the correlation code is tested against numbers we control.
BUDGET_FIXTURE = """model_id,params_B,en_tokens_B,ja_tokens_B,source,confidence,is_estimate,notes
meta-llama/Llama-2-7b-hf,6.7,1794,2,Llama 2 paper Table 10,recalled,true,fixture
meta-llama/Llama-2-13b-hf,13,1794,2,Llama 2 paper Table 10,recalled,true,fixture
meta-llama/Llama-2-70b-hf,70,1794,2,Llama 2 paper Table 10,recalled,true,
llm-jp/llm-jp-13b-v2.0,13,115,132.1,model card,verified,false,"quoted, with a comma"
tokyotech-llm/Swallow-7b-hf,6.7,1804,92,Fujii et al. 2024,verified-secondary,false,
01-ai/Yi-1.5-6B,6.1,,0,Yi paper,recalled,true,no Japanese
mistralai/Mistral-7B-v0.1,7.2,,,model card,unverified,false,tokens undisclosed
Qwen/Qwen1.5-7B,,,,,,,nothing known
"""
FIXTURE_EN_MODELS = [
    "meta-llama/Llama-2-7b-hf",
    "meta-llama/Llama-2-13b-hf",
    "meta-llama/Llama-2-70b-hf",
    "llm-jp/llm-jp-13b-v2.0",
    "tokyotech-llm/Swallow-7b-hf",
]

# The reference PCA of ../shared/paper/pca_reproduction_loadings.csv (computed independently
# with an SVD): explained variance and a few loadings, to 4 decimals.
REFERENCE_EVR = (0.6515, 0.1542, 0.0697)
REFERENCE_LOADINGS = {
    ("niilc", 2): 0.5699,
    ("wmt20_en_ja", 2): 0.5435,
    ("jemhopqa", 2): 0.4248,
    ("mmlu", 1): 0.2756,
    ("humaneval", 3): 0.3320,
    ("xwino_en", 3): -0.4180,
}
REFERENCE_SCORES = {
    "cyberagent/calm2-7b": (-6.9542, 0.5185, 2.3821),
    "CohereForAI/c4ai-command-r-v01": (1.8152, 1.4431, -0.5146),
}


@pytest.fixture(scope="session")
def paper_table() -> ScoreTable:
    return load_default_scores()


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def table_csv(table: ScoreTable, rows: list[int] | None = None, drop: tuple[str, ...] = ()) -> str:
    """A score table back to CSV (model_id, group, benchmarks), optionally a subset."""
    benchmarks = [b for b in table.benchmarks if b not in drop]
    lines = [",".join(["model_id", "group", *benchmarks])]
    for i in rows if rows is not None else range(len(table.models)):
        cells = [f"{table.values[i, table.benchmarks.index(b)]:.4f}" for b in benchmarks]
        lines.append(",".join([table.models[i], table.groups[i], *cells]))
    return "\n".join(lines) + "\n"


@pytest.fixture
def budget_file(tmp_path: Path) -> Path:
    return write(tmp_path, "budgets.csv", BUDGET_FIXTURE)

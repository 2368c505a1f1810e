"""Reading score and budget files: formats accepted, and every kind of bad input named by file,
row and column in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyoka.orchestrator.analysis import InputError, ScoreTable
from hyoka.orchestrator.analysis.loaders import load_budgets, load_scores

from .conftest import BUDGET_FIXTURE, table_csv, write

GOOD = "model_id,display_name,group,a,b\nm1,M 1,x,0.1,0.5\nm2,M 2,x,0.2,0.4\nm3,M 3,y,0.9,0.0\n"


def test_csv_reads_ids_labels_groups_and_benchmarks(tmp_path: Path) -> None:
    table = load_scores(write(tmp_path, "s.csv", GOOD))
    assert table.models == ("m1", "m2", "m3")
    assert table.benchmarks == ("a", "b")
    assert table.groups == ("x", "x", "y")
    assert table.label(0) == "M 1"
    assert table.values[2].tolist() == [0.9, 0.0]


def test_csv_ignores_leaderboard_parameter_and_average_columns(tmp_path: Path) -> None:
    text = (
        "model_id,category_guess,params_B_leaderboard_2024-07,a,b,ja_avg_leaderboard\n"
        "m1,g,7,0.1,0.5,9\nm2,g,7,0.2,0.4,9\nm3,g,7,0.3,0.1,9\n"
    )
    table = load_scores(write(tmp_path, "s.csv", text))
    assert table.benchmarks == ("a", "b") and table.groups == ("g",) * 3


def test_csv_and_json_give_the_same_table(tmp_path: Path, paper_table: ScoreTable) -> None:
    from_csv = load_scores(write(tmp_path, "s.csv", table_csv(paper_table)))
    document = {
        "benchmarks": list(paper_table.benchmarks),
        "models": [
            {
                "model_id": m,
                "group": paper_table.groups[i],
                "scores": dict(zip(paper_table.benchmarks, map(float, from_csv.values[i]), strict=True)),
            }
            for i, m in enumerate(paper_table.models)
        ],
    }
    from_json = load_scores(write(tmp_path, "s.json", json.dumps(document)))
    assert from_json.models == from_csv.models and from_json.benchmarks == from_csv.benchmarks
    assert (from_json.values == from_csv.values).all()
    # The bare list of models is accepted too.
    assert (
        load_scores(write(tmp_path, "list.json", json.dumps(document["models"]))).benchmarks == paper_table.benchmarks
    )


def _error(path: Path, complete: bool = True) -> str:
    with pytest.raises(InputError) as raised:
        load_scores(path, complete=complete)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    return message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ('model_id,a,b\nm1,0.1,"0.2\n', "line 2"),  # unterminated quote
        ("model_id,a,b\nm1,0.1,0.2\nm2,0.1\nm3,0.2,0.3\n", "line 3: has 2 fields but the header has 3"),
        (
            "model_id,a,b\nm1,0.1,0.2\nm2,0.1,high\nm3,0.2,0.3\n",
            "line 3 (model 'm2'), column 'b': 'high' is not a number",
        ),
        (
            "model_id,a,b\nm1,0.1,0.2\nm2,0.1,1.3\nm3,0.2,0.3\n",
            "line 3 (model 'm2'), column 'b': score 1.3 is outside [0, 1]",
        ),
        (
            "model_id,a,b\nm1,0.1,0.2\nm2,-0.1,0.5\nm3,0.2,0.3\n",
            "line 3 (model 'm2'), column 'a': score -0.1 is outside [0, 1]",
        ),
        (
            "model_id,a,b\nm1,0.1,nan\nm2,0.1,0.5\nm3,0.2,0.3\n",
            "line 2 (model 'm1'), column 'b': score nan is not a finite number",
        ),
        ("model_id,a,b\nm1,0.1,\nm2,0.1,0.5\nm3,0.2,0.3\n", "line 2 (model 'm1'), column 'b': missing score"),
        (
            "model_id,a,b\nm1,0.1,0.2\nm2,0.1,0.5\nm1,0.2,0.3\n",
            "line 4 (model 'm1'), column 'model_id': repeated model 'm1'",
        ),
        ("model_id,a,a\nm1,0.1,0.2\nm2,0.1,0.5\nm3,0.2,0.3\n", "line 1 (header), column 'a': repeated column 'a'"),
        ("model_id,a,b\nm1,0.1,0.2\nm2,0.3,0.5\n", "2 models; the analysis needs at least 3"),
        ("id,a,b\nm1,0.1,0.2\n", "line 1 (header): no 'model_id' column"),
        ("model_id,a\nm1,0.1\nm2,0.2\nm3,0.3\n", "line 1 (header): 1 benchmark(s); the analysis needs at least 2"),
        ("model_id,a,b\nm1,0.1,0.2\nm2,0.1,0.5\nm3,0.1,0.3\n", "column 'a': every model scores 0.1 on 'a'"),
    ],
)
def test_bad_csv_is_named_by_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _error(write(tmp_path, "scores.csv", text))


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("{", "malformed JSON"),
        ('{"models": [{"model_id": "m1", "scores": {"a": NaN}}]}', "NaN is not allowed"),
        ('{"models": [{"model_id": "m1", "scores": {"a": 0.1, "a": 0.2}}]}', "repeated key 'a'"),
        ('{"models": [{"model_id": "m1", "scores": {"a": "x"}}]}', "models[0], column 'scores.a'"),
        ('{"models": [{"model_id": "m1", "score": {}}]}', "models[0]"),
        (
            '{"models": [{"model_id": "m1", "scores": {"a": 0.1, "b": 0.1}},'
            ' {"model_id": "m2", "scores": {"a": 0.5, "b": 2}}, {"model_id": "m3", "scores": {"a": 0.3, "b": 0.3}}]}',
            "models[1] (model 'm2'), column 'scores.b': score 2 is outside [0, 1]",
        ),
        (
            '{"benchmarks": ["a"], "models": [{"model_id": "m1", "scores": {"a": 0.1, "z": 0.1}}]}',
            "models[0] (model 'm1'), column 'scores.z': benchmark not in 'benchmarks'",
        ),
        (
            '{"models": [{"model_id": "m1", "scores": {"a": 0.1, "b": 0.2}},'
            ' {"model_id": "m1", "scores": {"a": 0.5, "b": 0.2}}, {"model_id": "m3", "scores": {"a": 0.3, "b": 0.3}}]}',
            "models[1] (model 'm1'), column 'model_id': repeated model 'm1'",
        ),
    ],
)
def test_bad_json_is_named_by_path(tmp_path: Path, document: str, expected: str) -> None:
    assert expected in _error(write(tmp_path, "scores.json", document))


def test_missing_file_and_non_utf8(tmp_path: Path) -> None:
    assert "no such file" in _error(tmp_path / "absent.csv")
    path = tmp_path / "latin1.csv"
    path.write_bytes("model_id,a\nm\xe9,0.1\n".encode("latin-1"))
    assert "line 2: not UTF-8" in _error(path)


def test_new_model_files_may_have_missing_cells(tmp_path: Path) -> None:
    table = load_scores(write(tmp_path, "new.csv", "model_id,a,b\nnew1,0.5,\n"), complete=False)
    assert table.models == ("new1",)
    assert table.values[0, 0] == 0.5 and table.values[0, 1] != table.values[0, 1]  # NaN: missing


def _budget_error(path: Path, known: set[str]) -> str:
    with pytest.raises(InputError) as raised:
        load_budgets(path, known)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: t.replace("01-ai/Yi-1.5-6B", "01-ai/Yi-9-unknown"),
            "line 7 (model '01-ai/Yi-9-unknown'), column 'model_id': unknown model",
        ),
        (
            lambda t: t.replace("llm-jp/llm-jp-13b-v2.0,13,", "llm-jp/llm-jp-13b-v2.0,thirteen,"),
            "line 5 (model 'llm-jp/llm-jp-13b-v2.0'), column 'params_B': 'thirteen' is not a number",
        ),
        (
            lambda t: t.replace(
                "recalled,true,fixture\nmeta-llama/Llama-2-13b", "recalled,maybe,fixture\nmeta-llama/Llama-2-13b"
            ),
            "line 2 (model 'meta-llama/Llama-2-7b-hf'), column 'is_estimate': 'maybe' is not true or false",
        ),
        (lambda t: t.replace(",verified,false", ",sure,false", 1), "column 'confidence': unknown confidence 'sure'"),
        (lambda t: t.replace("notes\n", "notes,niilc\n", 1), "line 1 (header), column 'niilc': unknown column 'niilc'"),
        (lambda t: t.replace(",source,", ",", 1), "column 'source': missing column 'source'"),
        (
            lambda t: t + "meta-llama/Llama-2-7b-hf,6.7,1,1,x,recalled,true,\n",
            "line 10 (model 'meta-llama/Llama-2-7b-hf'), column 'model_id': repeated model",
        ),
        (
            lambda t: t.replace("13,1794,2,Llama", "13,1794,-2,Llama", 1),
            "column 'ja_tokens_B': token count -2 must not be negative",
        ),
    ],
)
def test_bad_budget_files_are_named_by_line_and_column(
    tmp_path: Path, paper_table: ScoreTable, edit, expected: str
) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "budgets.csv", edit(BUDGET_FIXTURE))
    assert expected in _budget_error(path, set(paper_table.models))

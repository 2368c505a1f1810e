"""`hyoka eval` end to end on the scripted backend, and one clear error (exit 2) per kind of bad
input, before any work starts."""

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyoka.orchestrator.cli import app
from hyoka.orchestrator.tasks import get_task
from hyoka.rpc.server import free_port

runner = CliRunner()


@pytest.fixture
def script(tmp_path: Path, data_dir: Path) -> Path:
    """A scripted model that answers JCommonsenseQA right for even items and XWINO by its gold."""
    jcqa = get_task("jcommonsenseqa")
    xwino = get_task("xwino_en")
    generations = {}
    for it in jcqa.items(jcqa.load(data_dir), limit=4):
        generations[it.prompt] = (it.gold if it.index % 2 == 0 else "9") + "\n\n### 入力:"
    scores = []
    for it in xwino.items(xwino.load(data_dir), limit=4):
        for i, r in enumerate(it.loglikelihood):
            logprob = -1.0 if str(i) == it.gold else -3.0
            scores.append({"context": r.context, "continuation": r.continuation, "logprob": logprob})
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"generations": generations, "loglikelihoods": scores}), encoding="utf-8")
    return path


def invoke(*args: str | Path):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["eval", *map(str, args)])


def test_scripted_run_writes_records_results_and_scores_csv(tmp_path: Path, script: Path, data_dir: Path) -> None:
    out = tmp_path / "run"
    args = ("--model", f"scripted:{script}", "--tasks", "jcommonsenseqa,xwino_en", "--limit", "4")
    result = invoke(*args, "--out", out, "--data-dir", data_dir, "--model-id", "my/model")
    assert result.exit_code == 0, result.output
    assert "jcommonsenseqa" in result.output and "0.5000" in result.output and "1.0000" in result.output
    with (out / "scores.csv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    # The published table's column names and order: jcommonsenseqa comes before xwino_en.
    assert rows == [["model_id", "jcommonsenseqa", "xwino_en"], ["my/model", "0.5000", "1.0000"]]
    records = [json.loads(line) for line in (out / "records/jcommonsenseqa.jsonl").read_text("utf-8").splitlines()]
    assert len(records) == 4
    assert {r["extracted"] for r in records} <= {"9", *(r["gold"] for r in records)}
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [t["task"] for t in results["tasks"]] == ["jcommonsenseqa", "xwino_en"]

    # Rerun: everything is resumed from the records, nothing is asked of the model again.
    again = invoke(*args, "--out", out, "--data-dir", data_dir, "--model-id", "my/model")
    assert again.exit_code == 0, again.output
    assert [t["num_resumed"] for t in json.loads((out / "results.json").read_text("utf-8"))["tasks"]] == [4, 4]


def _error_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    return str(lines[0])


def test_unknown_task(tmp_path: Path, script: Path) -> None:
    line = _error_line(invoke("--model", f"scripted:{script}", "--tasks", "niilc,nope", "--out", tmp_path / "o"))
    assert "unknown task 'nope'" in line and "niilc" in line
    assert not (tmp_path / "o").exists()


def test_unknown_backend(tmp_path: Path) -> None:
    line = _error_line(invoke("--model", "gpt9:x", "--tasks", "niilc", "--out", tmp_path / "o"))
    assert "unknown backend 'gpt9'" in line and "hf-local" in line
    assert not (tmp_path / "o").exists()


def test_multiple_choice_task_on_a_generation_only_backend(tmp_path: Path) -> None:
    gen_only = tmp_path / "gen.json"
    gen_only.write_text(json.dumps({"default": "0"}), encoding="utf-8")
    line = _error_line(
        invoke("--model", f"scripted:{gen_only}", "--tasks", "jcommonsenseqa,xwino_en", "--out", tmp_path / "o")
    )
    assert "xwino_en" in line and "log-likelihood" in line
    assert not (tmp_path / "o").exists()


def test_data_dir_without_the_task_files(tmp_path: Path, script: Path) -> None:
    empty = tmp_path / "data"
    (empty / "niilc").mkdir(parents=True)
    line = _error_line(
        invoke("--model", f"scripted:{script}", "--tasks", "niilc", "--out", tmp_path / "o", "--data-dir", empty)
    )
    assert "NIILC-ECQA2015_test.xml not found" in line
    assert not (tmp_path / "o").exists()


def test_unreachable_metrics_server(tmp_path: Path, script: Path, data_dir: Path) -> None:
    port = free_port()  # nothing listens there
    line = _error_line(
        invoke(
            "--model",
            f"scripted:{script}",
            "--tasks",
            "niilc",
            "--out",
            tmp_path / "o",
            "--data-dir",
            data_dir,
            "--metrics-url",
            f"127.0.0.1:{port}",
        )
    )
    assert f"127.0.0.1:{port}" in line and "metrics" in line
    assert not (tmp_path / "o" / "records").exists()


def test_bad_limit(tmp_path: Path, script: Path) -> None:
    line = _error_line(invoke("--model", f"scripted:{script}", "--tasks", "niilc", "--out", tmp_path, "--limit", "0"))
    assert "--limit" in line


def test_bad_or_unreachable_store(tmp_path: Path, script: Path, data_dir: Path) -> None:
    args = ("--model", f"scripted:{script}", "--tasks", "jcommonsenseqa", "--data-dir", data_dir, "--limit", "1")
    line = _error_line(invoke(*args, "--out", tmp_path / "a", "--store", "mysql://u@h/db"))
    assert "unsupported run store URL mysql://u@h/db" in line and "postgresql://" in line
    port = free_port()  # nothing listens there
    url = f"postgresql://hyoka:s3cret@127.0.0.1:{port}/runs"
    line = _error_line(invoke(*args, "--out", tmp_path / "b", "--store", url))
    assert f"postgresql://hyoka:***@127.0.0.1:{port}/runs" in line and "s3cret" not in line
    assert not (tmp_path / "b" / "records").exists()


def test_store_option_keeps_items_and_the_run(tmp_path: Path, script: Path, data_dir: Path, store_url: str) -> None:
    from hyoka.orchestrator.runner.store import open_store

    out = tmp_path / "run"
    args = ("--model", f"scripted:{script}", "--tasks", "jcommonsenseqa", "--limit", "4", "--data-dir", data_dir)
    result = invoke(*args, "--out", out, "--store", store_url, "--run-id", "cli-run")
    assert result.exit_code == 0, result.output
    assert (
        not (out / "hyoka.sqlite").exists()
        and len((out / "records/jcommonsenseqa.jsonl").read_text().splitlines()) == 4
    )
    with open_store(store_url, default_path=tmp_path / "unused.sqlite") as store:
        run = store.get_run("cli-run")
        assert run is not None and run.state == "succeeded" and run.results is not None
        assert run.results["tasks"][0]["num_items"] == 4
    # Without --store and --run-id: OUT/hyoka.sqlite, the run named HOST:OUT.
    default = invoke(*args, "--out", tmp_path / "default")
    assert default.exit_code == 0, default.output
    with open_store(None, default_path=tmp_path / "default" / "hyoka.sqlite") as store:
        (run,) = store.list_runs()
        assert run.run_id.endswith(f":{tmp_path / 'default'}") and run.state == "succeeded"

"""`hyoka prompts`: a task's requests as JSON lines without a model; one clear error (exit 2) per
kind of bad input."""

import json
from pathlib import Path

from typer.testing import CliRunner

from hyoka.orchestrator.cli import app
from hyoka.orchestrator.cli.evaluate import select_tasks
from hyoka.orchestrator.tasks import SUITES, get_task

runner = CliRunner()


def test_writes_the_requests_eval_would_send(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "niilc.jsonl"
    result = runner.invoke(
        app, ["prompts", "--task", "niilc", "--limit", "2", "--data-dir", str(data_dir), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    task = get_task("niilc")
    items = task.items(task.load(data_dir), limit=2)
    assert [r["prompt"] for r in records] == [it.prompt for it in items]
    assert [r["gold"] for r in records] == [it.gold for it in items]
    assert records[0]["generation"] == {
        "stop": ["\n\n"],
        "max_new_tokens": 180,
        "max_total_tokens": None,
        "temperature": 0.0,
        "top_p": 1.0,
        "n": 1,
        "seed": None,
        "add_special_tokens": False,
    }
    assert not list(tmp_path.glob("*.tmp"))


def test_loglikelihood_continuations_are_written(data_dir: Path) -> None:
    result = runner.invoke(app, ["prompts", "--task", "xwino_en", "--limit", "1", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    task = get_task("xwino_en")
    (item,) = task.items(task.load(data_dir), limit=1)
    assert record["loglikelihood"] == [[r.context, r.continuation] for r in item.loglikelihood]
    assert "generation" not in record


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, data_dir: Path) -> None:
    unknown = runner.invoke(app, ["prompts", "--task", "nope", "--data-dir", str(data_dir)])
    assert unknown.exit_code == 2 and "unknown task 'nope'" in unknown.output
    missing = runner.invoke(app, ["prompts", "--task", "niilc", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 2 and "task niilc:" in missing.output and "hyoka data pull niilc" in missing.output
    no_task = runner.invoke(app, ["prompts"])
    assert no_task.exit_code == 2 and "--task" in no_task.output


def test_list_names_every_task_and_the_paper_suite() -> None:
    result = runner.invoke(app, ["prompts", "--list"])
    assert result.exit_code == 0
    assert "niilc\t" in result.stdout and "suite paper\t" in result.stdout


def test_suite_paper_is_the_19_columns_of_the_published_table() -> None:
    from hyoka.orchestrator.runner.results import BENCHMARK_COLUMNS

    assert SUITES["paper"] == BENCHMARK_COLUMNS
    assert select_tasks(None, "paper") == BENCHMARK_COLUMNS
    assert select_tasks("niilc,bbh", "paper") == BENCHMARK_COLUMNS  # no repeats
    assert select_tasks("niilc, jcommonsenseqa,niilc", None) == ("niilc", "jcommonsenseqa")


def test_unknown_suite_or_no_tasks_fail_up_front(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "--model", "scripted", "--suite", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown suite 'nope'" in result.output and "paper" in result.output
    result = runner.invoke(app, ["eval", "--model", "scripted", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--suite" in result.output

"""Loaders read the shipped files as the harnesses do, and name the file (and line) on bad data."""

import gzip
import json
from pathlib import Path

import pytest

from hyoka.orchestrator.tasks import TaskDataError, get_task
from hyoka.orchestrator.tasks.families.lm_eval_mc import xwinograd_record
from hyoka.orchestrator.tasks.loaders import LOADERS


def test_sizes_of_the_evaluated_splits(data_dir: Path) -> None:
    expected = {"niilc": 198, "jcommonsenseqa": 1119, "xwinograd_en": 2325, "jhumaneval": 164, "humaneval": 164}
    assert {name: len(LOADERS[name](data_dir).test) for name in expected} == expected


def test_niilc_skips_dash_answers_and_joins_several(data_dir: Path) -> None:
    data = LOADERS["niilc"](data_dir)
    ids = {d["id"] for d in data.test}
    assert "NIILC-ECQA2015-00020-01" not in ids and "NIILC-ECQA2015-00165-01" not in ids
    dev_ids = {d["id"] for d in data.fewshot_pool}
    for skipped in ("00046", "00234", "00381", "00387", "00747"):
        assert f"NIILC-ECQA2015-{skipped}-01" not in dev_ids
    joined = [d for d in data.test if "," in d["answer"]]
    assert joined and all(", " not in d["answer"] and "" not in d["answer"].split(",") for d in joined)


def test_niilc_multiple_answers_from_xml(tmp_path: Path) -> None:
    (tmp_path / "niilc/fewshot").mkdir(parents=True)
    xml = (
        "<questions>"
        '<question id="q1"><text> 質問1 </text><answers><answer>A</answer><answer></answer>'
        "<answer>B</answer></answers></question>"
        '<question id="q2"><text>質問2</text><answers><answer>-</answer></answers></question>'
        '<question id="q3"><text>質問3</text><answers><answer>C</answer></answers></question>'
        "</questions>"
    )
    (tmp_path / "niilc/NIILC-ECQA2015_test.xml").write_text(xml, encoding="utf-8")
    (tmp_path / "niilc/fewshot/NIILC-ECQA2015_dev.xml").write_text(xml, encoding="utf-8")
    data = LOADERS["niilc"](tmp_path)
    assert data.test == [
        {"id": "q1", "text": "質問1", "answer": "A,B"},
        {"id": "q3", "text": "質問3", "answer": "C"},
    ]


def test_xwinograd_record_handles_ptb_quotes() -> None:
    row = [
        "en",
        "original",
        "?",
        'Tom said "Check" to Ralph as he moved his bishop.',
        json.dumps(["Tom", "said", "``", "Check", "''", "to", "Ralph", "as", "he", "moved", "his", "bishop", "."]),
        json.dumps(["he", [8, 9], ["he"]]),
        json.dumps([["Tom", [0, 1], ["Tom"], True], ["Ralph", [6, 7], ["Ralph"], False]]),
    ]
    assert xwinograd_record(row, "x") == {
        "sentence": 'Tom said "Check" to Ralph as _ moved his bishop.',
        "option1": "Tom",
        "option2": "Ralph",
        "answer": "1",
    }


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    task = get_task("jhumaneval")
    with pytest.raises(TaskDataError, match=r"jhumaneval/jhuman-eval\.jsonl\.gz not found"):
        task.check_data(tmp_path)


def test_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "jhumaneval"
    folder.mkdir()
    good = {"task_id": "J/0", "prompt": "p", "entry_point": "f", "canonical_solution": "s", "test": "t"}
    with gzip.open(folder / "jhuman-eval.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps(good) + "\n{not json\n")
    with pytest.raises(TaskDataError, match=r"jhuman-eval\.jsonl\.gz:2: not valid JSON"):
        LOADERS["jhumaneval"](tmp_path)


def test_missing_field_names_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "jcommonsenseqa"
    (folder / "fewshot").mkdir(parents=True)
    (folder / "valid-v1.3.json").write_text('{"q_id": 1, "question": "q"}\n', encoding="utf-8")
    (folder / "fewshot/train-v1.1.json").write_text("", encoding="utf-8")
    with pytest.raises(TaskDataError, match=r"valid-v1\.3\.json:1: missing field\(s\) choice0"):
        LOADERS["jcommonsenseqa"](tmp_path)


def test_bad_xml_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "niilc/fewshot").mkdir(parents=True)
    (tmp_path / "niilc/NIILC-ECQA2015_test.xml").write_text("<questions>\n<question>\n</questions>", encoding="utf-8")
    with pytest.raises(TaskDataError, match=r"NIILC-ECQA2015_test\.xml:3: not valid XML"):
        LOADERS["niilc"](tmp_path)


def test_task_definitions_are_validated() -> None:
    import pydantic

    from hyoka.orchestrator.tasks import TaskSpec, task_specs

    assert {"jcommonsenseqa", "jhumaneval", "niilc", "xwino_en", "humaneval"} <= set(task_specs())
    broken = task_specs()["niilc"].model_dump()
    broken["extraction"] = "code_stop_words"
    with pytest.raises(pydantic.ValidationError, match="code_stop_words"):
        TaskSpec.model_validate(broken)
    no_generation = task_specs()["jcommonsenseqa"].model_dump()
    no_generation["generation"] = None
    with pytest.raises(pydantic.ValidationError, match="needs a \\[generation\\] table"):
        TaskSpec.model_validate(no_generation)

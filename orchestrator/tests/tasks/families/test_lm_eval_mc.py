"""OpenBookQA, HellaSwag and MMLU as lm-evaluation-harness 0.4.2 builds them (families/lm_eval_mc.py).

Expected prompts are written out from the harness's configuration (task YAMLs, `api/task.py`,
`api/samplers.py`, `tasks/hellaswag/utils.py` at v0.4.2 = 4600d6bf) and FEWSHOT.md B, not
computed with the module's helpers. HellaSwag's data is not in ../shared: its loader and builder
run on files written here in rowanz/hellaswag's raw layout.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from hyoka.orchestrator.tasks import TaskDataError, get_task
from hyoka.orchestrator.tasks.families.lm_eval_mc import (
    MMLU_SUBJECTS,
    hellaswag_preprocess,
    mmlu_rows,
)
from hyoka.orchestrator.tasks.items import Item, ItemOutput
from hyoka.orchestrator.tasks.loaders import LOADERS, TaskData
from hyoka.orchestrator.tasks.prompts import jinja_literal
from hyoka.orchestrator.tasks.scoring import Scorers


def _continuations(item: Item) -> list[str]:
    assert all(r.context == item.prompt for r in item.loglikelihood)
    return [r.continuation for r in item.loglikelihood]


def _raw_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- OpenBookQA -----------------------------------------------------------------------------------

OBQA_FIRST_PROMPT = (
    "if a book was intact on the desk in the morning, but in shreds in the afternoon, what happened? "
    "it underwent a tearing process\n\n"
    "What is a thermometer used to measure? warmness\n\n"
    "Which animal lacks the ability to see by sensing light? Southern cave crayfish\n\n"
    "Precipitation is when hail fall from clouds to the ground, and so is sprinkles\n\n"
    "A person wants to start saving money so that they can afford a nice vacation at the end of the "
    "year. After looking over their budget and expenses, they decide the best way to save money is to"
)


@pytest.fixture(scope="module")
def obqa(data_dir: Path) -> tuple[TaskData, list[Item]]:
    task = get_task("openbookqa")
    data = task.load(data_dir)
    return data, task.items(data, limit=3)


def test_openbookqa_splits_in_hf_main_layout(obqa: tuple[TaskData, list[Item]]) -> None:
    data, _ = obqa
    assert (len(data.test), len(data.fewshot_pool)) == (500, 4957)
    assert data.fewshot_pool[0] == {
        "id": "7-980",
        "question_stem": "The sun is responsible for",
        "choices": {
            "text": [
                "puppies learning new tricks",
                "children growing up and getting old",
                "flowers wilting in a vase",
                "plants sprouting, blooming and wilting",
            ],
            "label": ["A", "B", "C", "D"],
        },
        "answerKey": "D",
    }


def test_openbookqa_first_item(obqa: tuple[TaskData, list[Item]]) -> None:
    _, items = obqa
    first = items[0]
    assert (first.index, first.id) == (0, "8-343")
    assert first.prompt == OBQA_FIRST_PROMPT
    assert _continuations(first) == [
        " make more phone calls",
        " quit eating lunch out",
        " buy less with monopoly money",
        " have lunch with friends",
    ]
    assert first.gold == "1"  # answerKey B
    assert first.generation is None and first.extra == {}


def test_openbookqa_shots_are_the_check_value_positions(data_dir: Path, obqa: tuple[TaskData, list[Item]]) -> None:
    """FEWSHOT.md B.6: train positions 3610, 957, 61, 742 / 4769, 286, 687, 806 / 2905, 1939, 142, 252
    (one draw of 4 per test question); a shot is `stem + " " + gold choice text`."""
    train = _raw_lines(data_dir / "openbookqa/fewshot/train.jsonl")
    test = _raw_lines(data_dir / "openbookqa/test.jsonl")
    positions = [[3610, 957, 61, 742], [4769, 286, 687, 806], [2905, 1939, 142, 252]]
    _, items = obqa
    for item, doc, picks in zip(items, test[:3], positions, strict=True):
        shots = []
        for p in picks:
            row = train[p]
            gold = next(c["text"] for c in row["question"]["choices"] if c["label"] == row["answerKey"])
            shots.append(row["question"]["stem"] + " " + gold)
        assert item.prompt == "\n\n".join(shots) + "\n\n" + doc["question"]["stem"]
        assert _continuations(item) == [" " + c["text"] for c in doc["question"]["choices"]]
        assert item.gold == str("ABCD".index(doc["answerKey"]))


def _write_obqa(root: Path, test_lines: list[str]) -> None:
    (root / "openbookqa/fewshot").mkdir(parents=True)
    (root / "openbookqa/test.jsonl").write_text("".join(test_lines), encoding="utf-8")
    row = {"id": "t", "question": {"stem": "s", "choices": [{"text": "x", "label": "A"}]}, "answerKey": "A"}
    (root / "openbookqa/fewshot/train.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")


def test_openbookqa_loader_names_file_line_and_check(tmp_path: Path) -> None:
    good = {"id": "q", "question": {"stem": "s", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]}}
    _write_obqa(
        tmp_path, [json.dumps({**good, "answerKey": "B"}) + "\n", json.dumps({**good, "answerKey": "E"}) + "\n"]
    )
    with pytest.raises(TaskDataError) as e:
        LOADERS["openbookqa"](tmp_path)
    assert str(e.value) == f"{tmp_path}/openbookqa/test.jsonl:2: answerKey 'E' is not one of the labels ['A', 'B']"

    other = tmp_path / "other"
    _write_obqa(other, ["\n", json.dumps(good) + "\n"])
    with pytest.raises(TaskDataError, match=r"openbookqa/test\.jsonl:2: missing field\(s\) answerKey$"):
        LOADERS["openbookqa"](other)


# --- HellaSwag (fixtures in rowanz/hellaswag's raw layout) ------------------------------------------

HELLASWAG_TRAIN_SIZE = 39_905  # the HF train split; the sampler's positions depend on it

VAL_ROWS = [
    # The first row of the real hellaswag_val.jsonl, verbatim.
    {
        "ind": 24,
        "activity_label": "Roof shingle removal",
        "ctx_a": "A man is sitting on a roof.",
        "ctx_b": "he",
        "ctx": "A man is sitting on a roof. he",
        "split": "val",
        "split_type": "indomain",
        "label": 3,
        "endings": [
            "is using wrap to wrap a pair of skis.",
            "is ripping level tiles off.",
            "is holding a rubik's cube.",
            "starts pulling up roofing on a roof.",
        ],
        "source_id": "activitynet~v_-JhWjGDPHMY",
    },
    # WikiHow-style markup, an empty ctx_b.
    {
        "ind": 30,
        "activity_label": "Home and Garden",
        "ctx_a": "[header] How to clean a grill [title] Scrub the grates.  [step] Use a brush.",
        "ctx_b": "",
        "ctx": "[header] How to clean a grill [title] Scrub the grates.  [step] Use a brush.",
        "split": "val",
        "split_type": "zeroshot",
        "label": 0,
        "endings": ["[substeps] Rinse  well. ", " Dry it [title] now", "Wipe [x] clean", "Stop"],
        "source_id": "wikihow~1",
    },
    {
        "ind": 31,
        "activity_label": "Playing guitar",
        "ctx_a": "A man holds a guitar.",
        "ctx_b": "the MAN",
        "ctx": "A man holds a guitar. the MAN",
        "split": "val",
        "split_type": "indomain",
        "label": 2,
        "endings": ["strums it.", "eats it.", "tunes the strings.", "sleeps."],
        "source_id": "activitynet~v_x",
    },
]


def _train_row(i: int) -> dict[str, Any]:
    return {
        "ind": i,
        "activity_label": f"Act {i}",
        "ctx_a": f"Ctx {i}.",
        "ctx_b": "then",
        "ctx": f"Ctx {i}. then",
        "split": "train",
        "split_type": "indomain",
        "label": i % 4,
        "endings": [f"end {i}.{k}" for k in range(4)],
        "source_id": f"s{i}",
    }


def _write_hellaswag(root: Path, val: list[str], train_size: int = 1) -> None:
    (root / "hellaswag/fewshot").mkdir(parents=True)
    (root / "hellaswag/hellaswag_val.jsonl").write_text("".join(val), encoding="utf-8")
    train = "".join(json.dumps(_train_row(i)) + "\n" for i in range(train_size))
    (root / "hellaswag/fewshot/hellaswag_train.jsonl").write_text(train, encoding="utf-8")


@pytest.fixture(scope="module")
def hellaswag(tmp_path_factory: pytest.TempPathFactory) -> tuple[TaskData, list[Item]]:
    root = tmp_path_factory.mktemp("hellaswag-data")
    _write_hellaswag(root, [json.dumps(r) + "\n" for r in VAL_ROWS], HELLASWAG_TRAIN_SIZE)
    task = get_task("hellaswag")
    data = task.load(root)
    return data, task.items(data)


def test_hellaswag_preprocess() -> None:
    assert hellaswag_preprocess("  a [title] b  ") == "a. b"
    assert hellaswag_preprocess("[header] How to x [title] Y.  [step] Z.") == " How to x. Y.  Z."
    assert hellaswag_preprocess("a [x [y] z] b") == "a z] b"
    assert hellaswag_preprocess("a [x\ny] b") == "a [x\ny] b"
    assert hellaswag_preprocess("a    b") == "a  b"


def test_hellaswag_processed_documents(hellaswag: tuple[TaskData, list[Item]]) -> None:
    data, _ = hellaswag
    assert len(data.fewshot_pool) == HELLASWAG_TRAIN_SIZE
    wikihow = data.test[1]
    assert wikihow["query"] == "Home and Garden: How to clean a grill. Scrub the grates.  Use a brush."
    assert wikihow["choices"] == [" Rinse well.", "Dry it. now", "Wipe clean", "Stop"]
    assert (wikihow["label"], wikihow["gold"], wikihow["ind"]) == ("0", 0, 30)
    assert data.test[2]["query"] == "Playing guitar: A man holds a guitar. The man"


def test_hellaswag_first_item(hellaswag: tuple[TaskData, list[Item]]) -> None:
    """Shots at train positions 28883, 7657, 490, 5940 (FEWSHOT.md B.6 doc 0); shot = query + " " +
    gold ending; the evaluated query is "{activity_label}: {ctx_a} {ctx_b.capitalize()}"."""
    _, items = hellaswag
    first = items[0]
    assert first.prompt == (
        "Act 28883: Ctx 28883. Then end 28883.3\n\n"
        "Act 7657: Ctx 7657. Then end 7657.1\n\n"
        "Act 490: Ctx 490. Then end 490.2\n\n"
        "Act 5940: Ctx 5940. Then end 5940.0\n\n"
        "Roof shingle removal: A man is sitting on a roof. He"
    )
    assert _continuations(first) == [
        " is using wrap to wrap a pair of skis.",
        " is ripping level tiles off.",
        " is holding a rubik's cube.",
        " starts pulling up roofing on a roof.",
    ]
    assert first.gold == "3"
    assert first.id == "hellaswag/0"


def test_hellaswag_draws_five_per_document(hellaswag: tuple[TaskData, list[Item]]) -> None:
    """hellaswag.yaml sets `test_split: null` and no fewshot_split, and samplers.py draws
    num_fewshot + 1 when `fewshot_split == test_split` (None == None): 5 positions per document,
    the first 4 kept (a train row never equals a validation row). So doc 1 gets 2288, 5500, 6450,
    23241 and doc 2 1142, 2019, 1038, 22681; FEWSHOT.md B.6's table lists 4 draws per document
    (38156, 2288, 5500, 6450 for doc 1), which lm-eval's own code does not do (checked by running
    lm-eval 0.4.2's ConfigurableTask on these files)."""
    _, items = hellaswag
    assert items[1].prompt == (
        "Act 2288: Ctx 2288. Then end 2288.0\n\n"
        "Act 5500: Ctx 5500. Then end 5500.0\n\n"
        "Act 6450: Ctx 6450. Then end 6450.2\n\n"
        "Act 23241: Ctx 23241. Then end 23241.1\n\n"
        "Home and Garden: How to clean a grill. Scrub the grates.  Use a brush."
    )
    assert _continuations(items[1]) == ["  Rinse well.", " Dry it. now", " Wipe clean", " Stop"]
    assert items[1].gold == "0"
    assert items[2].prompt == (
        "Act 1142: Ctx 1142. Then end 1142.2\n\n"
        "Act 2019: Ctx 2019. Then end 2019.3\n\n"
        "Act 1038: Ctx 1038. Then end 1038.2\n\n"
        "Act 22681: Ctx 22681. Then end 22681.1\n\n"
        "Playing guitar: A man holds a guitar. The man"
    )
    assert items[2].gold == "2"
    assert "Act 38156:" not in items[0].prompt + items[1].prompt  # doc 0's fifth draw


def test_hellaswag_missing_data_fails_up_front(tmp_path: Path) -> None:
    with pytest.raises(TaskDataError) as e:
        get_task("hellaswag").load(tmp_path)
    assert str(e.value).startswith(
        f"task hellaswag: {tmp_path}/hellaswag/hellaswag_val.jsonl not found; run `hyoka data pull hellaswag`"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"endings": None}, r"hellaswag_val\.jsonl:2: missing field\(s\) endings$"),
        ({"label": 7}, r"hellaswag_val\.jsonl:2: field label must index the 4 endings, got 7$"),
        ({"label": ""}, r"hellaswag_val\.jsonl:2: field label must index the 4 endings, got ''$"),
        ({"ind": "x"}, r"hellaswag_val\.jsonl:2: field ind must be an integer, got 'x'$"),
        ({"endings": ["a", 1]}, r"hellaswag_val\.jsonl:2: field endings must be a non-empty list of strings$"),
        ({"ctx_b": 3}, r"hellaswag_val\.jsonl:2: fields ctx_a and ctx_b must be strings$"),
    ],
)
def test_hellaswag_loader_names_file_line_and_check(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    broken = {k: v for k, v in {**VAL_ROWS[2], **change}.items() if v is not None}
    _write_hellaswag(tmp_path, [json.dumps(VAL_ROWS[0]) + "\n", json.dumps(broken) + "\n"])
    with pytest.raises(TaskDataError, match=message):
        LOADERS["hellaswag"](tmp_path)


def test_hellaswag_loader_rejects_broken_json(tmp_path: Path) -> None:
    _write_hellaswag(tmp_path, [json.dumps(VAL_ROWS[0]) + "\n", "{not json\n"])
    with pytest.raises(TaskDataError, match=r"hellaswag_val\.jsonl:2: not valid JSON"):
        LOADERS["hellaswag"](tmp_path)


def test_hellaswag_hf_defaults_for_missing_ctx_parts(tmp_path: Path) -> None:
    """The HF builder reads ctx_a and ctx_b with a default of ""; label becomes a string."""
    row = {k: v for k, v in VAL_ROWS[0].items() if k not in ("ctx_a", "ctx_b")}
    _write_hellaswag(tmp_path, [json.dumps(row) + "\n"])
    (doc,) = LOADERS["hellaswag"](tmp_path).test
    assert (doc["ctx_a"], doc["ctx_b"], doc["label"]) == ("", "", "3")
    assert doc["query"] == "Roof shingle removal:"


# --- MMLU -------------------------------------------------------------------------------------------

MMLU_FIRST_PROMPT = (
    "The following are multiple choice questions (with answers) about abstract algebra.\n"
    "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\n"
    "Statement 1 | If aH is an element of a factor group, then |aH| divides |a|. Statement 2 | If H and K "
    "are subgroups of G then HK is a subgroup of G.\nA. True, True\nB. False, False\nC. True, False\n"
    "D. False, True\nAnswer: B\n\n"
    "Statement 1 | Every element of a group generates a cyclic subgroup of the group. Statement 2 | The "
    "symmetric group S_10 has 10 elements.\nA. True, True\nB. False, False\nC. True, False\n"
    "D. False, True\nAnswer: C\n\n"
    "Statement 1| Every function from a finite set onto itself must be one to one. Statement 2 | Every "
    "subgroup of an abelian group is abelian.\nA. True, True\nB. False, False\nC. True, False\n"
    "D. False, True\nAnswer: A\n\n"
    "Find the characteristic of the ring 2Z.\nA. 0\nB. 3\nC. 12\nD. 30\nAnswer: A\n\n"
    "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\n"
    "A. 0\nB. 4\nC. 2\nD. 6\nAnswer:"
)


@pytest.fixture(scope="module")
def mmlu(data_dir: Path) -> tuple[TaskData, list[Item]]:
    task = get_task("mmlu")
    data = task.load(data_dir)
    return data, task.items(data)


def test_mmlu_order_sizes_and_groups(mmlu: tuple[TaskData, list[Item]]) -> None:
    data, items = mmlu
    assert (len(items), len(data.fewshot_pool)) == (14_042, 285)
    subjects = list(dict.fromkeys(item.extra["group"] for item in items))
    assert subjects == sorted(subjects) and len(subjects) == 57
    assert [i.id for i in items[:2]] == ["abstract_algebra/0", "abstract_algebra/1"]
    assert items[100].id == "anatomy/0" and items[-1].id == "world_religions/170"
    assert items[0].extra == {"group": "abstract_algebra", "category": "stem"}
    counts: dict[str, int] = {}
    for item in items:
        counts[item.extra["category"]] = counts.get(item.extra["category"], 0) + 1
    assert counts == {"stem": 3153, "other": 3107, "social_sciences": 3077, "humanities": 4705}
    assert get_task("mmlu").spec.groups


def test_mmlu_first_item(mmlu: tuple[TaskData, list[Item]]) -> None:
    _, items = mmlu
    first = items[0]
    assert first.prompt == MMLU_FIRST_PROMPT
    assert _continuations(first) == [" A", " B", " C", " D"]
    assert first.gold == "1"


def test_mmlu_keeps_the_dev_crlf_and_writes_subjects_with_spaces(mmlu: tuple[TaskData, list[Item]]) -> None:
    _, items = mmlu
    item = next(i for i in items if i.extra["group"] == "college_mathematics")
    assert item.id == "college_mathematics/0"
    head = "The following are multiple choice questions (with answers) about college mathematics.\nLet V be"
    assert item.prompt.startswith(head)
    third_shot = (
        "\n\nLet A be a real 2x2 matrix. Which of the following statements must be true?\r\n"
        "I. All of the entries of A^2 are nonnegative.\r\nII. The determinant of A^2 is nonnegative.\r\n"
        "III. If A has two distinct eigenvalues, then A^2 has two distinct eigenvalues.\n"
        "A. I only\nB. II only\nC. III only\nD. II and III only\nAnswer: B\n\n"
    )
    assert third_shot in item.prompt
    assert item.prompt.endswith(
        "\n\nLet k be the number of real solutions of the equation e^x + x - 2 = 0 in the interval [0, 1], "
        "and let n be the number of real solutions that are not in [0, 1]. Which of the following is true?\n"
        "A. k = 0 and n = 1\nB. k = 1 and n = 0\nC. k = n = 1\nD. k > 1\nAnswer:"
    )


def test_mmlu_strips_the_question_not_the_choices(mmlu: tuple[TaskData, list[Item]]) -> None:
    _, items = mmlu
    item = next(i for i in items if i.id == "public_relations/104")
    assert item.prompt.endswith(
        "\n\nWhat are major reasons why organizations retain outside public relations counsel?\n"
        "A. They offer flexibility of talents and skills.\n"
        "B. They bring greater credibility to the work. \n"
        "C. They will provide sound ROI on the project or program.\n"
        "D. They can provide more attention and detail to a project that in-house staff.\nAnswer:"
    )


def test_mmlu_loader_names_file_and_record_line(tmp_path: Path) -> None:
    path = tmp_path / "x_test.csv"
    path.write_text('"Q1\nspans two lines",a,b,c,d,A\nQ2,a,b,c,A\n', encoding="utf-8")
    with pytest.raises(TaskDataError) as e:
        mmlu_rows(path, "x")
    assert str(e.value) == f"{path}:3: expected 6 fields (question, A, B, C, D, answer), got 5"
    path.write_text("Q1,a,b,c,d,E\r\n", encoding="utf-8")
    with pytest.raises(TaskDataError) as e:
        mmlu_rows(path, "x")
    assert str(e.value) == f"{path}:1: answer must be one of A, B, C, D, got 'E'"
    path.write_text('"Q1\r\nx",a,b,c,d,D\r\n', encoding="utf-8")
    assert mmlu_rows(path, "x") == [
        {"question": "Q1\r\nx", "subject": "x", "choices": ["a", "b", "c", "d"], "answer": 3, "id": "x/0"}
    ]


def test_mmlu_subjects_are_the_57_files(data_dir: Path) -> None:
    names = sorted(p.name.removesuffix("_test.csv") for p in (data_dir / "mmlu/test").glob("*_test.csv"))
    assert list(MMLU_SUBJECTS) == names
    spec = get_task("mmlu").spec
    assert len(spec.data_files) == 114 and all((data_dir / f).is_file() for f in spec.data_files)


def test_mmlu_score_is_lm_eval_group_aggregate(mmlu: tuple[TaskData, list[Item]]) -> None:
    """lm-eval 0.4.2 evaluator.py: each sub-group is the size-weighted mean of its subjects, and
    `mmlu` the size-weighted mean of its 4 sub-groups (aggregate_subtask_metrics,
    weight_by_size=True) -- the item-weighted mean that Task.aggregate computes."""
    _, items = mmlu
    rnd = random.Random(0)
    records = [{"group": i.extra["group"], "score": float(rnd.random() < 0.6)} for i in items]
    by_subject: dict[str, list[float]] = {}
    for r in records:
        by_subject.setdefault(str(r["group"]), []).append(float(r["score"]))
    categories: dict[str, list[tuple[float, int]]] = {}
    for subject, scores in by_subject.items():
        categories.setdefault(MMLU_SUBJECTS[subject], []).append((sum(scores) / len(scores), len(scores)))
    pooled = [(sum(m * n for m, n in v) / sum(n for _, n in v), sum(n for _, n in v)) for v in categories.values()]
    lm_eval_mmlu = sum(m * n for m, n in pooled) / sum(n for _, n in pooled)
    result = asyncio.run(get_task("mmlu").aggregate(records, Scorers()))
    assert math.isclose(result.score, lm_eval_mmlu, rel_tol=0, abs_tol=1e-12)
    assert result.groups["abstract_algebra"] == sum(by_subject["abstract_algebra"]) / 100


# --- shared pieces ------------------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["a\n\n", "a\n", "a", "\n", "a\r\n\r\n", "a\rb\r", "x\n\ny"])
def test_jinja_literal_matches_jinja(template: str) -> None:
    jinja2 = pytest.importorskip("jinja2")
    assert jinja_literal(template) == jinja2.Environment().from_string(template).render()


def test_acc_is_argmax_first_on_ties(obqa: tuple[TaskData, list[Item]]) -> None:
    _, items = obqa
    outputs = [
        ItemOutput(logprobs=(-3.0, -1.0, -2.0, -4.0)),  # picks 1 = gold
        ItemOutput(logprobs=(-1.0, -1.0, -1.0, -1.0)),  # tie: first
        ItemOutput(logprobs=(-9.0, -9.0, -9.0, -0.5)),
    ]
    scored = asyncio.run(get_task("openbookqa").score(items, outputs, Scorers()))
    assert [(s.extracted, s.score) for s in scored] == [
        ("1", 1.0),
        ("0", float(items[1].gold == "0")),
        ("3", float(items[2].gold == "3")),
    ]


@pytest.mark.parametrize(
    ("task", "builder", "request_type", "procedure", "num"),
    [
        ("openbookqa", "lm_eval_openbookqa", "loglikelihood", "lm_eval_default", 4),
        ("hellaswag", "lm_eval_hellaswag", "loglikelihood", "lm_eval_default", 4),
        ("mmlu", "lm_eval_mmlu", "loglikelihood", "lm_eval_first_n", 5),
    ],
)
def test_definitions(task: str, builder: str, request_type: str, procedure: str, num: int) -> None:
    spec = get_task(task).spec
    assert (spec.benchmark_column, spec.builder, spec.request.value, spec.metric.name) == (
        task,
        builder,
        request_type,
        "acc",
    )
    assert (spec.fewshot.procedure, spec.fewshot.num, spec.fewshot.seed) == (procedure, num, 1234)
    assert (spec.prompt.target_delimiter, spec.prompt.fewshot_delimiter) == (" ", "\n\n")
    assert spec.generation is None

"""lm-evaluation-harness 0.4.2 generation tasks: TriviaQA, SQuAD2, GSM8K, BBH (FEWSHOT.md B).

What the harness does (EleutherAI/lm-evaluation-harness v0.4.2 = 4600d6bf, vendored unchanged in
swallow-evaluation v202407 as `lm-evaluation-harness-en/`):

- `ConfigurableTask.fewshot_context`: description + the sampler's shots (text + target_delimiter +
  target, joined and followed by fewshot_delimiter) + the document's text.
- The default sampler (`api/samplers.py`) draws `num_fewshot + 1` documents whenever the task's
  `fewshot_split` equals its `test_split`, and both default to None: TriviaQA (a YAML without
  either key) and SQuAD2 (the `SQuAD2` class, built from an empty config) therefore draw 5 and keep
  the first 4 (no training document equals a validation document), while GSM8K
  (`fewshot_split: train`, `test_split: test`) draws 4.
- `description`, `doc_to_text` and `doc_to_target` strings are Jinja templates; Jinja drops one
  trailing newline of a template (not of the values put into it).
- Generation stops at the task's `until` strings (plus the model's EOS, which backends stop at
  anyway) with at most `max_gen_toks` new tokens (HFLM's default: 256).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hyoka.orchestrator.backends.base import LoglikelihoodRequest
from hyoka.orchestrator.tasks.builders import (
    BuildContext,
    builder,
    first,
    generation_request,
    lm_eval_default_shots,
    prompt_option,
)
from hyoka.orchestrator.tasks.items import Item
from hyoka.orchestrator.tasks.loaders import Doc, TaskData, TaskDataError, loader, read_json, read_json_lines, require
from hyoka.orchestrator.tasks.prompts import Shot, jinja_literal, lm_eval_fewshot_context
from hyoka.orchestrator.tasks.spec import TaskSpec

# --- shared ---------------------------------------------------------------------------------


def render(spec: TaskSpec, template: str, doc: Doc) -> str:
    """A definition's template filled with the document's fields (`{answer[aliases][0]}` indexes
    nested fields; values are inserted as they are, braces inside them stay literal)."""
    try:
        return template.format_map(doc)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise TaskDataError(f"task {spec.name}: document {doc.get('id')} does not fit {template!r} ({e!r})") from e


def lm_eval_sampled_items(
    spec: TaskSpec,
    data: TaskData,
    limit: int | None,
    *,
    target: Callable[[Doc], str],
    make_item: Callable[[int, Doc, str], Item],
) -> list[Item]:
    """Items whose shots the default sampler draws, one task-wide Random(seed), in document order.

    `target(doc)` is a shot's `doc_to_target`; `make_item(index, doc, context)` builds the item.
    """
    p = spec.prompt
    items = []
    for i, doc, shot_docs in lm_eval_default_shots(spec, data, limit):
        shots = [Shot(render(spec, p.input_template, s), target(s)) for s in shot_docs]
        context = lm_eval_fewshot_context(
            shots,
            target_delimiter=p.target_delimiter,
            fewshot_delimiter=p.fewshot_delimiter,
            description=p.description,
        ) + render(spec, p.input_template, doc)
        items.append(make_item(i, doc, context))
    return items


# --- TriviaQA (lm-eval 0.4.2 `tasks/triviaqa/default.yaml`, HF `trivia_qa` rc.nocontext) ------

_TRIVIAQA_COLUMNS = ("question", "question_id", "answer")


def read_triviaqa_parquet(path: Path) -> list[Doc]:
    """Rows of a Hugging Face `trivia_qa` Parquet file: question, question_id, answer{aliases, ...}
    as the Hub serves them (the HF builder already stripped the strings)."""
    try:
        import pyarrow.parquet as pq  # lazily: only TriviaQA reads Parquet
    except ImportError as e:  # pragma: no cover - pyarrow is a dependency
        raise TaskDataError(f"{path}: reading Parquet needs pyarrow ({e})") from e
    try:
        parquet = pq.ParquetFile(require(path))
        names = parquet.schema_arrow.names
        missing = [c for c in _TRIVIAQA_COLUMNS if c not in names]
        if missing:
            raise TaskDataError(f"{path}: missing column(s) {', '.join(missing)}")
        rows: list[Doc] = parquet.read(columns=list(_TRIVIAQA_COLUMNS)).to_pylist()
    except TaskDataError:
        raise
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ... for unreadable files
        raise TaskDataError(f"{path}: cannot read as Parquet ({type(e).__name__}: {e})") from e
    for row_no, row in enumerate(rows):
        answer = row["answer"]
        if not isinstance(row["question"], str) or not isinstance(row["question_id"], str):
            raise TaskDataError(f"{path}: row {row_no}: question and question_id must be strings")
        if not isinstance(answer, dict) or not isinstance(answer.get("aliases"), list):
            raise TaskDataError(f"{path}: row {row_no}: answer.aliases missing (expected a struct with a list)")
        if not answer["aliases"]:
            raise TaskDataError(f"{path}: row {row_no}: answer.aliases is empty (the shot target is its first alias)")
        row["id"] = row["question_id"]
    return rows


@loader("triviaqa")
def load_triviaqa(data_dir: Path) -> TaskData:
    """Evaluated on the validation split (17,944); shots from train (138,384)."""
    return TaskData(
        test=read_triviaqa_parquet(data_dir / "triviaqa/validation.parquet"),
        fewshot_pool=read_triviaqa_parquet(data_dir / "triviaqa/fewshot/train.parquet"),
    )


@builder("lm_eval_triviaqa")
def build_triviaqa(spec: TaskSpec, data: TaskData, limit: int | None, context: BuildContext) -> list[Item]:
    """`doc_to_target: "{{answer.aliases}}"` renders the list, which lm-eval parses back: a shot's
    target is the first alias, and an answer matching any alias scores."""

    def make_item(i: int, doc: Doc, prompt: str) -> Item:
        aliases = tuple(doc["answer"]["aliases"])
        return Item(i, doc["id"], prompt, aliases[0], generation=generation_request(spec, prompt, i), golds=aliases)

    return lm_eval_sampled_items(
        spec, data, limit, target=lambda d: render(spec, spec.prompt.output_template, d), make_item=make_item
    )


# --- SQuAD2 (lm-eval 0.4.2 `tasks/squadv2/task.py`, class SQuAD2; HF `squad_v2`) ----------------

SQUAD2_DEV_OFFICIAL = "squad2/dev-v2.0.json"
SQUAD2_DEV_DERIVED = "squad2/dev-v2.0.explorer-derived.json"
SQUAD2_TRAIN = "squad2/fewshot/train-v2.0.json"


def _squad_field(path: Path, where: str, obj: Any, name: str, kind: type) -> Any:
    if not isinstance(obj, dict) or name not in obj:
        raise TaskDataError(f"{path}: {where}: missing field {name!r}")
    value = obj[name]
    if not isinstance(value, kind):
        raise TaskDataError(f"{path}: {where}.{name}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def read_squad_json(path: Path) -> list[Doc]:
    """The official SQuAD layout flattened as the HF `squad_v2` builder does (since datasets 1.9,
    nothing stripped): one row per question in file order, {id, title, context, question,
    answers: [text, ...]} (`answer_start` is not needed: the prompt and the metric use the texts)."""
    root = read_json(path)
    articles = _squad_field(path, "(top level)", root, "data", list)
    rows: list[Doc] = []
    for a, article in enumerate(articles):
        where = f"data[{a}]"
        title = article.get("title", "") if isinstance(article, dict) else None
        if not isinstance(title, str):
            raise TaskDataError(f"{path}: {where}.title: expected a string")
        for p, paragraph in enumerate(_squad_field(path, where, article, "paragraphs", list)):
            where_p = f"{where}.paragraphs[{p}]"
            context = _squad_field(path, where_p, paragraph, "context", str)
            for q, qa in enumerate(_squad_field(path, where_p, paragraph, "qas", list)):
                where_q = f"{where_p}.qas[{q}]"
                texts = [
                    _squad_field(path, f"{where_q}.answers[{k}]", ans, "text", str)
                    for k, ans in enumerate(_squad_field(path, where_q, qa, "answers", list))
                ]
                rows.append(
                    {
                        "id": _squad_field(path, where_q, qa, "id", str),
                        "title": title,
                        "context": context,
                        "question": _squad_field(path, where_q, qa, "question", str),
                        "answers": texts,
                    }
                )
    return rows


@loader("squad2")
def load_squad2(data_dir: Path) -> TaskData:
    """Evaluated on dev (11,873): the official `dev-v2.0.json` when present, else the
    explorer-derived copy (same rows and order, no `answer_start`); each test document names the
    file in `data_file`. Shots from the official train file (130,319)."""
    official, derived = data_dir / SQUAD2_DEV_OFFICIAL, data_dir / SQUAD2_DEV_DERIVED
    if official.is_file():
        dev_rel = SQUAD2_DEV_OFFICIAL
    elif derived.is_file():
        dev_rel = SQUAD2_DEV_DERIVED
    else:
        raise TaskDataError(f"{official}: file not found (nor {derived}); run `hyoka data pull squad2`")
    test = read_squad_json(data_dir / dev_rel)
    for doc in test:
        doc["data_file"] = dev_rel
    return TaskData(test=test, fewshot_pool=read_squad_json(data_dir / SQUAD2_TRAIN))


@builder("lm_eval_squad2")
def build_squad2(spec: TaskSpec, data: TaskData, limit: int | None, context: BuildContext) -> list[Item]:
    """`doc_to_target` = " " + (first answer or "unanswerable"), so a shot reads `Answer:` + two
    spaces; each item asks for a greedy answer until "\\n" and for log P(" unanswerable"). The
    `exact` score compares the answer with every answer text ("" when there is none)."""
    p = spec.prompt
    no_answer = prompt_option(spec, "no_answer", str, "unanswerable")

    def target(doc: Doc) -> str:
        return render(spec, p.output_template, {"answer": doc["answers"][0] if doc["answers"] else no_answer})

    continuation = render(spec, p.output_template, {"answer": no_answer})

    def make_item(i: int, doc: Doc, prompt: str) -> Item:
        answers = tuple(doc["answers"])
        return Item(
            i,
            doc["id"],
            prompt,
            answers[0] if answers else "",
            generation=generation_request(spec, prompt, i),
            loglikelihood=(LoglikelihoodRequest(prompt, continuation),),
            golds=answers,
            extra={"data_file": doc.get("data_file", "")},
        )

    return lm_eval_sampled_items(spec, data, limit, target=target, make_item=make_item)


# --- GSM8K (lm-eval 0.4.2 `tasks/gsm8k/gsm8k.yaml`, HF `gsm8k` main) ----------------------------


def _gsm8k_rows(path: Path, split: str) -> list[Doc]:
    rows = read_json_lines(path, ("question", "answer"))
    for i, row in enumerate(rows):
        row["id"] = f"gsm8k/{split}/{i}"
    return rows


@loader("gsm8k")
def load_gsm8k(data_dir: Path) -> TaskData:
    """Test (1,319) and train (7,473) as openai/grade-school-math ships them (the HF rows)."""
    return TaskData(
        test=_gsm8k_rows(data_dir / "gsm8k/test.jsonl", "test"),
        fewshot_pool=_gsm8k_rows(data_dir / "gsm8k/fewshot/train.jsonl", "train"),
    )


@builder("lm_eval_gsm8k")
def build_gsm8k(spec: TaskSpec, data: TaskData, limit: int | None, context: BuildContext) -> list[Item]:
    """Shots are whole train answers (`<<...>>` annotations and `#### n` included); the reference is
    the whole test answer, which the strict-match metric reduces to its `#### n` number."""

    def make_item(i: int, doc: Doc, prompt: str) -> Item:
        return Item(i, doc["id"], prompt, doc["answer"], generation=generation_request(spec, prompt, i))

    return lm_eval_sampled_items(
        spec, data, limit, target=lambda d: render(spec, spec.prompt.output_template, d), make_item=make_item
    )


# --- BBH (lm-eval 0.4.2 `tasks/bbh/cot_fewshot/*.yaml`, HF `lukaemon/bbh`) -----------------------

#: The 27 subtasks, in the order items are rendered (alphabetical, as lm-eval prints them).
BBH_TASKS = (
    "boolean_expressions",
    "causal_judgement",
    "date_understanding",
    "disambiguation_qa",
    "dyck_languages",
    "formal_fallacies",
    "geometric_shapes",
    "hyperbaton",
    "logical_deduction_five_objects",
    "logical_deduction_seven_objects",
    "logical_deduction_three_objects",
    "movie_recommendation",
    "multistep_arithmetic_two",
    "navigate",
    "object_counting",
    "penguins_in_a_table",
    "reasoning_about_colored_objects",
    "ruin_names",
    "salient_translation_error_detection",
    "snarks",
    "sports_understanding",
    "temporal_sequences",
    "tracking_shuffled_objects_five_objects",
    "tracking_shuffled_objects_seven_objects",
    "tracking_shuffled_objects_three_objects",
    "web_of_lies",
    "word_sorting",
)


def bbh_cot_prompt(path: Path) -> tuple[str, str]:
    """(description, exemplars) of a BIG-Bench-Hard `cot-prompts/<task>.txt`, as the v0.4.2 YAMLs
    hold them: the text after the line `-----`, cut at blank lines; the paragraphs before the
    first `Q:` exemplar + "\\n\\n" are the description (two paragraphs for snarks, whose YAML was
    edited by hand; one elsewhere, as `_generate_configs.py` made them), the exemplars are joined
    by blank lines."""
    try:
        text = require(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise TaskDataError(f"{path}: cannot read ({e})") from e
    if "\n-----\n" not in text:
        raise TaskDataError(f"{path}: no '-----' line before the prompt")
    pieces = text.split("\n-----\n")[-1].split("\n\n")
    first_q = next((k for k, piece in enumerate(pieces) if piece.startswith("Q: ")), None)
    if not first_q:
        raise TaskDataError(f"{path}: expected description paragraph(s), then exemplars starting 'Q: '")
    return "\n\n".join(pieces[:first_q]) + "\n\n", "\n\n".join(pieces[first_q:])


@loader("bbh")
def load_bbh(data_dir: Path) -> TaskData:
    """Test documents of the 27 tasks (subtask by subtask, file order within each); the few-shot
    "pool" is one record per subtask with its description and CoT exemplars."""
    test: list[Doc] = []
    prompts: list[Doc] = []
    for task in BBH_TASKS:
        path = data_dir / f"bbh/{task}.json"
        examples = read_json(path)
        if not isinstance(examples, dict) or not isinstance(examples.get("examples"), list):
            raise TaskDataError(f"{path}: expected an object with an 'examples' list")
        for i, ex in enumerate(examples["examples"]):
            if (
                not isinstance(ex, dict)
                or not isinstance(ex.get("input"), str)
                or not isinstance(ex.get("target"), str)
            ):
                raise TaskDataError(f"{path}: examples[{i}]: expected string fields 'input' and 'target'")
            test.append({"id": f"{task}/{i}", "task": task, "input": ex["input"], "target": ex["target"]})
        description, exemplars = bbh_cot_prompt(data_dir / f"bbh/cot-prompts/{task}.txt")
        prompts.append({"id": task, "task": task, "description": description, "exemplars": exemplars})
    return TaskData(test=test, fewshot_pool=prompts)


@builder("lm_eval_bbh_cot")
def build_bbh(spec: TaskSpec, data: TaskData, limit: int | None, context: BuildContext) -> list[Item]:
    """No sampler (the template's num_fewshot 0 wins over the CLI's 3): the subtask's description,
    rendered by Jinja (its closing "\\n\\n" becomes "\\n"), then `doc_to_text`: the three exemplars,
    a blank line and `Q: {input}\\nA: Let's think step by step.` (Jinja drops the YAML's final
    newline; the definition's input_template holds the rendered form)."""
    p = spec.prompt
    by_task = {d["task"]: d for d in data.fewshot_pool}
    items = []
    for i, doc in enumerate(first(data.test, limit)):
        cot = by_task.get(doc["task"])
        if cot is None:
            raise TaskDataError(f"task {spec.name}: no CoT prompt for subtask {doc['task']}")
        prompt = jinja_literal(cot["description"]) + render(spec, p.input_template, {**cot, **doc})
        items.append(
            Item(
                i,
                doc["id"],
                prompt,
                doc["target"],
                generation=generation_request(spec, prompt, i),
                extra={"group": doc["task"]},
            )
        )
    return items

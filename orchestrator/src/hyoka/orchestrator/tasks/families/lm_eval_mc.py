"""lm-evaluation-harness 0.4.2 multiple-choice tasks scored by log-likelihood: XWinograd-en,
OpenBookQA, HellaSwag, MMLU (FEWSHOT.md B).

What lm-eval 0.4.2 does for these (`lm_eval/api/task.py` `ConfigurableTask`, `api/samplers.py`,
as vendored unchanged in swallow-evaluation v202407 `lm-evaluation-harness-en/`):

- The context is `description` + the shots, each `doc_to_text(shot) + target_delimiter +
  target`, joined by `fewshot_delimiter` and followed by one more, + `doc_to_text(doc)`.
  A shot's target is the text of its gold choice when `doc_to_target` gives an index.
- One log-likelihood request per choice: (context, target_delimiter + choice); `acc` is the
  argmax (first on ties) against the gold index.
- Strings that are Jinja templates (`description`, `doc_to_text`/`doc_to_target` unless they
  name a document field) lose one trailing newline of their literal text (Jinja's default
  `keep_trailing_newline=False`); values inserted into a template stay as they are.
- The sampler draws `num_fewshot + 1` documents when `config.fewshot_split == config.test_split`,
  which also holds when both are unset (None == None: HellaSwag), then drops any drawn document
  equal (dict equality) to the evaluated one and keeps the first `num_fewshot`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hyoka.orchestrator.backends.base import LoglikelihoodRequest
from hyoka.orchestrator.tasks.builders import BuildContext, builder, first, lm_eval_default_shots, prompt_option
from hyoka.orchestrator.tasks.fewshot import without_id
from hyoka.orchestrator.tasks.items import Item
from hyoka.orchestrator.tasks.loaders import Doc, TaskData, TaskDataError, iter_json_lines, loader, require
from hyoka.orchestrator.tasks.prompts import Shot, jinja_literal, lm_eval_fewshot_context
from hyoka.orchestrator.tasks.spec import TaskSpec

# --- XWinograd en (lm-eval 0.4.2 `xwinograd_en`, HF Muennighoff/xwinograd records) -------------


# The tokens are PTB-style: quotes became `` and ''.
_PTB_SPELLINGS = {"``": ('"', "``"), "''": ('"', "''")}


def _token_offsets(sentence: str, tokens: list[str]) -> list[tuple[int, int]] | None:
    """Character span of each token, found left to right; None if a token is not in the text."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for tok in tokens:
        found = [
            (start, start + len(s)) for s in _PTB_SPELLINGS.get(tok, (tok,)) if (start := sentence.find(s, pos)) >= 0
        ]
        if not found:
            return None
        span = min(found)
        spans.append(span)
        pos = span[1]
    return spans


def xwinograd_record(fields: list[str], where: str) -> Doc:
    """One dataset.tsv row -> {sentence with "_", option1, option2, answer "1"/"2"}.

    The pronoun's token span is replaced by "_" in the original sentence (tokens aligned to
    characters left to right); options are the two candidates in file order.
    """
    try:
        sentence = fields[3]
        tokens = json.loads(fields[4])
        pronoun_text, (p_start, p_end), _pronoun_tokens = json.loads(fields[5])
        candidates = json.loads(fields[6])
    except (IndexError, ValueError, TypeError) as e:
        raise TaskDataError(f"{where}: malformed row ({e})") from e
    if len(candidates) != 2 or sum(bool(c[3]) for c in candidates) != 1:
        raise TaskDataError(f"{where}: expected two candidates, exactly one correct")
    spans = _token_offsets(sentence, tokens)
    if spans is not None and 0 <= p_start < p_end <= len(spans):
        start, end = spans[p_start][0], spans[p_end - 1][1]
    else:  # tokens do not align with the text: fall back to the pronoun's first occurrence
        start = sentence.find(pronoun_text)
        if start < 0:
            raise TaskDataError(f"{where}: pronoun {pronoun_text!r} not found in the sentence")
        end = start + len(pronoun_text)
    return {
        "sentence": sentence[:start] + "_" + sentence[end:],
        "option1": candidates[0][0],
        "option2": candidates[1][0],
        "answer": "1" if candidates[0][3] else "2",
    }


@loader("xwinograd_en")
def load_xwinograd_en(data_dir: Path) -> TaskData:
    path = require(data_dir / "xwinograd/dataset.tsv")
    docs: list[Doc] = []
    try:
        with path.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                fields = line.rstrip("\n").split("\t")
                if fields[0] != "en":
                    continue
                doc = xwinograd_record(fields, f"{path}:{line_no}")
                doc["id"] = f"xwino_en/{len(docs)}"
                docs.append(doc)
    except (OSError, UnicodeDecodeError) as e:
        raise TaskDataError(f"{path}: cannot read ({e})") from e
    if not docs:
        raise TaskDataError(f"{path}: no English ('en') rows")
    # No train or validation split: lm-eval draws the shots from the evaluated split itself.
    return TaskData(test=docs, fewshot_pool=docs)


def _winograd_choices(doc: Doc) -> list[str]:
    cut = doc["sentence"].index("_")
    return [doc["sentence"][:cut] + doc["option1"], doc["sentence"][:cut] + doc["option2"]]


def _winograd_target(doc: Doc) -> str:
    return str(doc["sentence"][doc["sentence"].index("_") + 1 :].strip())


def _winograd_gold(doc: Doc) -> int:
    return {"1": 0, "2": 1}[doc["answer"]]


@builder("lm_eval_xwinograd")
def build_xwinograd(spec: TaskSpec, data: TaskData, limit: int | None, context: BuildContext) -> list[Item]:
    """lm-eval 0.4.2 xwinograd: choices are the sentence up to "_" with each option; the shared
    continuation is target_delimiter + the text after "_" (stripped)."""
    p = spec.prompt
    items = []
    for i, doc, shot_docs in lm_eval_default_shots(spec, data, limit, same=_same_row):
        shots = [Shot(_winograd_choices(s)[_winograd_gold(s)], _winograd_target(s)) for s in shot_docs]
        ctx = lm_eval_fewshot_context(shots, target_delimiter=p.target_delimiter, fewshot_delimiter=p.fewshot_delimiter)
        continuation = p.target_delimiter + _winograd_target(doc)
        requests = tuple(LoglikelihoodRequest(ctx + choice, continuation) for choice in _winograd_choices(doc))
        items.append(Item(i, doc["id"], ctx, str(_winograd_gold(doc)), loglikelihood=requests))
    return items


# --- shared by OpenBookQA, HellaSwag and MMLU ------------------------------------------------


def multiple_choice_item(
    spec: TaskSpec,
    index: int,
    item_id: str,
    *,
    description: str,
    shots: Sequence[Shot],
    query: str,
    choices: Sequence[str],
    gold: int,
    extra: dict[str, Any] | None = None,
) -> Item:
    """lm-eval 0.4.2 `multiple_choice` (single input): one shared context, the continuation of
    choice i is target_delimiter + choice i; the gold is the choice index."""
    p = spec.prompt
    context = (
        lm_eval_fewshot_context(
            shots, target_delimiter=p.target_delimiter, fewshot_delimiter=p.fewshot_delimiter, description=description
        )
        + query
    )
    requests = tuple(LoglikelihoodRequest(context, p.target_delimiter + choice) for choice in choices)
    return Item(index, item_id, context, str(gold), loglikelihood=requests, extra=extra or {})


def _str_field(row: Doc, name: str, where: str) -> str:
    value = row[name]
    if not isinstance(value, str):
        raise TaskDataError(f"{where}: field {name} must be a string, got {type(value).__name__}")
    return value


def _same_row(a: Doc, b: Doc) -> bool:
    """lm-eval's dict equality of two rows (our loaders add an `id` the upstream row lacks)."""
    return without_id(a) == without_id(b)


# --- OpenBookQA (lm-eval 0.4.2 `openbookqa`, HF `openbookqa` `main`) ----------------------------

_OBQA_FIELDS = ("id", "question", "answerKey")


def openbookqa_record(row: Doc, where: str) -> Doc:
    """One AI2 `Data/Main` row -> the HF `openbookqa` `main` row lm-eval sees: {id, question_stem,
    choices: {text: [...], label: [...]}, answerKey} (the HF builder renames `question.stem` and
    flattens the choice list, in file order)."""
    question = row["question"]
    if not isinstance(question, dict) or not isinstance(question.get("stem"), str):
        raise TaskDataError(f"{where}: question must be an object with a string stem")
    choices = question.get("choices")
    if (
        not isinstance(choices, list)
        or not choices
        or not all(
            isinstance(c, dict) and isinstance(c.get("text"), str) and isinstance(c.get("label"), str) for c in choices
        )
    ):
        raise TaskDataError(f"{where}: question.choices must be a non-empty list of {{text, label}} strings")
    doc: Doc = {
        "id": _str_field(row, "id", where),
        "question_stem": question["stem"],
        "choices": {"text": [c["text"] for c in choices], "label": [c["label"] for c in choices]},
        "answerKey": _str_field(row, "answerKey", where),
    }
    # doc_to_target: "{{choices.label.index(answerKey.lstrip())}}"
    if doc["answerKey"].lstrip() not in doc["choices"]["label"]:
        raise TaskDataError(
            f"{where}: answerKey {doc['answerKey']!r} is not one of the labels {doc['choices']['label']}"
        )
    return doc


def _openbookqa_split(path: Path) -> list[Doc]:
    return [openbookqa_record(row, where) for where, row in iter_json_lines(path, _OBQA_FIELDS)]


@loader("openbookqa")
def load_openbookqa(data_dir: Path) -> TaskData:
    """The 500 `main` test questions; the shots come from the 4,957 train questions (the task names
    no fewshot_split, so lm-eval falls back to its training split)."""
    return TaskData(
        test=_openbookqa_split(data_dir / "openbookqa/test.jsonl"),
        fewshot_pool=_openbookqa_split(data_dir / "openbookqa/fewshot/train.jsonl"),
    )


def _openbookqa_gold(doc: Doc) -> int:
    labels: list[str] = doc["choices"]["label"]
    return labels.index(doc["answerKey"].lstrip())


@builder("lm_eval_openbookqa")
def build_openbookqa(spec: TaskSpec, data: TaskData, limit: int | None, context: BuildContext) -> list[Item]:
    """doc_to_text `question_stem` (a field, so no template), doc_to_choice `choices.text`,
    doc_to_target the gold label's position. Shots: the default sampler over the train split,
    num_fewshot drawn (fewshot_split None != test_split "test"); the HF rows carry their id, so a
    drawn row equals the evaluated one only if it is the same question."""
    items = []
    for i, doc, shot_docs in lm_eval_default_shots(spec, data, limit):
        shots = [Shot(s["question_stem"], s["choices"]["text"][_openbookqa_gold(s)]) for s in shot_docs]
        items.append(
            multiple_choice_item(
                spec,
                i,
                doc["id"],
                description=jinja_literal(spec.prompt.description),
                shots=shots,
                query=doc["question_stem"],
                choices=doc["choices"]["text"],
                gold=_openbookqa_gold(doc),
            )
        )
    return items


# --- HellaSwag (lm-eval 0.4.2 `hellaswag`, HF `hellaswag` = rowanz/hellaswag jsonl) ---------------

# Fields the HF builder indexes directly (ctx_a, ctx_b, endings and label have defaults there;
# lm-eval needs endings and label, so they are required here).
_HELLASWAG_FIELDS = ("ind", "activity_label", "ctx", "source_id", "split", "split_type", "endings", "label")
_BRACKETED = re.compile(r"\[.*?\]")


def hellaswag_preprocess(text: str) -> str:
    """lm-eval 0.4.2 `tasks/hellaswag/utils.py` `preprocess`: strip; " [title]" -> ". "; drop
    every "[...]" (WikiHow markup, shortest match, not across lines); then one pass of
    replacing double spaces by single ones (so three spaces become two)."""
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = _BRACKETED.sub("", text)
    return text.replace("  ", " ")


def hellaswag_record(row: Doc, where: str) -> Doc:
    """One rowanz/hellaswag row -> the HF `hellaswag` row (ind as int, ctx_a/ctx_b default "",
    label as a string) plus lm-eval's `process_docs` fields: query = preprocess(activity_label +
    ": " + ctx_a + " " + ctx_b.capitalize()), choices = preprocessed endings, gold = int(label)."""
    try:
        ind = int(row["ind"])
    except (TypeError, ValueError) as e:
        raise TaskDataError(f"{where}: field ind must be an integer, got {row['ind']!r}") from e
    for name in ("activity_label", "ctx", "source_id", "split", "split_type"):
        _str_field(row, name, where)
    ctx_a, ctx_b = row.get("ctx_a", ""), row.get("ctx_b", "")
    if not isinstance(ctx_a, str) or not isinstance(ctx_b, str):
        raise TaskDataError(f"{where}: fields ctx_a and ctx_b must be strings")
    endings = row["endings"]
    if not isinstance(endings, list) or not endings or not all(isinstance(e, str) for e in endings):
        raise TaskDataError(f"{where}: field endings must be a non-empty list of strings")
    label = str(row["label"])
    if not label.isdigit() or int(label) >= len(endings):
        raise TaskDataError(f"{where}: field label must index the {len(endings)} endings, got {row['label']!r}")
    doc: Doc = {
        "ind": ind,
        "activity_label": row["activity_label"],
        "ctx_a": ctx_a,
        "ctx_b": ctx_b,
        "ctx": row["ctx"],
        "endings": endings,
        "source_id": row["source_id"],
        "split": row["split"],
        "split_type": row["split_type"],
        "label": label,
    }
    doc["query"] = hellaswag_preprocess(doc["activity_label"] + ": " + ctx_a + " " + ctx_b.capitalize())
    doc["choices"] = [hellaswag_preprocess(e) for e in endings]
    doc["gold"] = int(label)
    return doc


def _hellaswag_split(path: Path) -> list[Doc]:
    docs: list[Doc] = []
    for where, row in iter_json_lines(path, _HELLASWAG_FIELDS):
        doc = hellaswag_record(row, where)
        doc["id"] = f"hellaswag/{len(docs)}"
        docs.append(doc)
    if not docs:
        raise TaskDataError(f"{path}: no rows")
    return docs


@loader("hellaswag")
def load_hellaswag(data_dir: Path) -> TaskData:
    """The 10,042 validation rows (no test split in the task), the 39,905 train rows as the shot
    pool (fallback to the training split), both after `process_docs`."""
    return TaskData(
        test=_hellaswag_split(data_dir / "hellaswag/hellaswag_val.jsonl"),
        fewshot_pool=_hellaswag_split(data_dir / "hellaswag/fewshot/hellaswag_train.jsonl"),
    )


@builder("lm_eval_hellaswag")
def build_hellaswag(spec: TaskSpec, data: TaskData, limit: int | None, context: BuildContext) -> list[Item]:
    """doc_to_text "{{query}}", doc_to_choice `choices`, doc_to_target "{{label}}" (a digit, so the
    index of the gold ending). The sampler draws num_fewshot + 1 per document (the task sets
    neither test_split nor fewshot_split, and lm-eval compares the two) and keeps the first
    num_fewshot that differ from the evaluated document (a train row never equals a validation
    row: `split` differs)."""
    items = []
    for i, doc, shot_docs in lm_eval_default_shots(spec, data, limit, same=_same_row):
        shots = [Shot(s["query"], s["choices"][s["gold"]]) for s in shot_docs]
        items.append(
            multiple_choice_item(
                spec,
                i,
                doc["id"],
                description=jinja_literal(spec.prompt.description),
                shots=shots,
                query=doc["query"],
                choices=doc["choices"],
                gold=doc["gold"],
            )
        )
    return items


# --- MMLU (lm-eval 0.4.2 group `mmlu`: 57 `mmlu_<subject>` tasks on `hails/mmlu_no_train`) --------

#: Subject -> the sub-group of `mmlu` its task belongs to (`group: mmlu_<category>` in
#: lm_eval/tasks/mmlu/default/mmlu_<subject>.yaml, v0.4.2), in subject order.
MMLU_SUBJECTS: dict[str, str] = {
    "abstract_algebra": "stem",
    "anatomy": "stem",
    "astronomy": "stem",
    "business_ethics": "other",
    "clinical_knowledge": "other",
    "college_biology": "stem",
    "college_chemistry": "stem",
    "college_computer_science": "stem",
    "college_mathematics": "stem",
    "college_medicine": "other",
    "college_physics": "stem",
    "computer_security": "stem",
    "conceptual_physics": "stem",
    "econometrics": "social_sciences",
    "electrical_engineering": "stem",
    "elementary_mathematics": "stem",
    "formal_logic": "humanities",
    "global_facts": "other",
    "high_school_biology": "stem",
    "high_school_chemistry": "stem",
    "high_school_computer_science": "stem",
    "high_school_european_history": "humanities",
    "high_school_geography": "social_sciences",
    "high_school_government_and_politics": "social_sciences",
    "high_school_macroeconomics": "social_sciences",
    "high_school_mathematics": "stem",
    "high_school_microeconomics": "social_sciences",
    "high_school_physics": "stem",
    "high_school_psychology": "social_sciences",
    "high_school_statistics": "stem",
    "high_school_us_history": "humanities",
    "high_school_world_history": "humanities",
    "human_aging": "other",
    "human_sexuality": "social_sciences",
    "international_law": "humanities",
    "jurisprudence": "humanities",
    "logical_fallacies": "humanities",
    "machine_learning": "stem",
    "management": "other",
    "marketing": "other",
    "medical_genetics": "other",
    "miscellaneous": "other",
    "moral_disputes": "humanities",
    "moral_scenarios": "humanities",
    "nutrition": "other",
    "philosophy": "humanities",
    "prehistory": "humanities",
    "professional_accounting": "other",
    "professional_law": "humanities",
    "professional_medicine": "other",
    "professional_psychology": "social_sciences",
    "public_relations": "social_sciences",
    "security_studies": "social_sciences",
    "sociology": "social_sciences",
    "us_foreign_policy": "social_sciences",
    "virology": "other",
    "world_religions": "humanities",
}
_MMLU_ANSWERS = "ABCD"


def mmlu_rows(path: Path, subject: str) -> list[Doc]:
    """A header-less MMLU CSV (question, A, B, C, D, answer letter) -> the HF `cais/mmlu` rows:
    {question, subject, choices, answer index}. Read with newline="" so that line breaks inside
    quoted fields (a college_mathematics dev question has "\\r\\n") reach the prompt unchanged."""
    docs: list[Doc] = []
    try:
        with require(path).open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            start = 1
            for fields in reader:
                where = f"{path}:{start}"
                start = reader.line_num + 1
                if len(fields) != 6:
                    raise TaskDataError(f"{where}: expected 6 fields (question, A, B, C, D, answer), got {len(fields)}")
                if len(fields[5]) != 1 or fields[5] not in _MMLU_ANSWERS:
                    raise TaskDataError(f"{where}: answer must be one of A, B, C, D, got {fields[5]!r}")
                docs.append(
                    {
                        "question": fields[0],
                        "subject": subject,
                        "choices": fields[1:5],
                        "answer": _MMLU_ANSWERS.index(fields[5]),
                        "id": f"{subject}/{len(docs)}",
                    }
                )
    except csv.Error as e:
        raise TaskDataError(f"{path}: not valid CSV ({e})") from e
    except (OSError, UnicodeDecodeError) as e:
        raise TaskDataError(f"{path}: cannot read ({e})") from e
    if not docs:
        raise TaskDataError(f"{path}: no rows")
    return docs


@loader("mmlu")
def load_mmlu(data_dir: Path) -> TaskData:
    """The 57 subjects' test rows, subject after subject in `MMLU_SUBJECTS` order (alphabetical),
    rows in file order; the pool holds every subject's dev rows (the shots are each subject's
    first five)."""
    test: list[Doc] = []
    pool: list[Doc] = []
    for subject in MMLU_SUBJECTS:
        test += mmlu_rows(data_dir / f"mmlu/test/{subject}_test.csv", subject)
        pool += mmlu_rows(data_dir / f"mmlu/dev/{subject}_dev.csv", subject)
    return TaskData(test=test, fewshot_pool=pool)


def _mmlu_text(spec: TaskSpec, doc: Doc) -> str:
    """doc_to_text "{{question.strip()}}\\nA. {{choices[0]}}…\\nAnswer:": the question stripped,
    the choices as they are."""
    a, b, c, d = doc["choices"]
    return jinja_literal(spec.prompt.input_template).format(question=doc["question"].strip(), A=a, B=b, C=c, D=d)


@builder("lm_eval_mmlu")
def build_mmlu(spec: TaskSpec, data: TaskData, limit: int | None, context: BuildContext) -> list[Item]:
    """Per subject: description "…about {subject with spaces}.\\n\\n" rendered by Jinja (one
    newline left), the first_n sampler over the subject's dev rows (fewshot_split "dev" !=
    test_split "test": num_fewshot drawn, any equal to the evaluated row dropped), choices
    " A" … " D", gold the answer index. `extra` names the subject (`group`) and its sub-group."""
    if spec.fewshot.procedure != "lm_eval_first_n":
        raise ValueError(f"task {spec.name}: MMLU takes the first dev rows (lm_eval_first_n)")
    choices = prompt_option(spec, "choices", list, ["A", "B", "C", "D"])
    if len(choices) != len(_MMLU_ANSWERS):
        raise ValueError(f"task {spec.name}: prompt option choices must name the 4 answers, got {choices!r}")
    k = spec.fewshot.num
    dev: dict[str, list[Doc]] = {}
    for row in data.fewshot_pool:
        dev.setdefault(row["subject"], []).append(row)
    items = []
    for i, doc in enumerate(first(data.test, limit)):
        subject = doc["subject"]
        pool = dev.get(subject, [])
        if len(pool) < k:
            raise TaskDataError(f"task {spec.name}: subject {subject} has {len(pool)} dev rows, {k} shots needed")
        drawn = [s for s in pool[:k] if without_id(s) != without_id(doc)][:k]
        shots = [Shot(_mmlu_text(spec, s), choices[s["answer"]]) for s in drawn]
        description = jinja_literal(spec.prompt.description).format(subject=subject.replace("_", " "))
        items.append(
            multiple_choice_item(
                spec,
                i,
                doc["id"],
                description=description,
                shots=shots,
                query=_mmlu_text(spec, doc),
                choices=choices,
                gold=doc["answer"],
                extra={"group": subject, "category": MMLU_SUBJECTS[subject]},
            )
        )
    return items

"""llm-jp-eval 1.3.0 (as vendored in swallow-evaluation v202407): JCommonsenseQA, JEMHopQA, NIILC,
JSQuAD, JMMLU. Greedy generation after a Japanese Alpaca-style prompt with the same k shots for
every question (FEWSHOT.md A).

The harness builds one langchain 0.0.300 `PromptTemplate` per task: header, instruction and shots
written into the template string, `{input}` its only variable, f-string format. So a question
(the input) goes in literally, while braces in the instruction or a shot are template syntax:
`{{`/`}}` become single braces and anything else fails the template check before the first
question. `llm_jp_eval_items` renders through the same formatter (checked against langchain 0.0.300
itself); none of the shipped instructions and chosen shots holds a brace (the JSQuAD shots cannot
be checked without the v1.1 train file), while 101 JMMLU test questions do.
"""

from __future__ import annotations

import csv
import random
import string
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hyoka.orchestrator.tasks import extraction
from hyoka.orchestrator.tasks.builders import BuildContext, builder, first, generation_request
from hyoka.orchestrator.tasks.fewshot import llm_jp_eval_shots
from hyoka.orchestrator.tasks.items import Item
from hyoka.orchestrator.tasks.loaders import Doc, TaskData, TaskDataError, loader, read_json, read_json_lines, require
from hyoka.orchestrator.tasks.prompts import Shot, llm_jp_eval_prompt
from hyoka.orchestrator.tasks.spec import TaskSpec


def fill(spec: TaskSpec, template: str, doc: Doc) -> str:
    """A definition's input/output template filled with the document's fields (values are
    inserted as they are: braces inside them stay literal)."""
    try:
        return template.format_map(doc)
    except (KeyError, IndexError, ValueError) as e:
        raise TaskDataError(f"task {spec.name}: document {doc.get('id')} does not fit {template!r} ({e})") from e


# langchain 0.0.300's f-string formatter (`StrictFormatter`) is `string.Formatter` that also
# rejects unused keyword arguments; `{input}` is always used, so plain `string.Formatter` is it.
_TEMPLATE_FORMATTER = string.Formatter()


def llm_jp_eval_template(spec: TaskSpec, shots: Sequence[Shot]) -> str:
    """The template string llm-jp-eval gives langchain's PromptTemplate, checked the way its
    constructor checks it (formatted once with input="foo"); an invalid one fails the task."""
    template = llm_jp_eval_prompt(spec.prompt.instruction, shots, "{input}")
    render_llm_jp_eval(spec, template, "foo")
    return template


def render_llm_jp_eval(spec: TaskSpec, template: str, query: str) -> str:
    """The prompt for `query`: the template formatted with input=query (the query is literal)."""
    try:
        return _TEMPLATE_FORMATTER.format(template, input=query)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as e:
        raise TaskDataError(
            f"task {spec.name}: the instruction or a shot holds braces that llm-jp-eval's f-string "
            f"prompt template rejects, so the harness cannot run this task ({type(e).__name__}: {e})"
        ) from e


def llm_jp_eval_items(
    spec: TaskSpec, docs: Sequence[Doc], shot_docs: Sequence[Doc], *, group: str | None = None
) -> list[Item]:
    """Items for `docs`, each prompted with the fixed `shot_docs` (already chosen); `group`: the
    document field that names an item's sub-benchmark (`Item.extra["group"]`)."""
    p = spec.prompt
    shots = [Shot(fill(spec, p.input_template, d), fill(spec, p.output_template, d)) for d in shot_docs]
    template = llm_jp_eval_template(spec, shots)
    items = []
    for i, doc in enumerate(docs):
        prompt = render_llm_jp_eval(spec, template, fill(spec, p.input_template, doc))
        gold = extraction.nfkc(fill(spec, p.output_template, doc))
        extra: dict[str, Any] = {} if group is None else {"group": doc[group]}
        items.append(Item(i, doc["id"], prompt, gold, generation=generation_request(spec, prompt, i), extra=extra))
    return items


@builder("llm_jp_eval")
def build_llm_jp_eval(spec: TaskSpec, data: TaskData, limit: int | None, context: BuildContext) -> list[Item]:
    """The raw train file shuffled with seed 42, its first 90% the train split, whose first k
    items are the shots of every question (FEWSHOT.md A.2-A.3)."""
    f = spec.fewshot
    shot_docs = llm_jp_eval_shots(data.fewshot_pool, f.num, seed=f.seed, train_fraction=f.train_fraction)
    return llm_jp_eval_items(spec, first(data.test, limit), shot_docs)


# --- NIILC (llm-jp-eval 1.3.0 `datasets/niilc.py`) -------------------------------------------


def _niilc_questions(path: Path) -> list[Doc]:
    """Questions as llm-jp-eval reads them with xmltodict: text stripped; several `<answer>`s
    joined by "," skipping empty ones; a single answer used as is; answer "-" skipped."""
    try:
        root = ET.parse(require(path)).getroot()
    except ET.ParseError as e:
        line, _col = e.position
        raise TaskDataError(f"{path}:{line}: not valid XML ({e})") from e
    docs: list[Doc] = []
    for q in root.iter("question"):
        qid = q.get("id")
        text_el = q.find("text")
        answers = q.findall("answers/answer")
        if qid is None or text_el is None or not answers:
            raise TaskDataError(f"{path}: question {qid or '?'} lacks an id, <text> or <answer>")
        texts = [(a.text or "").strip() for a in answers]
        answer = ",".join(t for t in texts if t) if len(texts) > 1 else texts[0]
        if answer == "-":
            continue
        docs.append({"id": qid, "text": (text_el.text or "").strip(), "answer": answer})
    return docs


@loader("niilc")
def load_niilc(data_dir: Path) -> TaskData:
    return TaskData(
        test=_niilc_questions(data_dir / "niilc/NIILC-ECQA2015_test.xml"),
        fewshot_pool=_niilc_questions(data_dir / "niilc/fewshot/NIILC-ECQA2015_dev.xml"),
    )


# --- JCommonsenseQA (llm-jp-eval 1.3.0 `datasets/jcommonsenseqa.py`) ---------------------------

_JCQA_FIELDS = ("q_id", "question", "choice0", "choice1", "choice2", "choice3", "choice4", "label")


def _jcqa_rows(path: Path) -> list[Doc]:
    rows = read_json_lines(path, _JCQA_FIELDS)
    for row in rows:
        row["id"] = str(row["q_id"])
    return rows


@loader("jcommonsenseqa")
def load_jcommonsenseqa(data_dir: Path) -> TaskData:
    return TaskData(
        test=_jcqa_rows(data_dir / "jcommonsenseqa/valid-v1.3.json"),
        fewshot_pool=_jcqa_rows(data_dir / "jcommonsenseqa/fewshot/train-v1.1.json"),
    )


# --- shared readers for the JSON files -------------------------------------------------------


def _field(path: Path, where: str, obj: object, name: str, kind: type) -> Any:
    """`obj[name]`, which must exist and be of `kind`; errors name the file and the JSON path."""
    if not isinstance(obj, dict):
        raise TaskDataError(f"{path}: {where}: expected a JSON object, got {type(obj).__name__}")
    if name not in obj:
        raise TaskDataError(f"{path}: {where}: missing field {name}")
    value = obj[name]
    if not isinstance(value, kind):
        raise TaskDataError(f"{path}: {where}.{name}: expected {kind.__name__}, got {type(value).__name__}")
    return value


# --- JEMHopQA (llm-jp-eval 1.3.0 `datasets/jemhopqa.py`) ----------------------------------------


def _jemhopqa_questions(path: Path) -> list[Doc]:
    """A `corpus/*.json` array as llm-jp-eval reads it: every record in file order, input
    `質問：{question}`, output `answer`, nothing stripped or normalised (the gold is NFKC-normalised
    only when scored). `qid` becomes the item id."""
    records = read_json(path)
    if not isinstance(records, list):
        raise TaskDataError(f"{path}: expected a JSON array of questions, got {type(records).__name__}")
    docs: list[Doc] = []
    for i, record in enumerate(records):
        where = f"[{i}]"
        docs.append(
            {
                "id": _field(path, where, record, "qid", str),
                "question": _field(path, where, record, "question", str),
                "answer": _field(path, where, record, "answer", str),
            }
        )
    return docs


@loader("jemhopqa")
def load_jemhopqa(data_dir: Path) -> TaskData:
    """Test: the paper-era `corpus/dev.json` (not `corpus_ver1.2/dev_ver1.2.json`); pool: `corpus/train.json`."""
    return TaskData(
        test=_jemhopqa_questions(data_dir / "jemhopqa/dev.json"),
        fewshot_pool=_jemhopqa_questions(data_dir / "jemhopqa/fewshot/train.json"),
    )


# --- JSQuAD (llm-jp-eval 1.3.0 `datasets/jsquad.py`) ---------------------------------------------

#: Questions in JGLUE's v1.1 train file (git blob 20ce716ee531e3e23088f5840a3b0751ae803424), the
#: file llm-jp-eval 1.3.0 downloaded; its shots are positions 42740, 29433, 54061, 58804 of it.
JSQUAD_V11_TRAIN_QUESTIONS = 62_859
JSQUAD_TRAIN = "jsquad/fewshot/train-v1.1.json"


def _jsquad_questions(path: Path) -> list[Doc]:
    """Every question of every paragraph of every article, in file order (data -> paragraphs ->
    qas); the context as shipped (with JGLUE's `{title} [SEP] ` prefix), the first answer's text
    as the output; nothing stripped or normalised."""
    root = read_json(path)
    docs: list[Doc] = []
    for a, article in enumerate(_field(path, "the top level", root, "data", list)):
        for p, paragraph in enumerate(_field(path, f"data[{a}]", article, "paragraphs", list)):
            where = f"data[{a}].paragraphs[{p}]"
            context = _field(path, where, paragraph, "context", str)
            for q, qa in enumerate(_field(path, where, paragraph, "qas", list)):
                at = f"{where}.qas[{q}]"
                answers = _field(path, at, qa, "answers", list)
                if not answers:
                    raise TaskDataError(f"{path}: {at}.answers: empty (llm-jp-eval takes the first answer)")
                docs.append(
                    {
                        "id": _field(path, at, qa, "id", str),
                        "context": context,
                        "question": _field(path, at, qa, "question", str),
                        "answer": _field(path, f"{at}.answers[0]", answers[0], "text", str),
                    }
                )
    return docs


@loader("jsquad")
def load_jsquad(data_dir: Path) -> TaskData:
    """Test: JGLUE valid v1.1 (`valid-v1.3.json` is the same blob). Pool: JGLUE's v1.1 train
    file, which ../shared lacks (over 4 MiB) and which must hold exactly its 62,859 questions: the
    v1.3 train file (62,697) shuffles into other shots."""
    test = _jsquad_questions(data_dir / "jsquad/valid-v1.3.json")
    train_path = data_dir / JSQUAD_TRAIN
    if not train_path.is_file():
        raise TaskDataError(
            f"{train_path}: file not found; JSQuAD's shots come from JGLUE's v1.1 train file (yahoojapan/JGLUE "
            "tag v1.1.0, datasets/jsquad-v1.1/train-v1.1.json, git blob 20ce716ee531e3e23088f5840a3b0751ae803424, "
            "62,859 questions), which is not in the shared datasets (over 4 MiB): put a copy there"
        )
    pool = _jsquad_questions(train_path)
    if len(pool) != JSQUAD_V11_TRAIN_QUESTIONS:
        raise TaskDataError(
            f"{train_path}: {len(pool):,} questions, expected {JSQUAD_V11_TRAIN_QUESTIONS:,} (JGLUE v1.1 train, git "
            "blob 20ce716ee531e3e23088f5840a3b0751ae803424); another version shuffles into other shots"
        )
    return TaskData(test=test, fewshot_pool=pool)


# --- JMMLU (llm-jp-eval 1.3.0 `datasets/jmmlu.py`, its own split) -------------------------------

#: The 53 CC BY-SA subjects in the order llm-jp-eval 1.3.0 processes them (FEWSHOT.md A.6).
JMMLU_SUBJECTS: tuple[str, ...] = (
    "econometrics",
    "human_aging",
    "high_school_psychology",
    "professional_medicine",
    "electrical_engineering",
    "college_mathematics",
    "medical_genetics",
    "formal_logic",
    "nutrition",
    "prehistory",
    "world_religions",
    "japanese_history",
    "high_school_geography",
    "international_law",
    "logical_fallacies",
    "human_sexuality",
    "philosophy",
    "college_medicine",
    "professional_accounting",
    "high_school_mathematics",
    "global_facts",
    "business_ethics",
    "high_school_chemistry",
    "college_physics",
    "high_school_statistics",
    "moral_disputes",
    "high_school_biology",
    "miscellaneous",
    "high_school_macroeconomics",
    "high_school_computer_science",
    "abstract_algebra",
    "elementary_mathematics",
    "jurisprudence",
    "security_studies",
    "high_school_physics",
    "college_computer_science",
    "public_relations",
    "management",
    "computer_security",
    "college_chemistry",
    "anatomy",
    "high_school_european_history",
    "machine_learning",
    "virology",
    "high_school_microeconomics",
    "astronomy",
    "world_history",
    "college_biology",
    "clinical_knowledge",
    "conceptual_physics",
    "professional_psychology",
    "sociology",
    "marketing",
)
JMMLU_SEED = 42
JMMLU_NUM_TRAIN = 32  # llm-jp-eval's train split: 16 from the dev pool + 16 from the test pool


def jmmlu_file(subject: str) -> str:
    return f"jmmlu/by_sa/{subject}.csv"


def jmmlu_rows(path: Path, subject: str) -> list[Doc]:
    """One subject's CSV as llm-jp-eval reads it: encoding utf-8-sig, `csv.reader` with
    QUOTE_ALL, the file opened WITHOUT newline="" (so CRLF inside a quoted field becomes LF), no
    header, fields question, A, B, C, D, answer (any further fields ignored). Ids are
    `subject:row`, the 0-based record number."""
    docs: list[Doc] = []
    try:
        with require(path).open(encoding="utf-8-sig") as f:
            reader = csv.reader(f, quoting=csv.QUOTE_ALL)
            try:
                for row in reader:
                    if len(row) < 6:
                        raise TaskDataError(
                            f"{path}:{reader.line_num}: {len(row)} field(s), expected 6 (question, A, B, C, D, answer)"
                        )
                    n = len(docs)
                    docs.append(
                        {
                            "id": f"{subject}:{n}",
                            "subject": subject,
                            "row": n,
                            "question": row[0],
                            "A": row[1],
                            "B": row[2],
                            "C": row[3],
                            "D": row[4],
                            "answer": row[5],
                        }
                    )
            except csv.Error as e:
                raise TaskDataError(f"{path}:{reader.line_num}: not valid CSV ({e})") from e
    except (OSError, UnicodeDecodeError) as e:
        raise TaskDataError(f"{path}: cannot read ({e})") from e
    return docs


def jmmlu_splits(
    subject_rows: Sequence[Sequence[Doc]], *, seed: int = JMMLU_SEED, num_train: int = JMMLU_NUM_TRAIN
) -> tuple[list[Doc], list[Doc], list[Doc]]:
    """llm-jp-eval's (train, dev, test) of JMMLU: one generator seeded once; each subject's rows
    shuffled, the first floor(n/2) to a dev pool and the rest to a test pool; then the dev pool
    shuffled, then the test pool; train = first num_train/2 of each, dev and test the rest."""
    rnd = random.Random(seed)  # `random.seed(seed)` then the global generator: the same draws
    dev_pool: list[Doc] = []
    test_pool: list[Doc] = []
    for rows in subject_rows:
        shuffled = list(rows)
        rnd.shuffle(shuffled)
        half = len(shuffled) // 2
        dev_pool += shuffled[:half]
        test_pool += shuffled[half:]
    rnd.shuffle(dev_pool)
    rnd.shuffle(test_pool)
    k = num_train // 2
    return dev_pool[:k] + test_pool[:k], dev_pool[k:], test_pool[k:]


@loader("jmmlu")
def load_jmmlu(data_dir: Path) -> TaskData:
    """Test: llm-jp-eval's test split (3,541 of the 7,097 rows, mixed subjects); pool: its train
    split (32 rows), whose first k are the shots."""
    rows = [jmmlu_rows(data_dir / jmmlu_file(subject), subject) for subject in JMMLU_SUBJECTS]
    train, _dev, test = jmmlu_splits(rows)
    return TaskData(test=test, fewshot_pool=train)


@builder("llm_jp_eval_jmmlu")
def build_llm_jp_eval_jmmlu(spec: TaskSpec, data: TaskData, limit: int | None, context: BuildContext) -> list[Item]:
    """The pool is already llm-jp-eval's train split (the loader made JMMLU's own split): its
    first k items are the shots of every question. Items are grouped by subject."""
    k = spec.fewshot.num
    if spec.fewshot.seed != JMMLU_SEED:
        raise ValueError(
            f"task {spec.name}: the JMMLU loader splits with seed {JMMLU_SEED}, the definition says {spec.fewshot.seed}"
        )
    if len(data.fewshot_pool) < k:
        raise TaskDataError(f"task {spec.name}: {k} shots wanted, the train split has {len(data.fewshot_pool)}")
    return llm_jp_eval_items(spec, first(data.test, limit), data.fewshot_pool[:k], group="subject")

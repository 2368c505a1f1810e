"""Dataset loaders: read one benchmark's evaluated split and few-shot pool from the data directory.

Each loader returns documents as plain dicts with a unique string `id`, in upstream file order,
converting fields the way the harness's own preprocessing does (quoted in each docstring).
"""

from __future__ import annotations

import gzip
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Doc = dict[str, Any]


class TaskDataError(ValueError):
    """The data directory lacks a task's files or a file cannot be read; names the file (and line)."""


@dataclass(frozen=True)
class TaskData:
    test: list[Doc]  # the evaluated split, in harness order
    fewshot_pool: list[Doc]  # where shots are drawn from (may be `test` itself)


Loader = Callable[[Path], TaskData]
LOADERS: dict[str, Loader] = {}


def loader(name: str) -> Callable[[Loader], Loader]:
    def register(fn: Loader) -> Loader:
        LOADERS[name] = fn
        return fn

    return register


def _require(path: Path) -> Path:
    if not path.is_file():
        raise TaskDataError(f"{path}: file not found")
    return path


def _read_json_lines(path: Path, fields: tuple[str, ...], *, compressed: bool = False) -> list[Doc]:
    """The JSON objects of a JSON-lines file, each with `fields` (errors name the file's line)."""
    opener = gzip.open if compressed else open
    rows: list[Doc] = []
    try:
        with opener(_require(path), "rt", encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise TaskDataError(f"{path}:{line_no}: not valid JSON ({e.msg})") from e
                if not isinstance(row, dict):
                    raise TaskDataError(f"{path}:{line_no}: expected a JSON object")
                _fields(path, line_no, row, fields)
                rows.append(row)
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise TaskDataError(f"{path}: cannot read ({e})") from e
    return rows


def _fields(path: Path, line_no: int, row: Doc, names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in row]
    if missing:
        raise TaskDataError(f"{path}:{line_no}: missing field(s) {', '.join(missing)}")


# --- NIILC (llm-jp-eval 1.3.0 `datasets/niilc.py`) -------------------------------------------


def _niilc_questions(path: Path) -> list[Doc]:
    """Questions as llm-jp-eval reads them with xmltodict: text stripped; several `<answer>`s
    joined by "," skipping empty ones; a single answer used as is; answer "-" skipped."""
    try:
        root = ET.parse(_require(path)).getroot()
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
    rows = _read_json_lines(path, _JCQA_FIELDS)
    for row in rows:
        row["id"] = str(row["q_id"])
    return rows


@loader("jcommonsenseqa")
def load_jcommonsenseqa(data_dir: Path) -> TaskData:
    return TaskData(
        test=_jcqa_rows(data_dir / "jcommonsenseqa/valid-v1.3.json"),
        fewshot_pool=_jcqa_rows(data_dir / "jcommonsenseqa/fewshot/train-v1.1.json"),
    )


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
    path = _require(data_dir / "xwinograd/dataset.tsv")
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


# --- JHumanEval (bigcode-evaluation-harness `humaneval.py`, data from kogi-jwu/jhumaneval) ------

_HUMANEVAL_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "test")


@loader("jhumaneval")
def load_jhumaneval(data_dir: Path) -> TaskData:
    path = data_dir / "jhumaneval/jhuman-eval.jsonl.gz"
    rows = _read_json_lines(path, _HUMANEVAL_FIELDS, compressed=True)
    for row in rows:
        row["id"] = row["task_id"]
    return TaskData(test=rows, fewshot_pool=[])

"""Prediction and reference files for `hyoka-metrics score`.

JSONL (`.jsonl`, `.json`): one JSON value per line.
  predictions: a string, or an object with "prediction"; for pass_at_k an object with
  "total" and "correct" (sample counts).
  references: a string, a list of strings, or an object with "references" (list) or "reference".
TSV (any other extension): one item per line, UTF-8, no quoting; a prediction is the whole line,
  references are the line's tab-separated fields. Use JSONL for texts with newlines or tabs.
Blank trailing lines are ignored; every other problem is a `FileError` naming the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Format = Literal["auto", "jsonl", "tsv"]


class FileError(Exception):
    def __init__(self, path: Path, line: int | None, description: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {description}")


@dataclass(frozen=True)
class Prediction:
    text: str
    pass_counts: tuple[int, int] | None = None


def _lines(path: Path) -> list[tuple[int, str]]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise FileError(path, None, f"cannot read ({error.strerror})") from None
    lines = data.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    out = []
    for number, raw in enumerate(lines, start=1):
        try:
            out.append((number, raw.removesuffix(b"\r").decode("utf-8")))
        except UnicodeDecodeError as error:
            raise FileError(path, number, f"invalid UTF-8 at byte {error.start}") from None
    return out


def _is_jsonl(path: Path, fmt: Format) -> bool:
    return fmt == "jsonl" or (fmt == "auto" and path.suffix.lower() in (".jsonl", ".json", ".ndjson"))


def _json(path: Path, number: int, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise FileError(path, number, f"invalid JSON ({error.msg} at column {error.colno})") from None


def _count(path: Path, number: int, value: Any, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FileError(path, number, f'"{key}" must be a non-negative integer')
    return value


def read_predictions(path: Path, fmt: Format = "auto") -> list[Prediction]:
    lines = _lines(path)
    if not _is_jsonl(path, fmt):
        return [Prediction(text) for _, text in lines]
    out = []
    for number, text in lines:
        value = _json(path, number, text)
        if isinstance(value, str):
            out.append(Prediction(value))
        elif isinstance(value, dict) and isinstance(value.get("prediction"), str):
            out.append(Prediction(value["prediction"]))
        elif isinstance(value, dict) and "total" in value and "correct" in value:
            counts = (_count(path, number, value["total"], "total"), _count(path, number, value["correct"], "correct"))
            out.append(Prediction("", counts))
        else:
            raise FileError(path, number, 'expected a string, {"prediction": ...} or {"total": n, "correct": c}')
    return out


def read_references(path: Path, fmt: Format = "auto") -> list[tuple[str, ...]]:
    lines = _lines(path)
    if not _is_jsonl(path, fmt):
        return [tuple(text.split("\t")) for _, text in lines]
    out: list[tuple[str, ...]] = []
    for number, text in lines:
        value = _json(path, number, text)
        if isinstance(value, dict):
            value = value.get("references", value.get("reference"))
        if isinstance(value, str):
            out.append((value,))
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            out.append(tuple(value))
        else:
            raise FileError(path, number, 'expected a string, a non-empty list of strings, or {"references": [...]}')
    return out

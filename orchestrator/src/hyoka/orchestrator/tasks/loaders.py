"""The loader hook: read one benchmark's evaluated split and few-shot pool from the data directory.

Loaders live with their harness family (`families/`) and register with `@loader("name")`. Each
returns documents as plain dicts with a unique string `id`, in upstream file order, converting
fields the way the harness's own preprocessing does (quoted in each docstring). This module holds
the registry and the file readers they share; every error names the file (and line).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
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


def require(path: Path) -> Path:
    if not path.is_file():
        raise TaskDataError(f"{path}: file not found")
    return path


def iter_json_lines(path: Path, fields: tuple[str, ...], *, compressed: bool = False) -> Iterator[tuple[str, Doc]]:
    """("path:line", object) for each non-blank line of a JSON-lines file, each object holding
    `fields` (errors name the file's line)."""
    opener = gzip.open if compressed else open
    try:
        with opener(require(path), "rt", encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise TaskDataError(f"{path}:{line_no}: not valid JSON ({e.msg})") from e
                if not isinstance(row, dict):
                    raise TaskDataError(f"{path}:{line_no}: expected a JSON object")
                check_fields(path, line_no, row, fields)
                yield f"{path}:{line_no}", row
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise TaskDataError(f"{path}: cannot read ({e})") from e


def read_json_lines(path: Path, fields: tuple[str, ...], *, compressed: bool = False) -> list[Doc]:
    """The JSON objects of a JSON-lines file, each with `fields` (errors name the file's line)."""
    return [row for _, row in iter_json_lines(path, fields, compressed=compressed)]


def check_fields(path: Path, line_no: int, row: Doc, names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in row]
    if missing:
        raise TaskDataError(f"{path}:{line_no}: missing field(s) {', '.join(missing)}")


def read_json(path: Path) -> Any:
    """A whole JSON file (errors name the file, line and column)."""
    try:
        with require(path).open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise TaskDataError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") from e
    except (OSError, UnicodeDecodeError) as e:
        raise TaskDataError(f"{path}: cannot read ({e})") from e

"""Reading score and budget tables from CSV or JSON files, with errors that name the file, the
line (or JSON path) and the column. The shipped defaults live in `hyoka.orchestrator.data`."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from hyoka.orchestrator.analysis.budgets import (
    BUDGET_COLUMNS,
    NUMBER_COLUMNS,
    OPTIONAL_BUDGET_COLUMNS,
    OPTIONAL_NUMBER_COLUMNS,
    BudgetTable,
    ModelBudget,
    build_budget_table,
)
from hyoka.orchestrator.analysis.errors import InputError, TableProblem
from hyoka.orchestrator.analysis.scores import ScoreTable, build_score_table

DATA_PACKAGE = "hyoka.orchestrator.data"
DEFAULT_SCORES = "scores_35_base_models_swallow_v202407.csv"
DEFAULT_BUDGETS = "budgets_35.csv"

# Score-table columns that are not benchmarks: the id, labels, and the leaderboard's parameter
# counts and averages (which would otherwise be taken for benchmarks).
ID_COLUMN = "model_id"
NAME_COLUMNS = ("display_name",)
GROUP_COLUMNS = ("group", "category_guess", "category")
IGNORED_COLUMN = re.compile(r"^params(_|$)|_avg(_|$)")


def default_resource(name: str) -> resources.abc.Traversable:
    return resources.files(DATA_PACKAGE).joinpath(name)


def default_budgets_available() -> bool:
    return default_resource(DEFAULT_BUDGETS).is_file()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(str(path), "no such file") from None
    except IsADirectoryError:
        raise InputError(str(path), "is a directory, not a file") from None
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise InputError(str(path), f"not UTF-8 text (byte {error.start})", row=f"line {line}") from None
    except OSError as error:
        raise InputError(str(path), error.strerror or str(error)) from None


def _is_json(path: Path, text: str) -> bool:
    return path.suffix.lower() == ".json" or text.lstrip()[:1] in ("{", "[")


# ----------------------------------------------------------------------------------------------
# Score tables


def load_scores(path: Path, *, complete: bool = True) -> ScoreTable:
    """A score table from a CSV or JSON file (see `parse_scores_csv` / `parse_scores_json`).
    `complete=False` reads new models to project: empty cells are missing scores."""
    text = _read(path)
    if _is_json(path, text):
        return parse_scores_json(text, str(path), complete=complete)
    return parse_scores_csv(text, str(path), complete=complete)


def load_default_scores() -> ScoreTable:
    resource = default_resource(DEFAULT_SCORES)
    return parse_scores_csv(resource.read_text(encoding="utf-8"), f"<default {DEFAULT_SCORES}>")


def _csv_records(
    text: str, source: str, check_header: Callable[[list[str]], None] | None = None
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header (stripped) and (line number, fields) of each non-blank record; malformed CSV,
    repeated columns and ragged rows are InputErrors. `check_header` runs before the rows."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    try:
        header = next(reader, None)
        if header is None:
            raise InputError(source, "the file is empty")
        header = [name.strip() for name in header]
        for index, name in enumerate(header):
            if name in header[:index]:
                raise InputError(source, f"repeated column '{name}'", row="line 1 (header)", column=name)
        if check_header is not None:
            check_header(header)
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(header):
                raise InputError(
                    source, f"has {len(record)} fields but the header has {len(header)}", row=f"line {reader.line_num}"
                )
            records.append((reader.line_num, [cell.strip() for cell in record]))
    except csv.Error as error:
        raise InputError(source, f"malformed CSV: {error}", row=f"line {reader.line_num}") from None
    return header, records


def _number(cell: str, source: str, row: str, column: str) -> float | None:
    if cell == "":
        return None
    try:
        return float(cell)
    except ValueError:
        raise InputError(source, f"'{cell}' is not a number", row=row, column=column) from None


def parse_scores_csv(text: str, source: str, *, complete: bool = True) -> ScoreTable:
    """CSV with a `model_id` column, optional `display_name` and `group` (or `category_guess`)
    columns, and one column per benchmark; `params_*` and `*_avg*` columns are ignored."""

    def check_header(header: list[str]) -> None:
        if ID_COLUMN not in header:
            raise InputError(source, f"no '{ID_COLUMN}' column", row="line 1 (header)")

    header, records = _csv_records(text, source, check_header)
    id_at = header.index(ID_COLUMN)
    name_at = next((header.index(c) for c in NAME_COLUMNS if c in header), None)
    group_at = next((header.index(c) for c in GROUP_COLUMNS if c in header), None)
    special = {id_at, name_at, group_at}
    bench_at = [j for j, name in enumerate(header) if j not in special and not IGNORED_COLUMN.search(name)]
    benchmarks = [header[j] for j in bench_at]
    models, rows, lines = [], [], []
    for line, record in records:
        models.append(record[id_at])
        where = f"line {line}" + (f" (model '{record[id_at]}')" if record[id_at] else "")
        rows.append([_number(record[j], source, where, header[j]) for j in bench_at])
        lines.append(line)
    try:
        return build_score_table(
            models,
            benchmarks,
            rows,
            groups=[r[group_at] for _, r in records] if group_at is not None else None,
            display_names=[r[name_at] for _, r in records] if name_at is not None else None,
            complete=complete,
        )
    except TableProblem as problem:
        raise InputError(source, problem.message, *_csv_location(problem, lines, models, benchmarks)) from None


def _csv_location(
    problem: TableProblem, lines: list[int], models: list[str], benchmarks: list[str]
) -> tuple[str | None, str | None]:
    if problem.row is not None:
        row = f"line {lines[problem.row]} (model '{models[problem.row]}')"
    elif problem.field in ("benchmark", "benchmarks"):
        row = "line 1 (header)"
    else:
        row = f"lines 2-{lines[-1]}" if lines else "line 1 (header)"
    if problem.column is not None:
        column: str | None = benchmarks[problem.column]
    elif problem.field == "model_id":
        column = ID_COLUMN
    else:
        column = None
    return row, column


class _JsonModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    model_id: str
    display_name: str = ""
    group: str = ""
    scores: dict[str, float | None]


class _JsonScores(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    benchmarks: list[str] | None = None
    models: list[_JsonModel]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"repeated key '{key}' in one object")
        result[key] = value
    return result


def parse_scores_json(text: str, source: str, *, complete: bool = True) -> ScoreTable:
    """JSON: {"benchmarks": [...] (optional, fixes the order), "models": [{"model_id": ...,
    "display_name": ..., "group": ..., "scores": {benchmark: score or null}}]}, or just the list
    of models."""
    try:
        raw = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as error:
        raise InputError(
            source, f"malformed JSON: {error.msg}", row=f"line {error.lineno}, col {error.colno}"
        ) from None
    except ValueError as error:
        raise InputError(source, str(error)) from None
    if isinstance(raw, list):
        raw = {"models": raw}
    try:
        document = _JsonScores.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        loc = list(first["loc"])
        row: str | None = None
        column: str | None = None
        if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
            row = f"models[{loc[1]}]"
            column = ".".join(str(part) for part in loc[2:]) or None
        elif loc:
            column = ".".join(str(part) for part in loc)
        raise InputError(source, first["msg"], row=row, column=column) from None
    benchmarks = list(document.benchmarks or [])
    if document.benchmarks is None:
        for model in document.models:
            benchmarks.extend(b for b in model.scores if b not in benchmarks)
    models = [m.model_id for m in document.models]
    for i, model in enumerate(document.models):
        unknown = [b for b in model.scores if b not in benchmarks]
        if unknown:
            raise InputError(
                source,
                "benchmark not in 'benchmarks'",
                row=f"models[{i}] (model '{model.model_id}')",
                column=f"scores.{unknown[0]}",
            )
    rows = [[m.scores.get(b) for b in benchmarks] for m in document.models]
    try:
        return build_score_table(
            models,
            benchmarks,
            rows,
            groups=[m.group for m in document.models],
            display_names=[m.display_name for m in document.models],
            complete=complete,
        )
    except TableProblem as problem:
        row = f"models[{problem.row}] (model '{models[problem.row]}')" if problem.row is not None else None
        if problem.field == "benchmark" and document.benchmarks is not None:
            column = f"benchmarks[{problem.column}]"
        elif problem.column is not None:
            column = f"scores.{benchmarks[problem.column]}"
        else:
            column = "model_id" if problem.field == "model_id" else None
        raise InputError(source, problem.message, row=row, column=column) from None


# ----------------------------------------------------------------------------------------------
# Budget tables

_TRUE = {"true"}
_FALSE = {"false"}


def load_budgets(path: Path, known_models: set[str] | None) -> BudgetTable:
    """A budget table from a CSV file; a model not in `known_models` is an error."""
    return parse_budgets_csv(_read(path), str(path), known_models)


def load_default_budgets(known_models: set[str]) -> BudgetTable:
    """The shipped table, restricted to the models of the score table."""
    resource = default_resource(DEFAULT_BUDGETS)
    table = parse_budgets_csv(resource.read_text(encoding="utf-8"), f"<default {DEFAULT_BUDGETS}>", None)
    return table.restricted_to(known_models)


def parse_budgets_csv(text: str, source: str, known_models: set[str] | None) -> BudgetTable:
    """CSV with the columns model_id, params_B, en_tokens_B, ja_tokens_B, source, confidence,
    is_estimate, notes, and optionally en_status, ja_status, en_rule, ja_rule, en_estimated_B,
    ja_estimated_B (any order; see budgets_35.md); numbers in billions, empty = unknown."""
    allowed = BUDGET_COLUMNS + OPTIONAL_BUDGET_COLUMNS

    def check_header(header: list[str]) -> None:
        missing = [c for c in BUDGET_COLUMNS if c not in header]
        if missing:
            raise InputError(source, f"missing column '{missing[0]}'", row="line 1 (header)", column=missing[0])
        extra = [c for c in header if c not in allowed]
        if extra:
            expected = ", ".join(BUDGET_COLUMNS) + " (optional: " + ", ".join(OPTIONAL_BUDGET_COLUMNS) + ")"
            raise InputError(
                source, f"unknown column '{extra[0]}' (expected: {expected})", row="line 1 (header)", column=extra[0]
            )

    header, records = _csv_records(text, source, check_header)
    rows: list[ModelBudget] = []
    lines: list[int] = []
    for line, record in records:
        cells = dict(zip(header, record, strict=True))
        where = f"line {line}" + (f" (model '{cells['model_id']}')" if cells["model_id"] else "")
        numbers = {c: _number(cells[c], source, where, c) for c in NUMBER_COLUMNS}
        parts = {c: _number(cells.get(c, ""), source, where, c) for c in OPTIONAL_NUMBER_COLUMNS}
        flag = cells["is_estimate"].lower()
        if flag not in _TRUE | _FALSE and not (flag == "" and all(v is None for v in numbers.values())):
            raise InputError(source, f"'{cells['is_estimate']}' is not true or false", row=where, column="is_estimate")
        rows.append(
            ModelBudget(
                model_id=cells["model_id"],
                params_b=numbers["params_B"],
                en_tokens_b=numbers["en_tokens_B"],
                ja_tokens_b=numbers["ja_tokens_B"],
                source=cells["source"],
                confidence=cells["confidence"],
                is_estimate=flag in _TRUE,
                notes=cells["notes"],
                en_status=cells.get("en_status", ""),
                ja_status=cells.get("ja_status", ""),
                en_rule=cells.get("en_rule", ""),
                ja_rule=cells.get("ja_rule", ""),
                en_estimated_b=parts["en_estimated_B"],
                ja_estimated_b=parts["ja_estimated_B"],
            )
        )
        lines.append(line)
    try:
        return build_budget_table(rows, known_models)
    except TableProblem as problem:
        assert problem.row is not None  # every budget problem is about one row
        row = f"line {lines[problem.row]}" + (
            f" (model '{rows[problem.row].model_id}')" if rows[problem.row].model_id else ""
        )
        raise InputError(source, problem.message, row=row, column=problem.field) from None

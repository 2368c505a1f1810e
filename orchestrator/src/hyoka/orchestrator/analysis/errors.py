"""Errors of the factor analysis.

Validation is written once, over in-memory tables, and reports a `TableProblem` by index
(row = model, column = benchmark or field name). Each front end turns it into its own language:
the file loaders into an `InputError` naming file, line and column (one line, for the CLI); the
gRPC servicer into INVALID_ARGUMENT naming the request field.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TableProblem(Exception):
    """A problem found in a table, located by indices into it.

    `row` is the model's index (None: the problem concerns the whole table or a header);
    `column` is a benchmark index when `field` is "score" or "benchmark", and None otherwise;
    `field` names what is wrong: "score", "scores" (a row), "benchmark", "model_id", "models" or
    "benchmarks" (too few), "table", or a budget column.
    """

    message: str
    row: int | None = None
    column: int | None = None
    field: str = "table"

    def __str__(self) -> str:
        return self.message


@dataclass
class InputError(Exception):
    """Bad input from a file: one line naming the file, the row and the column."""

    source: str
    reason: str
    row: str | None = None  # e.g. "line 5 (model 'x')" or "models[3]"
    column: str | None = None

    def __str__(self) -> str:
        where = [self.source]
        if self.row is not None:
            where.append(self.row)
        if self.column is not None:
            where.append(f"column '{self.column}'")
        return f"{', '.join(where)}: {self.reason}"

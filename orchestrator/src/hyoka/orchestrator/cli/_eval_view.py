"""How `hyoka eval` shows a run: a rich progress bar per task and a results table."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from hyoka.orchestrator.runner.engine import TaskResult


class RichProgress:
    """Implements the run's `Progress` protocol with one rich bar per task."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[score]}"),
            console=console,
        )
        self._ids: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def start_task(self, task: str, total: int) -> None:
        self._ids[task] = self._progress.add_task(task, total=total, score="")

    def advance(self, task: str, n: int) -> None:
        self._progress.advance(self._ids[task], n)

    def finish_task(self, result: TaskResult) -> None:
        self._progress.update(self._ids[result.task], score=f"{result.metric} {result.score:.4f}")


def results_table(model_id: str, results: Sequence[TaskResult]) -> Table:
    table = Table(title=f"hyoka eval: {model_id}")
    table.add_column("task")
    table.add_column("metric")
    table.add_column("score", justify="right")
    table.add_column("items", justify="right")
    table.add_column("resumed", justify="right")
    table.add_column("wall s", justify="right")
    for r in results:
        table.add_row(r.task, r.metric, f"{r.score:.4f}", str(r.num_items), str(r.num_resumed), f"{r.wall_seconds:.1f}")
    return table

"""Benchmarks as data (`definitions/*.toml`) plus small hooks: loaders, few-shot selection,
prompt layouts, answer extraction and metrics, faithful to the harnesses the paper used."""

from hyoka.orchestrator.tasks.loaders import TaskData, TaskDataError
from hyoka.orchestrator.tasks.registry import UnknownTaskError, available_tasks, get_task, task_specs
from hyoka.orchestrator.tasks.scoring import CodeChecker, CodeSubmission, CodeVerdict, Scorers, TextMetrics, TextScore
from hyoka.orchestrator.tasks.spec import Metric, RequestType, TaskSpec
from hyoka.orchestrator.tasks.task import Item, ItemOutput, ScoredItem, Task

__all__ = [
    "CodeChecker",
    "CodeSubmission",
    "CodeVerdict",
    "Item",
    "ItemOutput",
    "Metric",
    "RequestType",
    "ScoredItem",
    "Scorers",
    "Task",
    "TaskData",
    "TaskDataError",
    "TaskSpec",
    "TextMetrics",
    "TextScore",
    "UnknownTaskError",
    "available_tasks",
    "get_task",
    "task_specs",
]

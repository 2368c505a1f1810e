"""Benchmarks as data (`definitions/*.toml`) plus small hooks: loaders, few-shot selection,
prompt layouts, answer extraction and metrics, faithful to the harnesses the paper used."""

from hyoka.orchestrator.tasks.builders import BuildContext, PromptTokenizer, TokenizerRequiredError
from hyoka.orchestrator.tasks.items import Item, ItemOutput, ScoredItem
from hyoka.orchestrator.tasks.loaders import TaskData, TaskDataError
from hyoka.orchestrator.tasks.registry import (
    SUITES,
    UnknownSuiteError,
    UnknownTaskError,
    available_tasks,
    get_task,
    suite_tasks,
    task_specs,
)
from hyoka.orchestrator.tasks.scoring import (
    CodeChecker,
    CodeSubmission,
    CodeVerdict,
    CorpusScore,
    Scorers,
    TextMetrics,
    TextScore,
)
from hyoka.orchestrator.tasks.spec import MetricSpec, RequestType, TaskSpec
from hyoka.orchestrator.tasks.task import Task, TaskScore

__all__ = [
    "SUITES",
    "BuildContext",
    "CodeChecker",
    "CodeSubmission",
    "CodeVerdict",
    "CorpusScore",
    "Item",
    "ItemOutput",
    "MetricSpec",
    "PromptTokenizer",
    "RequestType",
    "ScoredItem",
    "Scorers",
    "Task",
    "TaskData",
    "TaskDataError",
    "TaskScore",
    "TaskSpec",
    "TextMetrics",
    "TextScore",
    "TokenizerRequiredError",
    "UnknownSuiteError",
    "UnknownTaskError",
    "available_tasks",
    "get_task",
    "suite_tasks",
    "task_specs",
]

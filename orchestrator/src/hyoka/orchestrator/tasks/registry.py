"""Tasks by name, read from the TOML definitions shipped in `definitions/`."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

from pydantic import ValidationError

from hyoka.orchestrator.tasks import families  # noqa: F401 - registers the loaders, builders and rules
from hyoka.orchestrator.tasks.builders import BUILDERS
from hyoka.orchestrator.tasks.extraction import TEXT_RULES
from hyoka.orchestrator.tasks.loaders import LOADERS
from hyoka.orchestrator.tasks.spec import TaskSpec
from hyoka.orchestrator.tasks.task import Task

#: The 19 benchmarks of Saito et al. in the published 35-model table's column order; each is the
#: name of the task that reproduces it and its `benchmark_column`.
PAPER_BENCHMARKS: tuple[str, ...] = (
    "jcommonsenseqa",
    "jemhopqa",
    "niilc",
    "jsquad",
    "xlsum_ja",
    "mgsm_ja",
    "wmt20_en_ja",
    "wmt20_ja_en",
    "jmmlu",
    "jhumaneval",
    "openbookqa",
    "triviaqa",
    "hellaswag",
    "squad2",
    "xwino_en",
    "mmlu",
    "gsm8k",
    "bbh",
    "humaneval",
)

#: Named sets of tasks. `paper`: the 19 benchmarks with the paper's settings.
SUITES: dict[str, tuple[str, ...]] = {"paper": PAPER_BENCHMARKS}


class UnknownTaskError(ValueError):
    pass


@cache
def task_specs() -> dict[str, TaskSpec]:
    """Every shipped definition, validated; a broken definition is a programming error."""
    specs: dict[str, TaskSpec] = {}
    folder = resources.files("hyoka.orchestrator.tasks") / "definitions"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        try:
            spec = TaskSpec.model_validate(tomllib.loads(entry.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, ValidationError) as e:
            raise RuntimeError(f"task definition {entry.name} is invalid: {e}") from e
        for kind, key, registry in (
            ("loader", spec.loader, LOADERS),
            ("builder", spec.builder, BUILDERS),
            ("extraction rule", spec.extraction, {**TEXT_RULES, "code_stop_words": None}),
        ):
            if key not in registry:
                raise RuntimeError(f"task definition {entry.name} names unknown {kind} {key!r}")
        specs[spec.name] = spec
    return specs


def available_tasks() -> list[str]:
    return sorted(task_specs())


class UnknownSuiteError(ValueError):
    pass


def suite_tasks(name: str) -> tuple[str, ...]:
    try:
        return SUITES[name]
    except KeyError:
        raise UnknownSuiteError(f"unknown suite {name!r}; known suites: {', '.join(sorted(SUITES))}") from None


def get_task(name: str) -> Task:
    spec = task_specs().get(name)
    if spec is None:
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(available_tasks())}")
    return Task(spec)

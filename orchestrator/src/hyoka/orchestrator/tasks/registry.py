"""Tasks by name, read from the TOML definitions shipped in `definitions/`."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources

from pydantic import ValidationError

from hyoka.orchestrator.tasks.loaders import LOADERS
from hyoka.orchestrator.tasks.spec import TaskSpec
from hyoka.orchestrator.tasks.task import Task


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
        if spec.loader not in LOADERS:
            raise RuntimeError(f"task definition {entry.name} names unknown loader {spec.loader!r}")
        specs[spec.name] = spec
    return specs


def available_tasks() -> list[str]:
    return sorted(task_specs())


def get_task(name: str) -> Task:
    spec = task_specs().get(name)
    if spec is None:
        raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(available_tasks())}")
    return Task(spec)

"""From what a user names (tasks, a suite, or dataset folders) to the manifest folders to act on.

A task's folders are the first components of its `data_files` in the task registry, so a new
task definition needs no change here. The manifest's own `tasks` lists are the fallback for tasks
the registry does not (yet) define, and for when the registry cannot be loaded at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from hyoka.orchestrator.datasets.manifest import Manifest


class UnknownNameError(ValueError):
    """A name that is neither a task nor a dataset folder (or an unknown suite)."""


@dataclass(frozen=True)
class Registry:
    """What the task registry says: task -> data files, suite -> tasks; `problem` is set when it
    could not be loaded (a definition being edited must not block data management)."""

    data_files: dict[str, tuple[str, ...]]
    suites: dict[str, tuple[str, ...]]
    problem: str = ""


def load_registry() -> Registry:
    try:
        from hyoka.orchestrator.tasks.registry import SUITES, available_tasks, get_task

        files = {name: tuple(get_task(name).spec.data_files) for name in available_tasks()}
        return Registry(files, dict(SUITES))
    except (ImportError, RuntimeError) as e:
        return Registry({}, {}, f"task registry unavailable ({e}); using the manifest's task lists")


@dataclass(frozen=True)
class Plan:
    folders: tuple[str, ...]  # manifest folders, in the order first named
    # Task data files no manifest entry provides (the task would still find them missing).
    uncovered: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def _dedup(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _covered(relpath: str, manifest: Manifest) -> bool:
    if manifest.entry(relpath) is not None:
        return True
    return any(ch in relpath for ch in "*?[") and any(fnmatchcase(e.relpath, relpath) for e in manifest.files())


def folders_of_task(task: str, manifest: Manifest, registry: Registry) -> tuple[str, ...] | None:
    files = registry.data_files.get(task)
    if files is not None:
        return _dedup(f.split("/", 1)[0] for f in files if f.split("/", 1)[0] in manifest.folders)
    hinted = tuple(name for name, folder in manifest.folders.items() if task in folder.tasks)
    return hinted or None


def tasks_of_folders(manifest: Manifest, registry: Registry) -> dict[str, tuple[str, ...]]:
    """Per folder, the tasks that read it: the registry's, plus the manifest's for tasks the
    registry does not define."""
    result: dict[str, list[str]] = {name: [] for name in manifest.folders}
    for task, files in sorted(registry.data_files.items()):
        for name in _dedup(f.split("/", 1)[0] for f in files):
            if name in result:
                result[name].append(task)
    for name, folder in manifest.folders.items():
        result[name].extend(t for t in folder.tasks if t not in registry.data_files)
    return {name: _dedup(tasks) for name, tasks in result.items()}


def resolve(names: Sequence[str], suite: str | None, manifest: Manifest, registry: Registry) -> Plan:
    """Folders for the given task/folder names and suite. Raises UnknownNameError."""
    wanted: list[str] = []
    if suite is not None:
        if suite not in registry.suites:
            known = ", ".join(sorted(registry.suites)) or "none (the task registry did not load)"
            raise UnknownNameError(f"unknown suite {suite!r}; known suites: {known}")
        wanted.extend(registry.suites[suite])
    wanted.extend(names)
    folders: list[str] = []
    uncovered: list[str] = []
    for name in _dedup(wanted):
        task_folders = folders_of_task(name, manifest, registry)
        if task_folders is not None:
            folders.extend(task_folders)
            uncovered.extend(f for f in registry.data_files.get(name, ()) if not _covered(f, manifest))
        elif name in manifest.folders:
            folders.append(name)
        else:
            tasks = sorted(set(registry.data_files) | {t for f in manifest.folders.values() for t in f.tasks})
            raise UnknownNameError(
                f"unknown task or dataset folder {name!r}; tasks: {', '.join(tasks)}; "
                f"folders: {', '.join(sorted(manifest.folders))}"
            )
    warnings = [registry.problem] if registry.problem else []
    warnings += [f"no source is known for {path} (the manifest does not list it)" for path in _dedup(uncovered)]
    return Plan(_dedup(folders), _dedup(uncovered), tuple(warnings))

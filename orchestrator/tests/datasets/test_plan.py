"""Names to folders: tasks through the registry's data_files, folders by name, the manifest's task
lists for tasks the registry lacks, the `paper` suite, and one clear error for anything else."""

from __future__ import annotations

import pytest

from hyoka.orchestrator.datasets.manifest import load_manifest
from hyoka.orchestrator.datasets.plan import (
    Registry,
    UnknownNameError,
    folders_of_task,
    load_registry,
    resolve,
    tasks_of_folders,
)
from hyoka.orchestrator.tasks.registry import SUITES

PAPER_FOLDERS = {
    "jcommonsenseqa",
    "jemhopqa",
    "niilc",
    "jsquad",
    "xlsum_ja",
    "mgsm",
    "wmt20",
    "jmmlu",
    "jhumaneval",
    "openbookqa",
    "triviaqa",
    "hellaswag",
    "squad2",
    "xwinograd",
    "mmlu",
    "gsm8k",
    "bbh",
    "humaneval",
}


def test_the_paper_suite_plans_every_benchmark_folder() -> None:
    plan = resolve([], "paper", load_manifest(), load_registry())
    assert set(plan.folders) == PAPER_FOLDERS and len(plan.folders) == 18
    assert plan.uncovered == ()
    assert plan.folders[:4] == ("jcommonsenseqa", "jemhopqa", "niilc", "jsquad")


def test_the_manifests_task_lists_alone_also_cover_the_paper() -> None:
    """Without task definitions (the registry empty), the manifest still maps all 19 tasks."""
    plan = resolve([], "paper", load_manifest(), Registry({}, {"paper": SUITES["paper"]}))
    assert set(plan.folders) == PAPER_FOLDERS


def test_the_manifests_task_lists_agree_with_the_registry() -> None:
    manifest, registry = load_manifest(), load_registry()
    hints = Registry({}, {})
    for task in registry.data_files:
        assert folders_of_task(task, manifest, registry) == folders_of_task(task, manifest, hints), task


def test_tasks_folders_and_hints() -> None:
    manifest = load_manifest()
    registry = Registry({"mytask": ("mmlu/test/a_test.csv", "gsm8k/test.jsonl", "nowhere/x.txt")}, {})
    plan = resolve(["mytask", "bbh", "wmt20_en_ja", "bbh"], None, manifest, registry)
    assert plan.folders == ("mmlu", "gsm8k", "bbh", "wmt20")
    assert plan.uncovered == ("mmlu/test/a_test.csv", "nowhere/x.txt")
    assert any("nowhere/x.txt" in w for w in plan.warnings)
    assert tasks_of_folders(manifest, registry)["mmlu"] == ("mytask", "mmlu")


def test_glob_data_files_count_as_covered() -> None:
    registry = Registry({"globby": ("mmlu/test/*_test.csv",)}, {})
    assert resolve(["globby"], None, load_manifest(), registry).uncovered == ()


def test_unknown_names_and_suites_are_input_errors() -> None:
    manifest, registry = load_manifest(), load_registry()
    with pytest.raises(UnknownNameError, match=r"unknown task or dataset folder 'nosuch'; tasks: .*jcommonsenseqa"):
        resolve(["jcommonsenseqa", "nosuch"], None, manifest, registry)
    with pytest.raises(UnknownNameError, match=r"unknown suite 'nope'; known suites: paper"):
        resolve([], "nope", manifest, registry)


def test_a_registry_that_cannot_load_is_a_warning_not_a_failure() -> None:
    broken = Registry({}, {}, "task registry unavailable (boom); using the manifest's task lists")
    plan = resolve(["mgsm_ja"], None, load_manifest(), broken)
    assert plan.folders == ("mgsm",) and "boom" in plan.warnings[0]

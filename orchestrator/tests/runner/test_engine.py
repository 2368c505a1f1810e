"""The run engine with the scripted backend: batch sizes, extraction and scoring, resumption."""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from hyoka.orchestrator.backends.base import BackendError, GenerationRequest
from hyoka.orchestrator.backends.scripted import ScriptedBackend
from hyoka.orchestrator.runner.engine import run_task
from hyoka.orchestrator.runner.records import RecordsError
from hyoka.orchestrator.tasks import Scorers, get_task


class BatchRecordingBackend(ScriptedBackend):
    """The scripted backend, remembering how many requests each call carried."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.batch_sizes: list[int] = []

    async def generate_until(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        self.batch_sizes.append(len(requests))
        return await super().generate_until(requests)


async def test_exact_match_extraction_and_batches_sized_by_capabilities(
    data_dir: Path, tmp_path: Path, inprocess_metrics: Any
) -> None:
    task = get_task("jcommonsenseqa")
    items = task.items(task.load(data_dir), limit=7)
    golds = {it.prompt: it.gold for it in items}
    # Correct digit then a blank line and junk: only the text before the blank line counts.
    # Items 0-3 get a full-width digit (NFKC makes it right), 4-6 a leading space (wrong: nothing is stripped).
    wrong_from = items[4].prompt

    def script(r: GenerationRequest) -> str:
        gold = golds[r.context]
        if r.context == wrong_from or r.context in {it.prompt for it in items[5:]}:
            return f" {gold}\n\n### 入力:"
        return chr(ord("０") + int(gold)) + "\n\nnext"

    backend = BatchRecordingBackend(generations=script, max_concurrency=3, batched=True)
    result = await run_task(
        task, items, backend, Scorers(metrics=inprocess_metrics), tmp_path / "r.jsonl", model="scripted"
    )
    assert backend.batch_sizes == [3, 3, 1]
    assert result.num_items == 7 and result.score == pytest.approx(4 / 7)
    records = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()]
    by_index = {r["index"]: r for r in records}
    assert by_index[0]["extracted"] == items[0].gold and by_index[0]["score"] == 1.0
    assert by_index[6]["extracted"] == " " + items[6].gold and by_index[6]["score"] == 0.0
    assert set(by_index[0]) >= {"prompt", "output", "extracted", "gold", "score"}


async def test_loglikelihood_accuracy_picks_the_first_best(data_dir: Path, tmp_path: Path) -> None:
    task = get_task("xwino_en")
    items = task.items(task.load(data_dir), limit=4)
    # Score the gold choice higher for items 0 and 1, the other one for item 2, a tie for item 3.
    scores: dict[tuple[str, str], float] = {}
    for n, it in enumerate(items):
        gold = int(it.gold)
        for i, req in enumerate(it.loglikelihood):
            if n < 2:
                scores[(req.context, req.continuation)] = -1.0 if i == gold else -5.0
            elif n == 2:
                scores[(req.context, req.continuation)] = -5.0 if i == gold else -1.0
            else:
                scores[(req.context, req.continuation)] = -2.0
    backend = ScriptedBackend(loglikelihoods=scores, max_concurrency=2)
    result = await run_task(task, items, backend, Scorers(), tmp_path / "x.jsonl", model="scripted")
    tie_gold = int(items[3].gold)
    assert result.score == pytest.approx((2 + (1 if tie_gold == 0 else 0)) / 4)
    assert len(backend.loglikelihood_calls) == 8


async def test_interrupted_run_resumes_without_redoing_items(
    data_dir: Path, tmp_path: Path, inprocess_metrics: Any
) -> None:
    task = get_task("jcommonsenseqa")
    items = task.items(task.load(data_dir), limit=6)
    golds = {it.prompt: it.gold for it in items}
    path = tmp_path / "r.jsonl"
    calls = 0

    def dies_on_second_batch(r: GenerationRequest) -> str:
        nonlocal calls
        calls += 1
        if calls > 2:
            raise BackendError("server went away")
        return golds[r.context]

    with pytest.raises(BackendError, match="went away"):
        await run_task(
            task,
            items,
            ScriptedBackend(generations=dies_on_second_batch, max_concurrency=2),
            Scorers(metrics=inprocess_metrics),
            path,
            model="scripted",
        )
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2

    backend = ScriptedBackend(generations=lambda r: golds[r.context], max_concurrency=2)
    result = await run_task(task, items, backend, Scorers(metrics=inprocess_metrics), path, model="scripted")
    assert result.num_resumed == 2 and result.num_items == 6 and result.score == 1.0
    assert [r.context for r in backend.generation_calls] == [it.prompt for it in items[2:]]

    again = ScriptedBackend(generations=lambda r: golds[r.context])
    await run_task(task, items, again, Scorers(metrics=inprocess_metrics), path, model="scripted")
    assert again.generation_calls == []


async def test_records_of_other_settings_are_refused(data_dir: Path, tmp_path: Path, inprocess_metrics: Any) -> None:
    task = get_task("jcommonsenseqa")
    items = task.items(task.load(data_dir), limit=1)
    path = tmp_path / "r.jsonl"
    await run_task(
        task, items, ScriptedBackend(default="0"), Scorers(metrics=inprocess_metrics), path, model="scripted:a"
    )
    with pytest.raises(RecordsError, match="other settings"):
        await run_task(
            task, items, ScriptedBackend(default="0"), Scorers(metrics=inprocess_metrics), path, model="scripted:b"
        )


def test_generation_only_backend_is_incompatible_with_loglikelihood_tasks() -> None:
    caps = ScriptedBackend(default="x").capabilities
    assert get_task("xwino_en").incompatibilities(caps)
    assert get_task("jcommonsenseqa").incompatibilities(caps) == []


def test_batch_size_counts_sampled_sequences(data_dir: Path) -> None:
    from hyoka.orchestrator.runner.engine import batch_size_for

    code = get_task("jhumaneval")
    code_items = code.items(code.load(data_dir), limit=2)
    qa = get_task("jcommonsenseqa")
    qa_items = qa.items(qa.load(data_dir), limit=2)
    assert batch_size_for(code_items, 8) == 1  # 10 samples per item already fill 8 slots
    assert batch_size_for(code_items, 128) == 12
    assert batch_size_for(qa_items, 8) == 8
    assert batch_size_for(qa_items, 0) == 1

"""Task scoring and aggregation: the mean of item scores with per-group means, a corpus score
over every record, and texts tokenised by the model's tokenizer where the harness does that."""

from __future__ import annotations

from typing import Any

import pytest

from hyoka.metrics import Item as MetricItem
from hyoka.metrics import score
from hyoka.orchestrator.backends.tokenizers import load_tokenizer
from hyoka.orchestrator.tasks import Scorers, Task, TaskSpec, get_task
from hyoka.orchestrator.tasks.task import TOKEN_SEPARATOR


def _variant(name: str, **changes: Any) -> Task:
    spec = get_task(name).spec.model_dump()
    spec.update(changes)
    return Task(TaskSpec.model_validate(spec))


async def test_mean_of_item_scores_with_group_means() -> None:
    task = _variant("jcommonsenseqa", groups=True)
    records = [
        {"score": 1.0, "group": "a"},
        {"score": 0.0, "group": "a"},
        {"score": 1.0, "group": "b"},
        {"score": 1.0, "group": "a", "details": {"signature": "sig"}},
    ]
    result = await task.aggregate(records, Scorers())
    assert result.score == 0.75  # item-weighted, not the mean of the group means (0.83)
    assert result.groups == {"a": pytest.approx(2 / 3), "b": 1.0}
    assert result.signatures == ("sig",)


async def test_corpus_metric_scores_all_records_at_once(inprocess_metrics: Any) -> None:
    task = _variant("niilc", metric={"name": "bleu", "options": {"tokenize": "13a"}, "corpus": True})
    records = [
        {"extracted": "the cat sat on the mat", "gold": "the cat sat on the mat", "score": None},
        {"extracted": "a dog ran", "gold": "the dog ran far", "references": ["the dog ran far", "a dog ran off"]},
    ]
    result = await task.aggregate(records, Scorers(metrics=inprocess_metrics))
    expected = score(
        "bleu",
        [
            MetricItem("the cat sat on the mat", ("the cat sat on the mat",)),
            MetricItem("a dog ran", ("the dog ran far", "a dog ran off")),
        ],
        {"tokenize": "13a"},
    )
    assert result.score == expected.corpus_score
    assert result.signatures == (expected.signature.text,)


def test_model_tokenizer_texts_are_its_tokens_joined() -> None:
    task = _variant(
        "niilc",
        needs_tokenizer=True,
        metric={"name": "rouge2", "options": {"aggregate": "bootstrap_mid"}, "corpus": True, "model_tokenizer": True},
    )
    tokenizer = load_tokenizer("smollm2")
    texts = task._for_metric(["日本語の要約です。", ""], Scorers(tokenizer=tokenizer))
    assert texts == [TOKEN_SEPARATOR.join(tokenizer.tokenize("日本語の要約です。")), ""]
    assert task._options() == {"aggregate": "bootstrap_mid", "tokenizer": "pretokenized"}
    with pytest.raises(RuntimeError, match="model's tokenizer"):
        task._for_metric(["x"], Scorers())


def test_model_tokenizer_needs_needs_tokenizer() -> None:
    with pytest.raises(ValueError, match="needs_tokenizer"):
        _variant("niilc", metric={"name": "rouge2", "model_tokenizer": True})
    with pytest.raises(ValueError, match="metrics-service"):
        _variant("xwino_en", metric={"name": "acc", "corpus": True})

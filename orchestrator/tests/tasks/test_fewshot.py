"""Few-shot selection against the check values of ../shared/datasets/FEWSHOT.md."""

import random
from pathlib import Path

import pytest

from hyoka.orchestrator.tasks.fewshot import LmEvalDefaultSampler, llm_jp_eval_shots
from hyoka.orchestrator.tasks.loaders import LOADERS


def test_llm_jp_eval_jcommonsenseqa_shots_and_split_sizes(data_dir: Path) -> None:
    pool = LOADERS["jcommonsenseqa"](data_dir).fewshot_pool
    assert len(pool) == 8939
    shots = llm_jp_eval_shots(pool, 4)
    assert [(s["q_id"], s["label"]) for s in shots] == [(1011, 3), (4986, 2), (4239, 4), (1005, 2)]
    # FEWSHOT.md A.7: train 8,045 of 8,939 -> the shots come from the first 90% of the shuffle.
    assert len(llm_jp_eval_shots(pool, 10_000)) == 8045


def test_llm_jp_eval_niilc_shots(data_dir: Path) -> None:
    data = LOADERS["niilc"](data_dir)
    assert (len(data.fewshot_pool), len(data.test)) == (795, 198)
    shots = llm_jp_eval_shots(data.fewshot_pool, 4)
    assert [(s["id"], s["answer"]) for s in shots] == [
        ("NIILC-ECQA2015-00728-01", "モモ"),
        ("NIILC-ECQA2015-00821-01", "ニコチン"),
        ("NIILC-ECQA2015-00943-01", "明治"),
        ("NIILC-ECQA2015-00389-01", "1400分"),
    ]
    assert len(llm_jp_eval_shots(data.fewshot_pool, 10_000)) == 715


@pytest.mark.parametrize(
    ("pool_size", "expected"),
    [
        (2325, [[1805, 478, 30, 371], [143, 343, 403, 1452], [969, 71, 126, 64]]),  # xwinograd_en
        (7473, [[6374, 3610, 957, 61], [742, 7462, 6610, 4769], [286, 5501, 5677, 687]]),  # gsm8k
        (130_319, [[126674, 101995, 57767, 15315], [981, 11880, 119403, 123539], [123111, 105775, 76313, 4577]]),
    ],
)
def test_lm_eval_default_sampler_positions(pool_size: int, expected: list[list[int]]) -> None:
    sampler = LmEvalDefaultSampler(list(range(pool_size)), seed=1234)
    assert [sampler.draw(4) for _ in range(3)] == expected


def test_lm_eval_sampler_drops_the_current_document_without_replacement() -> None:
    pool = [{"x": i} for i in range(5)]
    sampler = LmEvalDefaultSampler(pool, seed=1234)
    positions = random.Random(1234).sample(range(5), 4)
    current = pool[positions[1]]
    shots = sampler.shots(current, 4)
    assert shots == [pool[p] for p in positions if p != positions[1]]
    assert len(shots) == 3


def test_lm_eval_sampler_draws_one_more_when_fewshot_split_is_the_test_split() -> None:
    pool = [{"x": i} for i in range(50)]
    sampler = LmEvalDefaultSampler(pool, seed=1234)
    positions = random.Random(1234).sample(range(50), 5)
    other = {"x": -1}
    assert sampler.shots(other, 4, fewshot_split_is_test_split=True) == [pool[p] for p in positions[:4]]


def test_xwino_items_follow_the_sampler_in_document_order(data_dir: Path) -> None:
    from hyoka.orchestrator.tasks import get_task

    task = get_task("xwino_en")
    data = task.load(data_dir)
    items = task.items(data, limit=3)
    for item, positions in zip(items, [[1805, 478, 30, 371], [143, 343, 403, 1452], [969, 71, 126, 64]], strict=True):
        for p in positions:
            shot_sentence = data.test[p]["sentence"]
            assert shot_sentence[shot_sentence.index("_") + 1 :].strip() in item.prompt

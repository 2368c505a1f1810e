"""The garbage-collector pause around scoring always restores the collector."""

from __future__ import annotations

import gc
import threading
from collections.abc import Sequence

import pytest

from hyoka.metrics import Item, ItemScores, score
from hyoka.metrics.base import Metric, gc_paused
from hyoka.metrics.signature import Signature


def test_gc_is_back_after_scoring() -> None:
    assert gc.isenabled()
    score("rouge2", [Item("今日は晴れ", ("今日は雨",))])
    assert gc.isenabled()


def test_gc_is_back_after_an_error() -> None:
    class Failing(Metric):
        name = "failing"

        def score_items(self, items: Sequence[Item]) -> ItemScores:
            assert not gc.isenabled()
            raise RuntimeError("boom")

        def signature(self, scores: ItemScores | None = None) -> Signature:
            return Signature(self.name)

    with pytest.raises(RuntimeError):
        Failing({}).score([Item("a", ("a",))])
    assert gc.isenabled()


def test_nested_pauses_across_threads() -> None:
    inner_entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            inner_entered.set()
            release.wait(5)

    with gc_paused():
        thread = threading.Thread(target=other)
        thread.start()
        inner_entered.wait(5)
    assert not gc.isenabled()  # the other thread is still scoring
    release.set()
    thread.join()
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()

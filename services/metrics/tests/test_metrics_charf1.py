"""Parity of the char F1 metrics with their reference implementations, called directly."""

from __future__ import annotations

import statistics
import unicodedata

import pytest
from fuzzywuzzy import fuzz
from fuzzywuzzy.StringMatcher import StringMatcher

from hyoka.metrics import Item, get_metric, score
from hyoka.metrics.base import Pairs
from hyoka.metrics.charf1 import squad_f1


def llmjp_char_f1(prediction: str, gold: str) -> float:
    """llm-jp-eval 1.3.0 `get_evaluation_result`: NFKC of the output before the first blank line."""
    y_pred = unicodedata.normalize("NFKC", prediction.split("\n\n")[0])
    y_true = unicodedata.normalize("NFKC", gold)
    return fuzz.token_sort_ratio(y_pred, y_true) / 100.0


def test_fuzzywuzzy_uses_python_levenshtein_as_llm_jp_eval_installs_it() -> None:
    # llm-jp-eval 1.3.0 pins python-levenshtein 0.21.1; without it fuzzywuzzy falls back to difflib.
    assert fuzz.SequenceMatcher is StringMatcher


def test_char_f1_fuzzywuzzy_matches_llm_jp_eval(pairs: list[tuple[str, str]]) -> None:
    expected = [llmjp_char_f1(p, r) for p, r in pairs]
    result = score("char_f1_fuzzywuzzy", [Item(p, (r,)) for p, r in pairs])
    assert result.item_scores == pytest.approx(expected, abs=1e-9)
    assert result.corpus_score == pytest.approx(statistics.mean(expected), abs=1e-9)
    assert 0.2 < result.corpus_score < 0.9  # the pairs are neither all equal nor all disjoint
    assert "matcher:python-levenshtein-0.21" in result.signature.text


def test_char_f1_fuzzywuzzy_on_pairs_matches_llm_jp_eval(pairs: list[tuple[str, str]]) -> None:
    # Pairs (the server's form for columns with one reference each) skip the Items entirely
    expected = [llmjp_char_f1(p, r) for p, r in pairs]
    result = score("char_f1_fuzzywuzzy", Pairs([p for p, _ in pairs], [r for _, r in pairs]))
    assert result.item_scores == pytest.approx(expected, abs=1e-9)
    assert result.corpus_score == pytest.approx(statistics.mean(expected), abs=1e-9)


def test_char_f1_fuzzywuzzy_takes_the_best_of_several_references(pairs: list[tuple[str, str]]) -> None:
    items = [Item(p, (r, p[: len(p) // 2], "")) for p, r in pairs[:300]]
    expected = [max(llmjp_char_f1(it.prediction, ref) for ref in it.references) for it in items]
    assert score("char_f1_fuzzywuzzy", items).item_scores == pytest.approx(expected, abs=1e-9)


def test_char_f1_fuzzywuzzy_item_scores_follow_their_own_references() -> None:
    # 0 + 2 references add up to one per item: only items with exactly one each are plain pairs
    # (score_items is given the batch unchecked here, as Metric.score's check would refuse item 0)
    metric = get_metric("char_f1_fuzzywuzzy", {})
    assert metric.score_items([Item("東京", ()), Item("東京", ("東京", "大阪"))]).scores == [0.0, 1.0]


def test_char_f1_fuzzywuzzy_rounds_exactly_like_fuzzywuzzy() -> None:
    # Every ratio 2c / (n1 + n2) for lengths up to 40: fuzzywuzzy rounds 100 * ratio half-to-even,
    # and 100 * 0.575 is 57.49999999999999, so any loss of precision (e.g. float32) shows here.
    items = [
        Item("a" * n1, ("a" * c + "b" * (n2 - c),))
        for n1 in range(1, 41)
        for n2 in range(1, 41)
        for c in range(0, min(n1, n2) + 1)
    ]
    expected = [fuzz.token_sort_ratio(it.prediction, it.references[0]) / 100.0 for it in items]
    assert score("char_f1_fuzzywuzzy", items).item_scores == expected


def test_char_f1_fuzzywuzzy_difflib_matcher(pairs: list[tuple[str, str]]) -> None:
    import difflib

    from fuzzywuzzy import utils

    def difflib_ratio(a: str, b: str) -> float:
        # fuzzywuzzy 0.18.0 `token_sort_ratio` with difflib's SequenceMatcher (no python-Levenshtein)
        a = fuzz._process_and_sort(unicodedata.normalize("NFKC", a.split("\n\n")[0]), True, True)
        b = fuzz._process_and_sort(unicodedata.normalize("NFKC", b), True, True)
        if a == b:
            return 1.0
        if not a or not b:
            return 0.0
        return utils.intr(100 * difflib.SequenceMatcher(None, a, b).ratio()) / 100.0

    subset = pairs[:500]
    result = score("char_f1_fuzzywuzzy", [Item(p, (r,)) for p, r in subset], {"matcher": "difflib"})
    assert result.item_scores == pytest.approx([difflib_ratio(p, r) for p, r in subset], abs=1e-9)


def test_char_f1_fuzzywuzzy_options_and_multiple_references() -> None:
    items = [Item("ｶﾀｶﾅ\n\n余計な文", ("カタカナ", "別")), Item("ABC", ("x", "abc"))]
    assert score("char_f1_fuzzywuzzy", items).item_scores == [1.0, 1.0]
    raw = score("char_f1_fuzzywuzzy", items, {"normalize": "none", "extract": "none"}).item_scores
    assert raw[0] < 1.0 and raw[1] == 1.0


def test_char_f1_squad() -> None:
    result = score("char_f1_squad", [Item("東京都。", ("東京",)), Item("", ("a",)), Item("Ａｂ", ("ab",))])
    # "東京都" vs "東京": 2 common characters, precision 2/3, recall 1
    assert result.item_scores == pytest.approx([squad_f1(list("東京都"), list("東京")), 0.0, 1.0])
    assert result.item_scores[0] == pytest.approx(0.8)

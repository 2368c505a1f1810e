"""Parity of BLEU with sacrebleu called directly, for each tokenizer hyoka offers."""

from __future__ import annotations

import fugashi
import pytest
import sacrebleu

from hyoka.metrics import Item, score


def _items(pairs: list[tuple[str, str]]) -> list[Item]:
    return [Item(p, (r,)) for p, r in pairs]


@pytest.mark.parametrize("tokenize", ["13a", "ja-mecab", "char", "intl"])
def test_bleu_matches_sacrebleu(pairs: list[tuple[str, str]], tokenize: str) -> None:
    preds = [p for p, _ in pairs]
    refs = [r for _, r in pairs]
    expected = sacrebleu.corpus_bleu(preds, [refs], tokenize=tokenize)
    result = score("bleu", _items(pairs), {"tokenize": tokenize})
    assert result.corpus_score == pytest.approx(expected.score / 100, abs=1e-9)
    assert 0.05 < result.corpus_score < 0.95
    # item scores are sentence BLEU (effective order, exp smoothing)
    expected_items = [sacrebleu.sentence_bleu(p, [r], tokenize=tokenize).score / 100 for p, r in pairs]
    assert result.item_scores == pytest.approx(expected_items, abs=1e-9)
    assert result.details["bp"] == pytest.approx(expected.bp)
    assert result.signature.as_dict()["tok"] == sacrebleu.BLEU(tokenize=tokenize).tokenizer.signature()
    assert result.signature.as_dict()["version"] == sacrebleu.__version__


def test_bleu_mecab_segmentation_then_13a(pairs: list[tuple[str, str]]) -> None:
    tagger = fugashi.Tagger("-Owakati")

    def segment(text: str) -> str:
        return " ".join(tagger.parse(text).split())

    segmented = [(segment(p), segment(r)) for p, r in pairs]
    expected = sacrebleu.corpus_bleu([p for p, _ in segmented], [[r for _, r in segmented]])
    result = score("bleu", _items(pairs), {"tokenize": "mecab-13a"})
    assert result.corpus_score == pytest.approx(expected.score / 100, abs=1e-9)
    expected_items = [sacrebleu.sentence_bleu(p, [r]).score / 100 for p, r in segmented]
    assert result.item_scores == pytest.approx(expected_items, abs=1e-9)
    assert result.signature.as_dict()["dict"].startswith("unidic-lite-")


@pytest.mark.slow
def test_bleu_nagisa_segmentation_as_the_jp_fork(pairs: list[tuple[str, str]]) -> None:
    nagisa = pytest.importorskip("nagisa")
    subset = pairs[:400]

    def ja_split(text: str) -> str:  # lm-evaluation-harness-jp lm_eval/tasks/translation.py
        return " ".join(nagisa.tagging(text.strip()).words)

    segmented = [(ja_split(p), ja_split(r)) for p, r in subset]
    expected = sacrebleu.corpus_bleu([p for p, _ in segmented], [[r for _, r in segmented]])
    result = score("bleu", _items(subset), {"tokenize": "nagisa-13a"})
    assert result.corpus_score == pytest.approx(expected.score / 100, abs=1e-9)
    expected_items = [sacrebleu.sentence_bleu(p, [r]).score / 100 for p, r in segmented]
    assert result.item_scores == pytest.approx(expected_items, abs=1e-9)


def test_bleu_variable_reference_counts_match_sacrebleu() -> None:
    items = [
        Item("the cat sat on the mat", ("the cat is on the mat", "a cat sat on the mat")),
        Item("hello there world", ("hello world",)),
        Item("今日は晴れです", ("今日は晴れ", "本日は晴天です", "晴れ")),
    ]
    streams = [[it.references[i] if i < len(it.references) else None for it in items] for i in range(3)]
    expected = sacrebleu.corpus_bleu([it.prediction for it in items], streams, tokenize="ja-mecab")
    result = score("bleu", items, {"tokenize": "ja-mecab"})
    assert result.corpus_score == pytest.approx(expected.score / 100, abs=1e-9)
    assert result.signature.as_dict()["nrefs"] == "var"
    for item, got in zip(items, result.item_scores, strict=True):
        want = sacrebleu.sentence_bleu(item.prediction, list(item.references), tokenize="ja-mecab").score / 100
        assert got == pytest.approx(want, abs=1e-9)

"""Parity of ROUGE with rouge_score called directly with the same tokenizers, and of the
bootstrap mid F with the Japanese lm-eval fork's `rouge2_mecab` aggregation."""

from __future__ import annotations

import re

import numpy as np
import pytest
from fugashi import Tagger
from rouge_score import rouge_scorer, scoring

from hyoka.metrics import Item, score


class ForkMecabTokenizer:
    """lm-evaluation-harness-jp `lm_eval/tasks/ja/__init__.py` MecabTokenizer, transcribed."""

    def __init__(self, normalize: bool) -> None:
        self.tagger = Tagger("-Owakati")
        self.normalize = normalize

    def normalize_answer(self, text: str) -> str:
        import emoji
        import neologdn

        text = "".join(["" if emoji.is_emoji(c) else c for c in text])
        pattern = re.compile(
            "[\U0001f600-\U0001f64f\U0001f300-\U0001f5ff\U0001f680-\U0001f6ff\U0001f1e0-\U0001f1ff\U00002702-\U000027b0]+",
            flags=re.UNICODE,
        )
        text = pattern.sub(r"", text)
        text = neologdn.normalize(text)
        return " ".join(text.split())

    def tokenize(self, text: str) -> list[str]:
        return self.tagger.parse(self.normalize_answer(text) if self.normalize else text).split()


def _reference_scores(pairs: list[tuple[str, str]], rouge_type: str, tokenizer: object) -> list[float]:
    scorer = rouge_scorer.RougeScorer([rouge_type], tokenizer=tokenizer)
    return [scorer.score(ref, pred)[rouge_type].fmeasure for pred, ref in pairs]


@pytest.mark.parametrize("rouge_type", ["rouge1", "rouge2", "rougeL"])
@pytest.mark.parametrize("tokenizer", ["mecab", "mecab-jlmeval"])
def test_rouge_matches_rouge_score(pairs: list[tuple[str, str]], rouge_type: str, tokenizer: str) -> None:
    reference = ForkMecabTokenizer(normalize=tokenizer == "mecab-jlmeval")
    expected = _reference_scores(pairs, rouge_type, reference)
    result = score(rouge_type, [Item(p, (r,)) for p, r in pairs], {"tokenizer": tokenizer})
    assert result.item_scores == pytest.approx(expected, abs=1e-9)
    assert result.corpus_score == pytest.approx(float(np.mean(expected)), abs=1e-9)
    assert 0.05 < result.corpus_score < 0.95


def test_rouge_default_tokenizer_matches_rouge_score(pairs: list[tuple[str, str]]) -> None:
    english = [(p, r) for p, r in pairs if any("a" <= c.lower() <= "z" for c in r)][:800]
    scorer = rouge_scorer.RougeScorer(["rouge2"], use_stemmer=True)
    expected = [scorer.score(r, p)["rouge2"].fmeasure for p, r in english]
    result = score("rouge2", [Item(p, (r,)) for p, r in english], {"tokenizer": "default", "use_stemmer": "true"})
    assert result.item_scores == pytest.approx(expected, abs=1e-9)


def test_rouge2_bootstrap_mid_matches_the_fork_aggregation(pairs: list[tuple[str, str]]) -> None:
    # lm-evaluation-harness-jp lm_eval/utils.py rouge2_mecab, with numpy's global seed fixed
    scorer = rouge_scorer.RougeScorer(["rouge2"], tokenizer=ForkMecabTokenizer(normalize=True))
    aggregator = scoring.BootstrapAggregator()
    for pred, ref in pairs:
        aggregator.add_scores(scorer.score(ref, pred))
    np.random.seed(7)
    expected = aggregator.aggregate()["rouge2"]
    result = score(
        "rouge2",
        [Item(p, (r,)) for p, r in pairs],
        {"tokenizer": "mecab-jlmeval", "aggregate": "bootstrap_mid", "seed": "7"},
    )
    assert result.corpus_score == pytest.approx(expected.mid.fmeasure, abs=1e-9)
    assert result.details["low"] == pytest.approx(expected.low.fmeasure, abs=1e-9)
    assert result.details["high"] == pytest.approx(expected.high.fmeasure, abs=1e-9)
    assert "seed:7" in result.signature.text


def test_rouge_multiple_references_take_the_best_as_score_multi() -> None:
    tokenizer = ForkMecabTokenizer(normalize=False)
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=tokenizer)
    item = Item("今日は東京で雨が降った", ("昨日は大阪で晴れた", "今日は東京で雨が降りました"))
    expected = scorer.score_multi(list(item.references), item.prediction)["rougeL"].fmeasure
    assert score("rougeL", [item]).item_scores == pytest.approx([expected], abs=1e-12)


class SubwordTokenizer:
    """A stand-in for a Hugging Face tokenizer's `tokenize`: deterministic subword-like pieces (runs
    of up to 3 characters, whitespace kept on the following piece, as byte-level BPE does)."""

    def tokenize(self, text: str) -> list[str]:
        pieces: list[str] = []
        for word in re.findall(r"\s*\S+", text):
            pieces.extend(word[i : i + 3] for i in range(0, len(word), 3))
        return pieces


def _pretokenized(text: str) -> str:
    return "\x1f".join(SubwordTokenizer().tokenize(text))


def test_rouge_pretokenized_matches_rouge_score_with_the_same_tokens(pairs: list[tuple[str, str]]) -> None:
    for rouge_type in ("rouge1", "rouge2", "rougeL"):
        expected = _reference_scores(pairs, rouge_type, SubwordTokenizer())
        items = [Item(_pretokenized(p), (_pretokenized(r),)) for p, r in pairs]
        result = score(rouge_type, items, {"tokenizer": "pretokenized"})
        assert result.item_scores == pytest.approx(expected, abs=1e-9)
        assert 0.05 < result.corpus_score < 0.95


def test_rouge2_pretokenized_bootstrap_mid_matches_the_fork_with_a_model_tokenizer(
    pairs: list[tuple[str, str]],
) -> None:
    # The fork's XL-Sum: rouge2_mecab(refs, preds, tokenizer=<the model's HF tokenizer>) after
    # simple_evaluate's np.random.seed(1234).
    scorer = rouge_scorer.RougeScorer(["rouge2"], tokenizer=SubwordTokenizer())
    aggregator = scoring.BootstrapAggregator()
    for pred, ref in pairs:
        aggregator.add_scores(scorer.score(ref, pred))
    np.random.seed(1234)
    expected = aggregator.aggregate()["rouge2"]
    result = score(
        "rouge2",
        [Item(_pretokenized(p), (_pretokenized(r),)) for p, r in pairs],
        {"tokenizer": "pretokenized", "aggregate": "bootstrap_mid"},
    )
    assert result.corpus_score == pytest.approx(expected.mid.fmeasure, abs=1e-9)
    assert result.details["low"] == pytest.approx(expected.low.fmeasure, abs=1e-9)
    assert result.details["high"] == pytest.approx(expected.high.fmeasure, abs=1e-9)
    assert "tok:pretokenized" in result.signature.text and "seed:1234" in result.signature.text


def test_rouge_pretokenized_splits_on_the_separator_only() -> None:
    # Tokens are taken as given: no lower-casing, no dropping of non-alphanumerics; "" has none.
    hit = score("rouge2", [Item("今日\x1fは\x1f晴れ", ("今日\x1fは\x1f雨",))], {"tokenizer": "pretokenized"})
    assert hit.item_scores == pytest.approx([0.5])  # one of two bigrams on each side
    case = score("rouge1", [Item("The\x1f cat", ("the\x1f cat",))], {"tokenizer": "pretokenized"})
    assert case.item_scores == pytest.approx([0.5])
    empty = score("rouge1", [Item("", ("a\x1fb",)), Item("a", ("",))], {"tokenizer": "pretokenized"})
    assert empty.item_scores == [0.0, 0.0]

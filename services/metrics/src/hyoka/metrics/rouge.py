"""ROUGE-1/2/L F-measure as rouge_score computes it, with Japanese tokenizers, and the
bootstrap-aggregated "mid" F-measure that the Japanese lm-eval fork reports for XL-Sum.

Options:
- `tokenizer`: `default` (rouge_score's `DefaultTokenizer`: lower case, non-alphanumerics to
  spaces, optional Porter stemmer — it drops Japanese characters entirely), `mecab` (fugashi +
  unidic-lite wakati), `mecab-jlmeval` (the fork's `MecabTokenizer`: emoji removal, neologdn, then
  MeCab), `nagisa` when installed, `pretokenized`: the caller tokenised already and joined the
  tokens with U+001F (`PRETOKENIZED_SEPARATOR`); the text is split on it (an empty text has no
  tokens). The fork's XL-Sum task sets `LOAD_TOKENIZER = True`, which replaces its MeCab tokenizer
  with the evaluated model's Hugging Face tokenizer (`tokenizer.tokenize(text)` subword strings):
  the orchestrator tokenises with that model tokenizer and sends `pretokenized` texts.
- `use_stemmer` (default tokenizer only).
- `aggregate`: `mean` of item F, or `bootstrap_mid`: the fork's `rouge2_mecab` —
  `scoring.BootstrapAggregator()` (1,000 resamples, 95% interval) `.aggregate()[type].mid.fmeasure`.
  rouge_score draws the resamples with numpy's global `np.random.choice` unseeded; here the draws
  come from `np.random.RandomState(seed)` (option `seed`, default 1234), which is what rouge_score
  gives after `np.random.seed(seed)`. The fork's `simple_evaluate` calls `np.random.seed(1234)` before
  it loads the model, and nothing in between draws from numpy's global generator on code reading, so
  1234 reproduces its XL-Sum draws. `details` carries the interval's `low` and `high`.

Each item's score is `RougeScorer.score_multi(references, prediction)[type].fmeasure` (the best
reference by F). Tokenisation is cached per distinct string; n-gram overlap is counted as
rouge_score counts it and the LCS comes from rapidfuzz's `LCSseq` over token sequences, which gives
the same length as rouge_score's dynamic-programming table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any, NamedTuple

import numpy as np
from rapidfuzz.distance import LCSseq
from rouge_score import scoring, tokenizers

from hyoka.metrics.base import Item, ItemScores, Metric
from hyoka.metrics.signature import Signature, package_version
from hyoka.metrics.tokenizers import SEGMENTERS, nagisa_available, segmenter_fields

BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_CONFIDENCE = 0.95


#: Separates the tokens of a `tokenizer=pretokenized` text.
PRETOKENIZED_SEPARATOR = "\x1f"
PRETOKENIZED = "pretokenized"


def rouge_tokenizers() -> tuple[str, ...]:
    segmenters = ("mecab", "mecab-jlmeval", "nagisa") if nagisa_available() else ("mecab", "mecab-jlmeval")
    return ("default", *segmenters, PRETOKENIZED)


def pretokenized_tokens(text: str) -> list[str]:
    """The tokens of a text tokenised by the caller (joined by U+001F); "" has none."""
    return text.split(PRETOKENIZED_SEPARATOR) if text else []


class SegmenterTokenizer(tokenizers.Tokenizer):  # type: ignore[misc]
    """A rouge_score tokenizer over one of hyoka's segmenters (for reference use and tests)."""

    def __init__(self, name: str) -> None:
        self._segment = SEGMENTERS[name]

    def tokenize(self, text: str) -> list[str]:
        return self._segment(text)


def _f(overlap: int, prediction_count: int, target_count: int) -> float:
    precision = overlap / max(prediction_count, 1)
    recall = overlap / max(target_count, 1)
    return float(scoring.fmeasure(precision, recall))


class NgramProfile(NamedTuple):
    """A text's n-grams as rouge_score's `_create_ngrams` counts them, and their number. (A
    NamedTuple: one is built per distinct text, and a frozen dataclass costs far more to build.)"""

    total: int
    counts: Counter[Any]


def ngram_profile(tokens: list[str], n: int) -> NgramProfile:
    if n == 1:
        counts: Counter[Any] = Counter(tokens)
    elif n == 2:
        counts = Counter(pairwise(tokens))
    else:
        counts = Counter(zip(*[tokens[i:] for i in range(n)], strict=False))
    return NgramProfile(max(len(tokens) - n + 1, 0), counts)


def _ngram_f(target: NgramProfile, prediction: NgramProfile) -> float:
    """rouge_score `_score_ngrams`: the clipped overlap sum(min(count_t, count_p)). When either side
    has no repeated n-gram every min is 1, so the overlap is the size of the key intersection."""
    t, p = target.counts, prediction.counts
    if len(t) == target.total or len(p) == prediction.total:
        overlap = len(t.keys() & p.keys())
    else:
        overlap = sum(min(count, p[g]) for g, count in t.items() if g in p)
    return _f(overlap, prediction.total, target.total)


def _lcs_f(target: list[str], prediction: list[str]) -> float:
    if not target or not prediction:
        return 0.0
    lcs = int(LCSseq.similarity(target, prediction))
    precision = lcs / len(prediction)
    recall = lcs / len(target)
    return float(scoring.fmeasure(precision, recall))


def bootstrap_interval(fmeasures: Sequence[float], seed: int) -> tuple[float, float, float]:
    """rouge_score `BootstrapAggregator._bootstrap_resample` on the F column, with seeded draws.

    rouge_score draws `np.random.choice(np.arange(n), size=n)` once per resample; those are
    `randint(0, n, n)` calls on one RandomState stream, so one `randint(0, n, (samples, n))` call
    yields the same indices.
    """
    values = np.asarray(fmeasures, dtype=np.float64)
    rng = np.random.RandomState(seed)
    indices = rng.randint(0, len(values), size=(BOOTSTRAP_SAMPLES, len(values)))
    sample_means = values[indices].mean(axis=1)
    delta = (1 - BOOTSTRAP_CONFIDENCE) / 2
    low, mid, high = np.percentile(sample_means, 100 * np.array([delta, 0.5, 1 - delta]))
    return float(low), float(mid), float(high)


class Rouge(Metric):
    rouge_type = ""

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(options)
        tokenizer = options["tokenizer"]
        if tokenizer == "default":
            default = tokenizers.DefaultTokenizer(use_stemmer=options["use_stemmer"] == "true")
            self._tokenize: Callable[[str], list[str]] = default.tokenize
        elif tokenizer == PRETOKENIZED:
            self._tokenize = pretokenized_tokens
        else:
            self._tokenize = SEGMENTERS[tokenizer]
        self._n = 0 if self.rouge_type == "rougeL" else int(self.rouge_type[5:])

    def score_items(self, items: Sequence[Item]) -> ItemScores:
        n = self._n
        cache: dict[str, tuple[list[str], NgramProfile | None]] = {}  # text -> tokens, n-grams

        def analysed(text: str) -> tuple[list[str], NgramProfile | None]:
            found = cache.get(text)
            if found is None:
                words = self._tokenize(text)
                found = cache[text] = (words, ngram_profile(words, n) if n else None)
            return found

        scores = []
        for item in items:
            prediction, prediction_ngrams = analysed(item.prediction)
            best = -1.0
            for ref in item.references:
                target, target_ngrams = analysed(ref)
                if target_ngrams is None or prediction_ngrams is None:
                    f = _lcs_f(target, prediction)
                else:
                    f = _ngram_f(target_ngrams, prediction_ngrams)
                if f > best:  # np.argmax keeps the first maximum, as score_multi does
                    best = f
            scores.append(best)
        return ItemScores(scores)

    def aggregate(self, scores: ItemScores) -> tuple[float, dict[str, float]]:
        if self.options["aggregate"] == "mean":
            return super().aggregate(scores)
        low, mid, high = bootstrap_interval(scores.scores, int(self.options["seed"]))
        return mid, {"low": low, "high": high}

    def signature(self, scores: ItemScores | None = None) -> Signature:
        tokenizer = self.options["tokenizer"]
        fields: tuple[tuple[str, str], ...] = (("impl", f"rouge_score.{self.rouge_type}.fmeasure"), ("tok", tokenizer))
        if tokenizer == "default":
            fields += (("stem", self.options["use_stemmer"]),)
        elif tokenizer != PRETOKENIZED:  # the caller's tokenizer is named in the caller's records
            fields += segmenter_fields(tokenizer)
        fields += (("agg", self.options["aggregate"]),)
        if self.options["aggregate"] == "bootstrap_mid":
            fields += (("n", str(BOOTSTRAP_SAMPLES)), ("ci", str(BOOTSTRAP_CONFIDENCE)), ("seed", self.options["seed"]))
        fields += (("refs", "max"), ("rouge_score", package_version("rouge_score")))
        return Signature(self.name, fields)


class Rouge1(Rouge):
    name = "rouge1"
    rouge_type = "rouge1"


class Rouge2(Rouge):
    name = "rouge2"
    rouge_type = "rouge2"


class RougeL(Rouge):
    name = "rougeL"
    rouge_type = "rougeL"

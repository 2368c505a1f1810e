"""sacrebleu corpus BLEU, with per-item sentence BLEU, computed from per-item statistics.

Tokenizers (option `tokenize`):
- sacrebleu's own: `13a` (its default), `ja-mecab` (MeCab + IPAdic through mecab-python3),
  `intl`, `char`, `zh`, `none`;
- `mecab-13a`: Japanese word segmentation with MeCab (fugashi + unidic-lite), words joined by one
  space, then sacrebleu's 13a — the Japanese lm-eval fork's WMT20 recipe with MeCab in place of nagisa;
- `nagisa-13a`: the same with nagisa, as the paper's runs did (offered when nagisa is installed).

Each item's statistics are sacrebleu's `[hyp_len, ref_len, correct_1..4, total_1..4]`, computed
here with cached tokenisation (each distinct string is tokenised once per batch) and faster
n-gram counting; the corpus score is sacrebleu's `_compute_score_from_stats` of their sum, so it
equals `sacrebleu.corpus_bleu(...)` exactly, and each item score equals `sacrebleu.sentence_bleu`
(effective order, exp smoothing). Scores are divided by 100.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import chain, pairwise
from typing import Any

from sacrebleu.metrics.bleu import BLEU

from hyoka.metrics.base import Item, ItemScores, Metric
from hyoka.metrics.signature import Signature, package_version
from hyoka.metrics.tokenizers import SEGMENTERS, nagisa_available, segmenter_fields

MAX_ORDER = 4
SACREBLEU_TOKENIZERS = ("13a", "ja-mecab", "intl", "char", "zh", "none")
SEGMENTED_TOKENIZERS = {"mecab-13a": "mecab", "nagisa-13a": "nagisa"}


def bleu_tokenizers() -> tuple[str, ...]:
    extra = ("mecab-13a", "nagisa-13a") if nagisa_available() else ("mecab-13a",)
    return SACREBLEU_TOKENIZERS + extra


def _ngrams(t: list[str]) -> Counter[Any]:
    """All n-grams of orders 1..4 in one Counter: unigrams as strings, higher orders as tuples
    (so the order of a key is 1 for a string, else its length)."""
    return Counter(chain(t, pairwise(t), zip(t, t[1:], t[2:], strict=False), zip(t, t[1:], t[2:], t[3:], strict=False)))


def _my_log(x: float) -> float:
    return -9999999999 if x == 0 else math.log(x)


def sentence_bleu(correct: list[int], total: list[int], sys_len: int, ref_len: int) -> float:
    """sacrebleu `BLEU.compute_bleu(..., smooth_method="exp", effective_order=True).score`, with the
    same floating-point operations in the same order, without building a BLEUScore."""
    bp = 1.0
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    if not any(correct):  # sacrebleu's early stop when nothing matches (its issue #141)
        return 0.0
    precisions = [0.0] * MAX_ORDER
    smooth_mteval = 1.0
    eff_order = MAX_ORDER
    for n in range(1, MAX_ORDER + 1):
        if total[n - 1] == 0:
            break
        eff_order = n
        if correct[n - 1] == 0:
            smooth_mteval *= 2
            precisions[n - 1] = 100.0 / (smooth_mteval * total[n - 1])
        else:
            precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    return bp * math.exp(sum([_my_log(p) for p in precisions[:eff_order]]) / eff_order)


def _closest_ref_len(hyp_len: int, ref_lens: Sequence[int]) -> int:
    """sacrebleu's `BLEU._get_closest_ref_len`: the closest length, the shorter on ties."""
    closest_diff, closest_len = -1, -1
    for ref_len in ref_lens:
        diff = abs(hyp_len - ref_len)
        if closest_diff == -1 or diff < closest_diff:
            closest_diff, closest_len = diff, ref_len
        elif diff == closest_diff and ref_len < closest_len:
            closest_len = ref_len
    return closest_len


class Bleu(Metric):
    name = "bleu"
    corpus_level = True

    def __init__(self, options: dict[str, str]) -> None:
        super().__init__(options)
        tokenize = options["tokenize"]
        segmenter_name = SEGMENTED_TOKENIZERS.get(tokenize)
        self._segment: Callable[[str], list[str]] | None = SEGMENTERS[segmenter_name] if segmenter_name else None
        self._segmenter_name = segmenter_name
        self._lowercase = options["lowercase"] == "true"
        self._bleu = BLEU(tokenize="13a" if segmenter_name else tokenize, lowercase=self._lowercase)
        self._tokenizer = self._bleu.tokenizer
        # sacrebleu memoises tokenizer calls in an lru_cache that outlives the call (keyed by the
        # tokenizer instance, which this metric keeps): call the function underneath, so that a
        # batch costs the same whatever was scored before; `score_items` dedupes within a batch.
        call = type(self._tokenizer).__call__
        unwrapped = getattr(call, "__wrapped__", None)
        self._tokenize_line: Callable[[str], str] = (
            functools.partial(unwrapped, self._tokenizer) if unwrapped is not None else self._tokenizer
        )

    def _tokens(self, text: str) -> list[str]:
        if self._segment is not None:
            text = " ".join(self._segment(text))
        if self._lowercase:
            text = text.lower()
        tokens: list[str] = self._tokenize_line(text.rstrip()).split()
        return tokens

    def score_items(self, items: Sequence[Item]) -> ItemScores:
        ref_cache: dict[tuple[str, ...], tuple[Counter[Any], list[int]]] = {}  # keyed by the reference tuple
        token_cache: dict[str, list[str]] = {}

        def tokens(text: str) -> list[str]:
            found = token_cache.get(text)
            if found is None:
                found = token_cache[text] = self._tokens(text)
            return found

        scores: list[float] = []
        stats: list[list[int]] = []
        for item in items:
            references = tuple(item.references)  # the same tuple when it is one already
            ref_info = ref_cache.get(references)
            if ref_info is None:
                merged: Counter[Any] | None = None
                ref_lens = []
                for ref in references:
                    ref_tokens = tokens(ref)
                    ref_lens.append(len(ref_tokens))
                    counts = _ngrams(ref_tokens)
                    if merged is None:
                        merged = counts
                    else:  # sacrebleu keeps each n-gram's highest count over the references
                        for gram, count in counts.items():
                            if count > merged[gram]:
                                merged[gram] = count
                assert merged is not None
                ref_info = ref_cache[references] = (merged, ref_lens)
            ref_counts, ref_lens = ref_info
            ref_get = ref_counts.get
            hyp_tokens = tokens(item.prediction)
            hyp_len = len(hyp_tokens)
            correct = [0] * MAX_ORDER
            for gram, count in _ngrams(hyp_tokens).items():
                available = ref_get(gram)
                if available:
                    correct[len(gram) - 1 if gram.__class__ is tuple else 0] += (
                        count if count < available else available
                    )
            total = [max(hyp_len - n, 0) for n in range(MAX_ORDER)]
            ref_len = _closest_ref_len(hyp_len, ref_lens)
            stats.append([hyp_len, ref_len, *correct, *total])
            scores.append(sentence_bleu(correct, total, hyp_len, ref_len) / 100.0)
        return ItemScores(scores, stats, {len(item.references) for item in items})

    def aggregate(self, scores: ItemScores) -> tuple[float, dict[str, float]]:
        summed = [sum(column) for column in zip(*scores.stats, strict=True)]
        result = self._bleu._compute_score_from_stats(summed)
        details = {
            "bp": float(result.bp),
            "sys_len": float(result.sys_len),
            "ref_len": float(result.ref_len),
            **{f"precision_{n + 1}": float(p) / 100.0 for n, p in enumerate(result.precisions)},
        }
        return float(result.score) / 100.0, details

    def signature(self, scores: ItemScores | None = None) -> Signature:
        counts = scores.ref_counts if scores is not None else set()
        nrefs = str(next(iter(counts))) if len(counts) == 1 else "var" if counts else "?"
        tokenize = self.options["tokenize"]
        tok = tokenize if self._segmenter_name else self._tokenizer.signature()
        fields: tuple[tuple[str, str], ...] = (
            ("nrefs", nrefs),
            ("case", "lc" if self._lowercase else "mixed"),
            ("eff", "no"),
            ("tok", tok),
            ("smooth", "exp"),
            ("version", package_version("sacrebleu")),
        )
        if self._segmenter_name:
            fields += segmenter_fields(self._segmenter_name)
        elif tokenize == "ja-mecab":
            fields += (
                ("mecab-python3", package_version("mecab-python3")),
                ("dict", f"ipadic-{package_version('ipadic')}"),
            )
        return Signature(self.name, fields)

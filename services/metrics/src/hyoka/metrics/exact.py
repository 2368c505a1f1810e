"""Exact-match variants, each with the answer extraction and normalisation of the harness that
produced the published score. An item scores 1 when any reference matches.

- `exact_match`: llm-jp-eval 1.3.0 — the output before the first blank line, NFKC on both sides.
- `exact_match_triviaqa`: lm-evaluation-harness 0.4.2 `triviaqa` — filter `remove_whitespace`
  (drop one leading space) then HF `exact_match` with `ignore_case`, `ignore_punctuation`.
- `exact_match_gsm8k`: lm-eval 0.4.2 `gsm8k` "strict-match" — first match of `#### (\\-?[0-9\\.\\,]+)`
  (else "[invalid]"), then HF `exact_match` with `ignore_case` and `regexes_to_ignore`
  `[",", "\\$", "(?s).*#### ", "\\.$"]` on prediction and reference (the reference may be the whole
  GSM8K answer or just the number).
- `exact_match_mgsm`: the Japanese lm-eval fork's `MGSM._extract_answer` — the last match of
  `(\\-?[0-9\\.\\,]+)`, stripped of ".", commas removed, as an integer — equals the reference number.
- `exact_match_bbh`: lm-eval 0.4.2 `bbh_cot_fewshot` — first match of `(?<=the answer is )(.*)(?=.)`,
  stripped (else "[invalid]"), then HF `exact_match` with no options.
- `exact_match_squad`: the SQuAD / SQuAD2 `exact` score — lower case, no punctuation, no articles,
  whitespace squeezed; references that normalise to "" are dropped, and "" stands for no answer.

HF `exact_match` compares numpy unicode arrays, which drop trailing NUL characters; the emulation
below keeps that.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Sequence

from hyoka.metrics.base import Item, ItemScores, Metric, MetricError
from hyoka.metrics.signature import Signature

INVALID = "[invalid]"
_PUNCT_TABLE = str.maketrans("", "", string.punctuation)


def hf_exact_match_normalize(
    text: str, *, regexes_to_ignore: Sequence[str] = (), ignore_case: bool = False, ignore_punctuation: bool = False
) -> str:
    """One string as HF evaluate's `exact_match._compute` transforms it before comparing."""
    text = text.rstrip("\x00")
    for pattern in regexes_to_ignore:
        text = re.sub(pattern, "", text).rstrip("\x00")
    if ignore_case:
        text = text.lower()
    if ignore_punctuation:
        text = text.translate(_PUNCT_TABLE)
    return text


def regex_filter(text: str, pattern: re.Pattern[str], group_select: int = 0) -> str:
    """lm-eval 0.4.2 `RegexFilter.apply` for one response."""
    matches = pattern.findall(text)
    if not matches:
        return INVALID
    match = matches[group_select]
    if isinstance(match, tuple):
        match = next(m for m in match if m)
    return str(match).strip()


class _TextExactMatch(Metric):
    """Exact match after per-side transforms; subclasses define them."""

    impl: str = ""

    def prediction_key(self, prediction: str) -> str:
        return prediction

    def reference_key(self, reference: str) -> str:
        return reference

    def score_items(self, items: Sequence[Item]) -> ItemScores:
        cache: dict[str, str] = {}
        scores = []
        for item in items:
            pred = self.prediction_key(item.prediction)
            hit = False
            for ref in item.references:
                key = cache.get(ref)
                if key is None:
                    key = cache[ref] = self.reference_key(ref)
                if pred == key:
                    hit = True
                    break
            scores.append(1.0 if hit else 0.0)
        return ItemScores(scores)

    def signature_fields(self) -> tuple[tuple[str, str], ...]:
        return ()

    def signature(self, scores: ItemScores | None = None) -> Signature:
        return Signature(self.name, (("impl", self.impl), *self.signature_fields(), ("refs", "any")))


class ExactMatch(_TextExactMatch):
    name = "exact_match"
    impl = "llm-jp-eval-1.3.0"

    def _normalize(self, text: str) -> str:
        return unicodedata.normalize("NFKC", text) if self.options["normalize"] == "nfkc" else text

    def prediction_key(self, prediction: str) -> str:
        if self.options["extract"] == "first_paragraph":
            prediction = prediction.split("\n\n")[0]
        return self._normalize(prediction)

    def reference_key(self, reference: str) -> str:
        return self._normalize(reference)

    def signature_fields(self) -> tuple[tuple[str, str], ...]:
        return (("norm", self.options["normalize"]), ("extract", self.options["extract"]))


class ExactMatchTriviaQA(_TextExactMatch):
    name = "exact_match_triviaqa"
    impl = "lm-eval-0.4.2:triviaqa:remove_whitespace+hf-exact_match(ignore_case,ignore_punctuation)"

    def prediction_key(self, prediction: str) -> str:
        if prediction.startswith(" "):
            prediction = prediction[1:]
        return self.reference_key(prediction)

    def reference_key(self, reference: str) -> str:
        return hf_exact_match_normalize(reference, ignore_case=True, ignore_punctuation=True)


_GSM8K_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_GSM8K_IGNORE = (",", "\\$", "(?s).*#### ", "\\.$")


class ExactMatchGSM8K(_TextExactMatch):
    name = "exact_match_gsm8k"
    impl = "lm-eval-0.4.2:gsm8k:strict-match+hf-exact_match(ignore_case,regexes_to_ignore)"

    def prediction_key(self, prediction: str) -> str:
        return self.reference_key(regex_filter(prediction, _GSM8K_STRICT))

    def reference_key(self, reference: str) -> str:
        return hf_exact_match_normalize(reference, regexes_to_ignore=_GSM8K_IGNORE, ignore_case=True)


_BBH_ANSWER = re.compile(r"(?<=the answer is )(.*)(?=.)")


class ExactMatchBBH(_TextExactMatch):
    name = "exact_match_bbh"
    impl = "lm-eval-0.4.2:bbh_cot_fewshot:get-answer+hf-exact_match"

    def prediction_key(self, prediction: str) -> str:
        return hf_exact_match_normalize(regex_filter(prediction, _BBH_ANSWER))

    def reference_key(self, reference: str) -> str:
        return hf_exact_match_normalize(reference)


_SQUAD_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_SQUAD_PUNCT = set(string.punctuation)


def squad_normalize_answer(text: str) -> str:
    """SQuAD v2 `normalize_answer`: lower, drop punctuation and articles, squeeze whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _SQUAD_PUNCT)
    return " ".join(_SQUAD_ARTICLES.sub(" ", text).split())


class ExactMatchSquad(Metric):
    name = "exact_match_squad"

    def score_items(self, items: Sequence[Item]) -> ItemScores:
        scores = []
        for item in items:
            golds = [squad_normalize_answer(r) for r in item.references if squad_normalize_answer(r)] or [""]
            pred = squad_normalize_answer(item.prediction)
            scores.append(1.0 if any(pred == g for g in golds) else 0.0)
        return ItemScores(scores)

    def signature(self, scores: ItemScores | None = None) -> Signature:
        # `exact` as the paper-era harness reported it (no-answer threshold 1.0), not `best_exact`,
        # which later swallow-evaluation versions report.
        return Signature(self.name, (("impl", "squad_v2.compute_exact"), ("score", "exact"), ("refs", "max")))


_MGSM_NUMBER = re.compile(r"(\-?[0-9\.\,]+)")


def mgsm_extract(completion: str) -> int | None:
    """The Japanese lm-eval fork's `MGSM._extract_answer`; None stands for its INVALID_ANS."""
    matches = _MGSM_NUMBER.findall(completion)
    if matches:
        match_str = matches[-1].strip(".").replace(",", "")
        try:
            value = float(match_str)
        except ValueError:
            return None
        if value.is_integer():
            return int(value)
    return None


def _parse_int(text: str) -> int | None:
    try:
        value = float(text.strip().replace(",", ""))
    except ValueError:
        return None
    return int(value) if value.is_integer() else None


class ExactMatchMGSM(Metric):
    name = "exact_match_mgsm"

    def check_item(self, index: int, item: Item) -> None:
        super().check_item(index, item)
        for j, ref in enumerate(item.references):
            if _parse_int(ref) is None:
                raise MetricError(f"items[{index}].references[{j}]", f"{ref[:40]!r} is not an integer answer")

    def score_items(self, items: Sequence[Item]) -> ItemScores:
        scores = []
        for item in items:
            answer = mgsm_extract(item.prediction)
            golds = [_parse_int(r) for r in item.references]
            scores.append(1.0 if answer is not None and answer in golds else 0.0)
        return ItemScores(scores)

    def signature(self, scores: ItemScores | None = None) -> Signature:
        return Signature(self.name, (("impl", "jp-lm-eval-fork:mgsm._extract_answer(last-number)"), ("refs", "any")))


EXACT_MATCH_METRICS: tuple[Callable[..., Metric], ...] = (
    ExactMatch,
    ExactMatchTriviaQA,
    ExactMatchGSM8K,
    ExactMatchMGSM,
    ExactMatchBBH,
    ExactMatchSquad,
)

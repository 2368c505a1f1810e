"""The metrics hyoka offers, their options, and option validation.

Scores are on a 0-1 scale. Options are strings; absent options take the default shown.

===================== ==================================================================================
metric                options (default first)
===================== ==================================================================================
char_f1_fuzzywuzzy    normalize=nfkc|none, extract=first_paragraph|none, matcher=levenshtein|difflib
                      llm-jp-eval 1.3.0 char F1: fuzzywuzzy token_sort_ratio / 100 (JEMHopQA, NIILC, JSQuAD)
char_f1_squad         normalize=nfkc|none — SQuAD v1.1 F1 over characters (no punctuation/whitespace)
exact_match           normalize=nfkc|none, extract=first_paragraph|none — llm-jp-eval (JCommonsenseQA, JMMLU)
exact_match_triviaqa  (none) — lm-eval 0.4.2 TriviaQA
exact_match_squad     (none) — SQuAD2 'exact'
exact_match_gsm8k     (none) — lm-eval 0.4.2 GSM8K strict-match '#### n'
exact_match_mgsm      (none) — JP lm-eval fork MGSM: last number == the integer reference
exact_match_bbh       (none) — lm-eval 0.4.2 BBH CoT: text after "the answer is"
bleu                  tokenize=13a|ja-mecab|mecab-13a|nagisa-13a|intl|char|zh|none, lowercase=false|true
                      corpus BLEU (WMT20: en-ja with nagisa-13a / mecab-13a, ja-en with 13a)
rouge1, rouge2,       tokenizer=mecab|mecab-jlmeval|nagisa|default|pretokenized, use_stemmer=false|true,
rougeL                aggregate=mean|bootstrap_mid, seed=1234 (XL-Sum: rouge2, bootstrap_mid, with
                      pretokenized = tokens of the evaluated model's tokenizer joined by U+001F)
pass_at_k             k=1 — items carry pass_counts (total n, correct c) (HumanEval, JHumanEval)
===================== ==================================================================================

Every result carries a signature (see `hyoka.metrics.signature`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from hyoka.metrics.base import Metric, MetricError
from hyoka.metrics.bleu import Bleu, bleu_tokenizers
from hyoka.metrics.charf1 import CharF1Fuzzywuzzy, CharF1Squad
from hyoka.metrics.exact import (
    ExactMatch,
    ExactMatchBBH,
    ExactMatchGSM8K,
    ExactMatchMGSM,
    ExactMatchSquad,
    ExactMatchTriviaQA,
)
from hyoka.metrics.passk import PassAtK
from hyoka.metrics.rouge import Rouge1, Rouge2, RougeL, rouge_tokenizers


@dataclass(frozen=True)
class OptionSpec:
    name: str
    description: str
    default: str
    allowed: tuple[str, ...] = ()  # empty: free-form, checked by `check`
    check: Callable[[str], str | None] | None = None  # returns an error description or None

    def validate(self, value: str) -> None:
        if self.allowed and value not in self.allowed:
            raise MetricError(f"options.{self.name}", f"{value!r} is not one of {', '.join(self.allowed)}")
        if self.check is not None and (problem := self.check(value)) is not None:
            raise MetricError(f"options.{self.name}", problem)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    description: str
    factory: Callable[[dict[str, str]], Metric]
    options: tuple[OptionSpec, ...] = ()
    corpus_level: bool = False

    def resolve_options(self, options: Mapping[str, str]) -> dict[str, str]:
        known = {option.name: option for option in self.options}
        for key in options:
            if key not in known:
                expected = ", ".join(known) or "none"
                raise MetricError(f"options.{key}", f"unknown option for {self.name} (accepted: {expected})")
        resolved = {}
        for option in self.options:
            value = options.get(option.name, option.default)
            option.validate(value)
            resolved[option.name] = value
        return resolved


def _int_in(low: int, high: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            number = int(value)
        except ValueError:
            return f"{value!r} is not an integer"
        return None if low <= number <= high else f"{number} is outside {low}..{high}"

    return check


_NORMALIZE = OptionSpec("normalize", "Unicode normalisation of both sides", "nfkc", ("nfkc", "none"))
_EXTRACT = OptionSpec(
    "extract",
    "Keep the prediction's text before its first blank line (llm-jp-eval)",
    "first_paragraph",
    ("first_paragraph", "none"),
)


def _rouge_options() -> tuple[OptionSpec, ...]:
    return (
        OptionSpec(
            "tokenizer",
            "Word segmentation; pretokenized: the caller's tokens joined by U+001F",
            "mecab",
            rouge_tokenizers(),
        ),
        OptionSpec("use_stemmer", "Porter stemmer (default tokenizer only)", "false", ("false", "true")),
        OptionSpec("aggregate", "Corpus score: mean of item F or bootstrap mid F", "mean", ("mean", "bootstrap_mid")),
        OptionSpec("seed", "RandomState seed of the bootstrap resamples", "1234", check=_int_in(0, 2**32 - 1)),
    )


def _specs() -> dict[str, MetricSpec]:
    specs = [
        MetricSpec(
            "char_f1_fuzzywuzzy",
            "llm-jp-eval 1.3.0 char F1: fuzzywuzzy token_sort_ratio(pred, ref) / 100 (python-Levenshtein matcher)",
            CharF1Fuzzywuzzy,
            (
                _NORMALIZE,
                _EXTRACT,
                OptionSpec(
                    "matcher",
                    "fuzzywuzzy's matcher: python-Levenshtein (as llm-jp-eval 1.3.0 installs) or difflib",
                    "levenshtein",
                    ("levenshtein", "difflib"),
                ),
            ),
        ),
        MetricSpec("char_f1_squad", "SQuAD-style F1 over characters", CharF1Squad, (_NORMALIZE,)),
        MetricSpec("exact_match", "llm-jp-eval 1.3.0 exact match", ExactMatch, (_NORMALIZE, _EXTRACT)),
        MetricSpec("exact_match_triviaqa", "lm-eval 0.4.2 TriviaQA exact match", ExactMatchTriviaQA),
        MetricSpec("exact_match_squad", "SQuAD2 'exact'", ExactMatchSquad),
        MetricSpec("exact_match_gsm8k", "lm-eval 0.4.2 GSM8K strict-match", ExactMatchGSM8K),
        MetricSpec("exact_match_mgsm", "MGSM: last number in the output equals the answer", ExactMatchMGSM),
        MetricSpec("exact_match_bbh", "lm-eval 0.4.2 BBH CoT: answer after 'the answer is'", ExactMatchBBH),
        MetricSpec(
            "bleu",
            "sacrebleu corpus BLEU / 100; item scores are sentence BLEU",
            Bleu,
            (
                OptionSpec(
                    "tokenize", "sacrebleu tokenizer, or Japanese segmentation then 13a", "13a", bleu_tokenizers()
                ),
                OptionSpec("lowercase", "Lower-case before tokenising", "false", ("false", "true")),
            ),
            corpus_level=True,
        ),
        MetricSpec("rouge1", "ROUGE-1 F (rouge_score)", Rouge1, _rouge_options()),
        MetricSpec("rouge2", "ROUGE-2 F (rouge_score)", Rouge2, _rouge_options()),
        MetricSpec("rougeL", "ROUGE-L F (rouge_score)", RougeL, _rouge_options()),
        MetricSpec(
            "pass_at_k",
            "Unbiased pass@k from per-problem sample counts",
            PassAtK,
            (OptionSpec("k", "k (<= every item's sample count)", "1", check=_int_in(1, 1_000_000)),),
        ),
    ]
    return {spec.name: spec for spec in specs}


METRICS: dict[str, MetricSpec] = _specs()


def get_spec(name: str) -> MetricSpec:
    spec = METRICS.get(name)
    if spec is None:
        raise MetricError("metric", f"unknown metric {name!r} (known: {', '.join(METRICS)})")
    return spec


def get_metric(name: str, options: Mapping[str, str] | None = None) -> Metric:
    """The metric `name` bound to `options` (validated; defaults filled in). Instances are
    shared: metrics keep no per-batch state."""
    spec = get_spec(name)
    resolved = spec.resolve_options(options or {})
    return _cached_metric(name, tuple(sorted(resolved.items())))


@lru_cache(maxsize=256)
def _cached_metric(name: str, options: tuple[tuple[str, str], ...]) -> Metric:
    return METRICS[name].factory(dict(options))

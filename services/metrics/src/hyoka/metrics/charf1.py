"""Character-overlap metrics: llm-jp-eval's fuzzywuzzy "char F1" and a SQuAD-style char F1.

llm-jp-eval 1.3.0 (`src/llm_jp_eval/utils.py`, `get_evaluation_result`) scores
`fuzz.token_sort_ratio(y_pred, y_true) / 100.0` with
`y_pred = normalize(output.split("\\n\\n")[0])`, `y_true = normalize(gold)`, `normalize` = NFKC,
and averages with `statistics.mean`. Its `pyproject.toml` depends on `fuzzywuzzy = "^0.18.0"` and
`python-levenshtein = "^0.21.1"`, and its `poetry.lock` pins fuzzywuzzy 0.18.0,
python-levenshtein 0.21.1, levenshtein 0.21.1 and rapidfuzz 3.6.1 (source: llm-jp-eval v1.3.0 as
vendored by swallow-llm/swallow-evaluation tag v202407, `llm-jp-eval/pyproject.toml` and
`llm-jp-eval/poetry.lock`). With python-Levenshtein installed, fuzzywuzzy's `ratio` uses
`fuzzywuzzy.StringMatcher` (`Levenshtein.ratio`, the normalised Indel similarity), not difflib's
`SequenceMatcher`; the two give different numbers, so `matcher=levenshtein` is the default and
`matcher=difflib` reproduces an install without python-Levenshtein.

token_sort_ratio(a, b) in fuzzywuzzy 0.18.0, with its defaults `force_ascii=True, full_process=True`:
drop code points 128-255, replace `(?ui)\\W` by spaces, lower-case, strip, split on whitespace,
sort, join with one space; then `ratio` = 100 if equal, 0 if either is empty, otherwise
`int(round(100 * matcher_ratio))`. This module does the same with rapidfuzz's `Indel` (the code
python-Levenshtein 0.21 is built on) in one batched call.
"""

from __future__ import annotations

import difflib
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from rapidfuzz import process
from rapidfuzz.distance import Indel

from hyoka.metrics.base import Item, ItemScores, Metric, Pairs
from hyoka.metrics.signature import Signature, package_version

# fuzzywuzzy's `asciidammit` deletes code points 128-255 (str.translate with a table); a regex
# deletes the same characters faster.
_LATIN1 = re.compile("[\x80-\xff]+")
_NON_WORD = re.compile(r"(?ui)\W")


def fuzzywuzzy_process_and_sort(text: str) -> str:
    """fuzzywuzzy 0.18.0 `_process_and_sort(text, force_ascii=True, full_process=True)`."""
    processed = _NON_WORD.sub(" ", _LATIN1.sub("", text)).lower().strip()
    return " ".join(sorted(processed.split())).strip()


def llmjp_normalize(text: str, *, nfkc: bool, first_paragraph: bool) -> str:
    """llm-jp-eval's answer handling: the text before the first blank line, NFKC-normalised."""
    if first_paragraph:
        text = text.split("\n\n")[0]
    return unicodedata.normalize("NFKC", text) if nfkc else text


class CharF1Fuzzywuzzy(Metric):
    name = "char_f1_fuzzywuzzy"

    def score_items(self, items: Sequence[Item]) -> ItemScores:
        if all(len(item.references) == 1 for item in items):
            return self._score_pairs([item.prediction for item in items], [item.references[0] for item in items])
        predictions: list[str] = []
        references: list[str] = []
        owners: list[int] = []
        for index, item in enumerate(items):
            for ref in item.references:
                predictions.append(item.prediction)
                references.append(ref)
                owners.append(index)
        percents = self._percents(predictions, references)
        best = np.zeros(len(items))
        np.maximum.at(best, np.asarray(owners, dtype=np.intp), percents)
        return ItemScores((best / 100.0).tolist())

    def score_pairs(self, pairs: Pairs) -> ItemScores:
        return self._score_pairs(pairs.predictions, pairs.references)

    def _score_pairs(self, predictions: Sequence[str], references: Sequence[str]) -> ItemScores:
        return ItemScores((self._percents(predictions, references) / 100.0).tolist())

    def _percents(self, predictions: Sequence[str], references: Sequence[str]) -> npt.NDArray[np.float64]:
        """token_sort_ratio of each (prediction, reference) pair, 0-100."""
        nfkc = self.options["normalize"] == "nfkc"
        # llm-jp-eval cuts the model output only, never the gold answer.
        cut = self.options["extract"] == "first_paragraph"
        cache: dict[str, str] = {}  # text (after the cut) -> processed and sorted tokens

        def prepared(text: str) -> str:
            found = cache.get(text)
            if found is None:
                found = cache[text] = fuzzywuzzy_process_and_sort(unicodedata.normalize("NFKC", text) if nfkc else text)
            return found

        preds = [prepared(p.split("\n\n")[0] if cut else p) for p in predictions]
        refs = [prepared(r) for r in references]
        if self.options["matcher"] == "levenshtein":
            ratios = process.cpdist(preds, refs, scorer=Indel.normalized_similarity, dtype=np.float64, workers=1)
            # fuzzywuzzy: utils.intr(100 * ratio) = int(round(...)), round-half-to-even like np.rint.
            percents: npt.NDArray[np.float64] = np.rint(100 * ratios)
            return percents
        return np.array([_difflib_percent(a, b) for a, b in zip(preds, refs, strict=True)], dtype=np.float64)

    def signature(self, scores: ItemScores | None = None) -> Signature:
        matcher = self.options["matcher"]
        return Signature(
            self.name,
            (
                ("impl", "fuzzywuzzy-0.18.0.token_sort_ratio/100"),
                ("matcher", "python-levenshtein-0.21" if matcher == "levenshtein" else "difflib"),
                ("norm", self.options["normalize"]),
                ("extract", self.options["extract"]),
                ("refs", "max"),
                ("rapidfuzz", package_version("rapidfuzz")),
            ),
        )


def _difflib_percent(a: str, b: str) -> float:
    if a == b:
        return 100.0
    if not a or not b:
        return 0.0
    return float(round(100 * difflib.SequenceMatcher(None, a, b).ratio()))


# Punctuation removed by the SQuAD-style char F1: ASCII plus the Japanese set of the lm-eval fork's
# jasquad evaluation script.
_JA_PUNCT = (
    "！？｡。＂＃＄％＆＇（）＊＋，－／：；＜＝＞＠［＼］＾＿｀｛｜｝～｟｠｢｣､、〃》「」『』【】"
    "〔〕〖〗〘〙〚〛〜〝〞〟〰〾〿–—‘’‛“”„‟…‧﹏."
)
_SQUAD_DROP = {ord(c): None for c in set(_JA_PUNCT + string.punctuation)}


def squad_char_tokens(text: str, *, nfkc: bool) -> list[str]:
    """Characters of the normalised text: (NFKC,) lower case, no punctuation, no whitespace."""
    if nfkc:
        text = unicodedata.normalize("NFKC", text)
    return [c for c in text.lower().translate(_SQUAD_DROP) if not c.isspace()]


def squad_f1(prediction_tokens: Sequence[str], reference_tokens: Sequence[str]) -> float:
    """SQuAD v1.1 `f1_score` over the given tokens."""
    common = Counter(prediction_tokens) & Counter(reference_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(reference_tokens)
    return (2 * precision * recall) / (precision + recall)


class CharF1Squad(Metric):
    name = "char_f1_squad"

    def score_items(self, items: Sequence[Item]) -> ItemScores:
        nfkc = self.options["normalize"] == "nfkc"
        scores = []
        for item in items:
            pred = squad_char_tokens(item.prediction, nfkc=nfkc)
            scores.append(max(squad_f1(pred, squad_char_tokens(ref, nfkc=nfkc)) for ref in item.references))
        return ItemScores(scores)

    def signature(self, scores: ItemScores | None = None) -> Signature:
        return Signature(
            self.name,
            (("impl", "squad-v1.1-f1-over-chars"), ("norm", self.options["normalize"]), ("refs", "max")),
        )

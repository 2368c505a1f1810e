"""Answer extraction rules: from a model's raw continuation to the string that is scored."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def llm_jp_eval_answer(output: str) -> str:
    """llm-jp-eval 1.3.0: the text before the first blank line ("\\n\\n"), NFKC-normalised.
    Nothing is stripped: leading spaces or a single trailing newline stay part of the answer."""
    return nfkc(output.split("\n\n", 1)[0])


def stop_at_stop_words(completion: str, stop_words: Iterable[str]) -> str:
    """bigcode-evaluation-harness: cut the completion at the earliest occurrence of any stop word."""
    cut = len(completion)
    for word in stop_words:
        at = completion.find(word)
        if at != -1:
            cut = min(cut, at)
    return completion[:cut]


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the (already normalised) strings are equal, as scikit-learn's accuracy_score."""
    return 1.0 if prediction == gold else 0.0


def argmax_first(values: Iterable[float]) -> int:
    """Index of the largest value, the first on ties (numpy.argmax, which lm-eval uses)."""
    best_i, best = -1, float("-inf")
    for i, v in enumerate(values):
        if best_i == -1 or v > best:
            best_i, best = i, v
    if best_i == -1:
        raise ValueError("argmax of an empty sequence")
    return best_i


# Rules a task definition names in `extraction` for single-answer generation tasks; harness
# families add their own with `@text_rule`.
TEXT_RULES: dict[str, Callable[[str], str]] = {"none": lambda text: text, "llm_jp_eval": llm_jp_eval_answer}


def text_rule(name: str) -> Callable[[Callable[[str], str]], Callable[[str], str]]:
    def register(fn: Callable[[str], str]) -> Callable[[str], str]:
        if name in TEXT_RULES:
            raise RuntimeError(f"extraction rule {name!r} registered twice")
        TEXT_RULES[name] = fn
        return fn

    return register

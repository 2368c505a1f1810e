"""Exact-match variants against transcriptions of the harness code that produced the scores
(HF evaluate's `exact_match` with numpy arrays, lm-eval 0.4.2 filters, the JP fork's MGSM
extraction, SQuAD2's `compute_exact`)."""

from __future__ import annotations

import random
import re
import string
import unicodedata

import numpy as np
import pytest

from hyoka.metrics import Item, score


def hf_exact_match(
    predictions: list[str],
    references: list[str],
    regexes_to_ignore: list[str] | None = None,
    ignore_case: bool = False,
    ignore_punctuation: bool = False,
) -> float:
    """HF evaluate `exact_match._compute` (as lm-eval 0.4.2 loads it)."""
    if regexes_to_ignore is not None:
        for s in regexes_to_ignore:
            predictions = np.array([re.sub(s, "", x) for x in predictions])
            references = np.array([re.sub(s, "", x) for x in references])
    else:
        predictions = np.asarray(predictions)
        references = np.asarray(references)
    if ignore_case:
        predictions = np.char.lower(predictions)
        references = np.char.lower(references)
    if ignore_punctuation:
        repl_table = string.punctuation.maketrans("", "", string.punctuation)
        predictions = np.char.translate(predictions, table=repl_table)
        references = np.char.translate(references, table=repl_table)
    return float(np.mean(predictions == references))


def regex_filter(resp: str, pattern: str, group_select: int = 0, fallback: str = "[invalid]") -> str:
    """lm-eval 0.4.2 `RegexFilter` for one response."""
    match = re.compile(pattern).findall(resp)
    if match:
        match = match[group_select]
        if isinstance(match, tuple):
            match = [m for m in match if m][0]  # noqa: RUF015 - upstream code
        return match.strip()
    return fallback


def multi_target(prediction: str, golds: list[str], **kwargs: object) -> float:
    """lm-eval 0.4.2 `process_results` with multiple targets and `exact_match`."""
    return 1.0 if hf_exact_match([prediction] * len(golds), golds, **kwargs) > 0.0 else 0.0  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def answer_cases(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    rng = random.Random(5)
    numbers = ["42", "-3", "1,000", "3.50", "$18", "0", "12.", "7"]
    cases = list(pairs[:1500])
    for _ in range(500):
        number = rng.choice(numbers)
        gold_number = number if rng.random() < 0.5 else rng.choice(numbers)
        pred = rng.choice(
            [
                f"So the total is {number}.\n#### {number}",
                f"計算すると{number}個です。答えは{number}",
                f"Let's think. So the answer is {number}.",
                f"So the answer is ({rng.choice('ABC')}).",
                f" {number}",
                f"#### {number} dollars",
            ]
        )
        gold = rng.choice([f"step by step\n#### {gold_number}", gold_number, f"({rng.choice('ABC')})"])
        cases.append((pred, gold))
    return cases


def test_exact_match_llm_jp_eval(answer_cases: list[tuple[str, str]]) -> None:
    def reference(pred: str, gold: str) -> float:
        y_pred = unicodedata.normalize("NFKC", pred.split("\n\n")[0])
        return 1.0 if y_pred == unicodedata.normalize("NFKC", gold) else 0.0

    expected = [reference(p, g) for p, g in answer_cases]
    result = score("exact_match", [Item(p, (g,)) for p, g in answer_cases])
    assert result.item_scores == expected
    assert 0 < sum(expected) < len(expected)


def test_exact_match_triviaqa(answer_cases: list[tuple[str, str]]) -> None:
    def reference(pred: str, golds: list[str]) -> float:
        pred = pred[1:] if pred.startswith(" ") else pred  # remove_whitespace filter
        return multi_target(pred, golds, ignore_case=True, ignore_punctuation=True)

    items = [Item(p, (g, g.upper() + "!")) for p, g in answer_cases]
    expected = [reference(it.prediction, list(it.references)) for it in items]
    assert score("exact_match_triviaqa", items).item_scores == expected
    assert 0 < sum(expected) < len(expected)


def test_exact_match_gsm8k_strict(answer_cases: list[tuple[str, str]]) -> None:
    ignore = [",", "\\$", "(?s).*#### ", "\\.$"]

    def reference(pred: str, gold: str) -> float:
        filtered = regex_filter(pred, r"#### (\-?[0-9\.\,]+)")
        return hf_exact_match([filtered], [gold], regexes_to_ignore=ignore, ignore_case=True)

    expected = [reference(p, g) for p, g in answer_cases]
    assert score("exact_match_gsm8k", [Item(p, (g,)) for p, g in answer_cases]).item_scores == expected
    assert 0 < sum(expected) < len(expected)


def test_exact_match_bbh(answer_cases: list[tuple[str, str]]) -> None:
    def reference(pred: str, gold: str) -> float:
        return hf_exact_match([regex_filter(pred, r"(?<=the answer is )(.*)(?=.)")], [gold])

    expected = [reference(p, g) for p, g in answer_cases]
    assert score("exact_match_bbh", [Item(p, (g,)) for p, g in answer_cases]).item_scores == expected
    assert 0 < sum(expected) < len(expected)


def test_exact_match_mgsm(answer_cases: list[tuple[str, str]]) -> None:
    ans_re = re.compile(r"(\-?[0-9\.\,]+)")

    def extract(completion: str) -> object:  # JP fork tasks/ja/mgsm.py MGSM._extract_answer
        matches = ans_re.findall(completion)
        if matches:
            match_str = matches[-1].strip(".").replace(",", "")
            try:
                match_float = float(match_str)
            except ValueError:
                return "[invalid]"
            if match_float.is_integer():
                return int(match_float)
        return "[invalid]"

    cases = [(p, g) for p, g in answer_cases if re.fullmatch(r"-?[0-9,]+", g)]
    expected = [1.0 if extract(p) == int(g.replace(",", "")) else 0.0 for p, g in cases]
    assert score("exact_match_mgsm", [Item(p, (g,)) for p, g in cases]).item_scores == expected
    assert 0 < sum(expected) < len(expected)


def test_exact_match_squad() -> None:
    def normalize_answer(s: str) -> str:
        s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
        s = re.sub(re.compile(r"\b(a|an|the)\b", re.UNICODE), " ", s)
        return " ".join(s.split())

    def compute_exact(golds: list[str], pred: str) -> float:  # SQuAD2 evaluation
        golds = [a for a in golds if normalize_answer(a)] or [""]
        return float(max(int(normalize_answer(a) == normalize_answer(pred)) for a in golds))

    items = [
        Item("The Eiffel Tower", ("eiffel tower",)),
        Item("", ("",)),
        Item("unanswerable", ("",)),
        Item("an apple.", ("Apple", "pear")),
        Item("東京", ("東京都",)),
    ]
    expected = [compute_exact(list(it.references), it.prediction) for it in items]
    assert score("exact_match_squad", items).item_scores == expected == [1.0, 1.0, 0.0, 1.0, 0.0]
    # The paper-era `exact`, named so that a score is not read as the later `best_exact`.
    assert "score:exact" in score("exact_match_squad", items).signature.text

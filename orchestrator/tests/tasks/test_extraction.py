"""Every answer-extraction rule, on hand-written model outputs."""

import pytest

from hyoka.orchestrator.tasks.extraction import (
    argmax_first,
    exact_match,
    llm_jp_eval_answer,
    stop_at_stop_words,
)


@pytest.mark.parametrize(
    ("output", "answer"),
    [
        ("東芝\n\n### 入力:\n質問：次", "東芝"),  # text before the first blank line
        ("東芝", "東芝"),  # no blank line: all of it
        ("東芝\n日立\n\n次", "東芝\n日立"),  # a single newline is kept
        ("\n\n東芝", ""),  # a blank line first: empty answer
        ("２", "2"),  # NFKC: full-width digit
        ("ｶﾀｶﾅ", "カタカナ"),  # NFKC: half-width katakana
        (" 2", " 2"),  # nothing is stripped
        ("2\n", "2\n"),
    ],
)
def test_llm_jp_eval_answer(output: str, answer: str) -> None:
    assert llm_jp_eval_answer(output) == answer


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("    return x\n\ndef other():\n    pass", "    return x\n"),
        ("    return x\nif __name__ == '__main__':\n", "    return x"),
        ("    return x\n# comment\ndef f", "    return x"),  # earliest stop word wins
        ("    return x\n```\ntext", "    return x"),
        ("    return x<file_sep>junk", "    return x"),
        ("    if x:\n        return 1\n", "    if x:\n        return 1\n"),  # indented `if` is no stop word
        ("", ""),
    ],
)
def test_stop_at_stop_words(completion: str, expected: str) -> None:
    stops = ["\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```", "<file_sep>"]
    assert stop_at_stop_words(completion, stops) == expected


def test_exact_match_and_argmax() -> None:
    assert exact_match("2", "2") == 1.0
    assert exact_match("2 ", "2") == 0.0
    assert argmax_first([-3.0, -1.0, -1.0]) == 1  # first on ties, as numpy.argmax
    assert argmax_first([-0.5]) == 0
    with pytest.raises(ValueError, match="empty"):
        argmax_first([])

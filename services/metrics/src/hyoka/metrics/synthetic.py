"""Synthetic Japanese/English prediction-reference pairs for parity tests and benchmarks.

They cover hiragana, katakana, kanji, full- and half-width forms, punctuation, emoji, Latin-1
(which fuzzywuzzy drops), empty strings and long texts; predictions are edits of their references
(deletions, insertions, substitutions, extra paragraphs, a leading space) so scores spread over 0-1.
Deterministic for a given seed.
"""

from __future__ import annotations

import random

HIRAGANA = [chr(c) for c in range(0x3041, 0x3097)]
KATAKANA = [chr(c) for c in range(0x30A1, 0x30FB)]
HALFWIDTH_KATAKANA = [chr(c) for c in range(0xFF66, 0xFF9E)]
KANJI = list("日本語東京大学天気今明年月火水木金土人山川田中国会社時間問題答文字学校先生電車駅")
FULLWIDTH = [chr(c) for c in range(0xFF10, 0xFF1A)] + [chr(c) for c in range(0xFF21, 0xFF3B)]
PUNCT = list("、。「」『』（）！？・ー〜…,.!?;:'\"()-#$%&*/@[]{}~ 　")
EMOJI = list("😀🎉👍🏻🇯🇵❤️✂🚀🍣")
LATIN1 = list("éàüßñçøåÉ¡¿«»")
EN_WORDS = "the answer is a an of to in Tokyo Kyoto river mountain 42 3.14 1,000 cat dog run ran The ANSWER".split()  # noqa: SIM905


def _token(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.25:
        return "".join(rng.choices(HIRAGANA, k=rng.randint(1, 4)))
    if kind < 0.38:
        return "".join(rng.choices(KATAKANA, k=rng.randint(1, 5)))
    if kind < 0.58:
        return "".join(rng.choices(KANJI, k=rng.randint(1, 3)))
    if kind < 0.63:
        return "".join(rng.choices(HALFWIDTH_KATAKANA + FULLWIDTH, k=rng.randint(1, 4)))
    if kind < 0.70:
        return rng.choice(PUNCT)
    if kind < 0.73:
        return rng.choice(EMOJI)
    if kind < 0.75:
        return rng.choice(LATIN1)
    return rng.choice(EN_WORDS) + (" " if rng.random() < 0.7 else "")


def _text(rng: random.Random, length: int) -> str:
    return "".join(_token(rng) for _ in range(length))


def _mutate(rng: random.Random, text: str) -> str:
    """A prediction near the reference: edits, width changes, extra paragraphs."""
    chars = list(text)
    for _ in range(rng.randint(0, max(1, len(chars) // 4))):
        op = rng.random()
        pos = rng.randint(0, len(chars))
        if op < 0.4 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op < 0.8:
            chars.insert(pos, _token(rng))
        elif chars:
            chars[min(pos, len(chars) - 1)] = _token(rng)
    out = "".join(chars)
    if rng.random() < 0.1:
        out = out + "\n\n" + _text(rng, rng.randint(1, 6))
    if rng.random() < 0.05:
        out = " " + out
    return out


def generate_pairs(count: int, seed: int = 20241217, long_fraction: float = 0.02) -> list[tuple[str, str]]:
    """`count` (prediction, reference) pairs covering hiragana, katakana, kanji, full- and
    half-width forms, punctuation, emoji, Latin-1, empty strings and long texts."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = [("", ""), ("", "答え"), ("答え", ""), ("   ", "。"), ("😀", "😀")]
    while len(pairs) < count:
        roll = rng.random()
        length = rng.randint(60, 160) if roll < long_fraction else rng.randint(1, 25)
        ref = _text(rng, length)
        if roll < 0.15:
            pred = ref  # exact hits
        elif roll < 0.2:
            pred = _text(rng, rng.randint(0, 10))  # unrelated
        else:
            pred = _mutate(rng, ref)
        pairs.append((pred, ref))
    return pairs

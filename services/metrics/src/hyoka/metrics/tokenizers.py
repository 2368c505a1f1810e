"""Japanese word segmenters shared by BLEU and ROUGE, each with a signature of its own.

- `mecab`: MeCab through fugashi with the unidic-lite dictionary, `-Owakati` output split on
  whitespace (what the Japanese lm-eval fork's `MecabTokenizer` uses, minus its normalisation).
- `mecab-jlmeval`: the Japanese lm-eval fork's `MecabTokenizer.tokenize` exactly: emoji removal
  (the `emoji` package plus the fork's emoji ranges), `neologdn.normalize`, whitespace squeeze, then
  MeCab as above.
- `nagisa`: `nagisa.tagging(text.strip()).words`, as the fork's `ja_split` segments WMT20
  Japanese before sacrebleu's 13a tokenizer (the paper's runs).

Taggers are created lazily, one per thread (MeCab taggers are not thread-safe); nagisa shares
one model guarded by a lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import cache
from typing import Any

from hyoka.metrics.signature import package_version

Segmenter = Callable[[str], list[str]]

_local = threading.local()


def _fugashi_tagger() -> Any:
    tagger = getattr(_local, "fugashi", None)
    if tagger is None:
        import fugashi

        tagger = fugashi.Tagger("-Owakati")
        _local.fugashi = tagger
    return tagger


def mecab_words(text: str) -> list[str]:
    """MeCab (fugashi + unidic-lite) words of `text`."""
    words: list[str] = _fugashi_tagger().parse(text).split()
    return words


_FORK_EMOJI_RE = re.compile(
    "[\U0001f600-\U0001f64f\U0001f300-\U0001f5ff\U0001f680-\U0001f6ff\U0001f1e0-\U0001f1ff\U00002702-\U000027b0]+",
    flags=re.UNICODE,
)


def jlmeval_normalize(text: str) -> str:
    """The Japanese lm-eval fork's `MecabTokenizer.normalize_answer` (and jasquad's)."""
    import emoji
    import neologdn  # type: ignore[import-not-found,unused-ignore]

    text = "".join("" if emoji.is_emoji(c) else c for c in text)
    text = _FORK_EMOJI_RE.sub("", text)
    text = neologdn.normalize(text)
    return " ".join(text.split())


def mecab_jlmeval_words(text: str) -> list[str]:
    return mecab_words(jlmeval_normalize(text))


_nagisa_lock = threading.Lock()


def nagisa_words(text: str) -> list[str]:
    """nagisa words of `text.strip()`, as the fork's `ja_split`."""
    with _nagisa_lock:
        import nagisa

        words: list[str] = nagisa.tagging(text.strip()).words
    return words


@cache
def mecab_dictionary() -> str:
    """The dictionary fugashi loaded, e.g. "unidic-lite-1.0.8"; a different dictionary is a
    different tokenizer, so signatures carry it."""
    info = _fugashi_tagger().dictionary_info[0]
    name = "unidic-lite" if "unidic_lite" in info["filename"] else "unidic" if "unidic" in info["filename"] else "other"
    version = package_version(name) if name != "other" else str(info["version"])
    return f"{name}-{version}"


def segmenter_fields(name: str) -> tuple[tuple[str, str], ...]:
    """Signature fields of a segmenter: library versions and dictionary."""
    if name in ("mecab", "mecab-jlmeval"):
        fields: tuple[tuple[str, str], ...] = (
            ("fugashi", package_version("fugashi")),
            ("dict", mecab_dictionary()),
        )
        if name == "mecab-jlmeval":
            fields += (("neologdn", package_version("neologdn")), ("emoji", package_version("emoji")))
        return fields
    if name == "nagisa":
        return (("nagisa", package_version("nagisa")), ("dynet", package_version("dyNET38")))
    raise KeyError(name)


def nagisa_available() -> bool:
    return package_version("nagisa") != "absent"


SEGMENTERS: dict[str, Segmenter] = {
    "mecab": mecab_words,
    "mecab-jlmeval": mecab_jlmeval_words,
    "nagisa": nagisa_words,
}

"""The evaluated model's tokenizer for the harness steps that count tokens (`PromptTokenizer`):
from a local backend's loaded model, or loaded alone (`--tokenizer`) for remote servers and for
`hyoka prompts`. Nothing is downloaded: `smollm2` or a local transformers / GGUF folder or file."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from hyoka.orchestrator.backends.base import BackendConfigError

_DEFAULT_MAX_LENGTH = 2048  # lm-eval's (and the JP fork's) fallback when the config names none
_HUGE = 10**18  # transformers' "no limit" model_max_length


class HFTokenizer:
    """A transformers tokenizer seen as a `PromptTokenizer` (no special tokens added)."""

    def __init__(self, tokenizer: Any, *, name: str, max_length: int) -> None:
        self._tokenizer = tokenizer
        self._name = name
        self._max_length = max_length

    @property
    def name(self) -> str:
        return self._name

    @property
    def max_length(self) -> int:
        return self._max_length

    def encode(self, text: str) -> list[int]:
        ids: list[int] = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids

    def tokenize(self, text: str) -> list[str]:
        tokens: list[str] = self._tokenizer.tokenize(text)
        return tokens

    def decode(self, ids: list[int]) -> str:
        text: str = self._tokenizer.decode(ids, skip_special_tokens=True)
        return text


def model_max_length(config: Any, tokenizer: Any) -> int:
    """The context length as lm-eval's HF models read it: the config's sequence-length attribute,
    else the tokenizer's `model_max_length`, else 2048."""
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _HUGE:
        return limit
    return _DEFAULT_MAX_LENGTH


@lru_cache(maxsize=4)  # converting a GGUF vocabulary takes seconds; the tokenizer is read-only after
def load_tokenizer(model: str, *, max_length: int | None = None) -> HFTokenizer:
    """The tokenizer of `model` (`smollm2`, a transformers folder, a .gguf file or folder)."""
    from transformers import AutoConfig, AutoTokenizer

    from hyoka.orchestrator.backends.hf_local import SMOLLM2, resolve_model

    folder, gguf = resolve_model(model)
    kwargs: dict[str, Any] = {"local_files_only": True}
    if gguf is not None:
        kwargs["gguf_file"] = gguf
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        config = AutoConfig.from_pretrained(folder, **kwargs)
    except (OSError, ValueError) as e:
        raise BackendConfigError(f"tokenizer {model}: cannot load {folder}: {e}") from e
    name = model if model == SMOLLM2 else str(folder / gguf if gguf else folder)
    return HFTokenizer(tokenizer, name=name, max_length=max_length or model_max_length(config, tokenizer))

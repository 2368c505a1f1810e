"""Fixtures for the backend tests: one tiny random Llama per session (under a second to build), and
the TGI / vLLM protocol servers over it on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hyoka.orchestrator.backends.hf_local import HFLocalBackend, LocalModel, load_local_model
from hyoka.orchestrator.backends.testing.openai_server import OpenAIServer
from hyoka.orchestrator.backends.testing.tgi_server import TGIServer
from hyoka.orchestrator.backends.testing.tiny_model import build_tiny_llama


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir: Path) -> LocalModel:
    return load_local_model(str(tiny_model_dir))


@pytest.fixture
def tgi_server(tiny_lm: LocalModel) -> Iterator[TGIServer]:
    with TGIServer(tiny_lm) as server:
        yield server


@pytest.fixture
def openai_server(tiny_lm: LocalModel) -> Iterator[OpenAIServer]:
    with OpenAIServer(tiny_lm) as server:
        yield server


@pytest.fixture
async def reference(tiny_model_dir: Path) -> HFLocalBackend:
    """hf-local on the same tiny model: the numbers every server backend must reproduce."""
    backend = HFLocalBackend(model=str(tiny_model_dir), batch_size=4)
    await backend.start()
    return backend


# (context, continuation) pairs for the contract tests: English, Japanese (multi-byte: TGI's byte
# offsets), code, a context ending in a space (lm-eval moves it), and a greedy continuation.
CONTRACT_PAIRS = [
    ("Question: Which is the capital of Japan? Answer:", " Tokyo"),
    ("Question: Which is the capital of Japan? Answer:", " Kyoto is old"),
    ("富士山は日本で", "一番高い山です。"),
    ("質問：日本の首都は", "どこですか？"),
    ("def add(a, b):\n", "    return a + b\n"),
    ("The quick brown ", "fox"),
]

GENERATION_CASES = [
    ("Question: Which", 16, ()),
    ("The quick brown fox jumps", 12, ("\n",)),
    ("質問：", 10, ()),
    ("def add(a, b):\n    return", 20, ("\ndef", "\nclass", "\nif", "\nprint", "\n#")),  # 5 stops > TGI's 4
    ("Q: 12 + 30 = ? A:", 8, ("e", "a")),
]


@pytest.fixture(scope="session")
def contract_pairs() -> list[tuple[str, str]]:
    return CONTRACT_PAIRS


@pytest.fixture(scope="session")
def generation_cases() -> list[tuple[str, int, tuple[str, ...]]]:
    return GENERATION_CASES


@pytest.fixture(scope="session")
def greedy_pair(tiny_lm: LocalModel) -> tuple[str, str]:
    """A (context, continuation) whose continuation is the model's greedy one, re-encoding to the same tokens."""
    lm, context = tiny_lm, "Question: Which"
    for n in (4, 3, 2, 1):
        ctx = lm.encode(context)
        (gen,) = lm.generate([ctx], max_new_tokens=n)[0]
        ids = [t for t in gen.token_ids if t not in lm.eos_token_ids]
        text = lm.decode(ids)
        if text and not text[0].isspace() and lm.encode_pair(context, text) == (ctx, ids):
            return context, text
    raise AssertionError("no clean greedy continuation for the tiny model; change the context")

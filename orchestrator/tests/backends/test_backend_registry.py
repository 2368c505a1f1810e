"""Backends by name and `BACKEND:TARGET` model specs: every mistake is one clear error."""

from __future__ import annotations

import pytest

from hyoka.orchestrator.backends import BackendConfigError, UnknownBackendError, create_backend, parse_model_spec
from hyoka.orchestrator.backends.registry import BACKEND_MODULES, backend_class


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("hf-local:smollm2", ("hf-local", {"model": "smollm2"})),
        ("hf-local", ("hf-local", {})),
        ("tgi:http://gpu-1:8080", ("tgi", {"base_url": "http://gpu-1:8080"})),
        (
            "openai-completions:http://h:8000,model=llm-jp,tokenizer=/tok",
            ("openai-completions", {"base_url": "http://h:8000", "model": "llm-jp", "tokenizer": "/tok"}),
        ),
        ("scripted:answers.json", ("scripted", {"path": "answers.json"})),
    ],
)
def test_parse_model_spec(spec: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_model_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gpt5:x", "unknown backend 'gpt5'; known backends: hf-local, openai-chat"),
        ("", "expected BACKEND"),
        ("tgi:", "empty target"),
        ("tgi:http://h,timeout", "expected KEY=VALUE, got 'timeout'"),
    ],
)
def test_bad_model_specs(spec: str, message: str) -> None:
    with pytest.raises(BackendConfigError, match=message):
        parse_model_spec(spec)


def test_every_registered_name_resolves_to_a_class_of_that_name() -> None:
    for name in BACKEND_MODULES:
        assert backend_class(name).__name__.endswith("Backend")


def test_unknown_backend_and_bad_options() -> None:
    with pytest.raises(UnknownBackendError, match="unknown backend 'nope'"):
        create_backend("nope")
    with pytest.raises(BackendConfigError, match=r"backend 'tgi': invalid options: timeout_s: Input should be"):
        create_backend("tgi", base_url="http://127.0.0.1:1", timeout_s="soon")
    with pytest.raises(BackendConfigError, match=r"temperature: Extra inputs are not permitted"):
        create_backend("hf-local", temperature="0.5")
    with pytest.raises(BackendConfigError, match="base_url must start with http"):
        create_backend("openai-completions", base_url="gpu-1:8000")

"""The scripted backend: outputs exactly as scripted, stop sequences cut, honest capabilities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyoka.orchestrator.backends import (
    BackendConfigError,
    BackendError,
    GenerationRequest,
    LoglikelihoodRequest,
    create_backend,
)
from hyoka.orchestrator.backends.scripted import ScriptedBackend


async def test_mapping_generations_cut_at_the_earliest_stop() -> None:
    b = create_backend("scripted", generations={"Q: 1+1?": "A: 2\n\nQ: next", "Q: x": ["s1\nrest", "s2"]})
    out = await b.generate_until(
        [
            GenerationRequest("Q: 1+1?", stop=("Q:", "\n\n")),
            GenerationRequest("Q: x", stop=("\n",), temperature=0.2, n=2),
        ]
    )
    assert out == [["A: 2"], ["s1", "s2"]]


async def test_single_completion_repeats_for_n_samples_and_callable_scripts() -> None:
    b = ScriptedBackend(generations=lambda r: r.context.upper())
    assert await b.generate_until([GenerationRequest("abc", n=3, temperature=1.0)]) == [["ABC"] * 3]
    assert [r.context for r in b.generation_calls] == ["abc"]


async def test_unscripted_context_is_a_clear_error_unless_a_default_is_given() -> None:
    b = ScriptedBackend(generations={"a": "x"})
    with pytest.raises(BackendError, match=r"requests\[1\].*no completion scripted.*'zzz'"):
        await b.generate_until([GenerationRequest("a"), GenerationRequest("zzz")])
    b = ScriptedBackend(generations={"a": "x"}, default="fallback")
    assert await b.generate_until([GenerationRequest("zzz")]) == [["fallback"]]


async def test_too_few_samples_scripted() -> None:
    b = ScriptedBackend(generations={"a": ["1", "2"]})
    with pytest.raises(BackendError, match="3 samples asked, 2 scripted"):
        await b.generate_until([GenerationRequest("a", n=3, temperature=1.0)])


async def test_loglikelihood_table_and_capabilities() -> None:
    gen_only = ScriptedBackend(generations={"a": "b"})
    assert not gen_only.capabilities.prompt_logprobs
    with pytest.raises(BackendError, match="cannot score prompts"):
        await gen_only.loglikelihood([LoglikelihoodRequest("a", " b")])

    b = ScriptedBackend(loglikelihoods={("Q", " yes"): (-0.5, True), ("Q", " no"): -2.0})
    assert b.capabilities.prompt_logprobs
    res = await b.loglikelihood([LoglikelihoodRequest("Q", " no"), LoglikelihoodRequest("Q", " yes")])
    assert [(r.logprob, r.is_greedy) for r in res] == [(-2.0, None), (-0.5, True)]
    with pytest.raises(BackendError, match="no log-likelihood scripted"):
        await b.loglikelihood([LoglikelihoodRequest("Q", " maybe")])


async def test_script_file_from_a_model_spec(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            {
                "generations": {"def f():\n": "    return 1\ndef g():"},
                "loglikelihoods": [{"context": "c", "continuation": " x", "logprob": -1.25, "is_greedy": False}],
            }
        ),
        encoding="utf-8",
    )
    b = create_backend("scripted", path=str(script))
    assert await b.generate_until([GenerationRequest("def f():\n", stop=("\ndef",))]) == [["    return 1"]]
    (r,) = await b.loglikelihood([LoglikelihoodRequest("c", " x")])
    assert (r.logprob, r.is_greedy) == (-1.25, False)
    assert (await b.info()).details["script"] == str(script)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"script.json:1: invalid JSON"),
        ('{"generations": {"a": 1}}', r"script.json: generations\.a"),
        ('{"bogus": 1}', r"script.json: bogus: Extra inputs"),
    ],
)
def test_bad_script_file_names_the_file_and_place(tmp_path: Path, content: str, message: str) -> None:
    script = tmp_path / "script.json"
    script.write_text(content, encoding="utf-8")
    with pytest.raises(BackendConfigError, match=message):
        create_backend("scripted", path=str(script))


def test_missing_script_file(tmp_path: Path) -> None:
    with pytest.raises(BackendConfigError, match="cannot read script"):
        create_backend("scripted", path=str(tmp_path / "nope.json"))


async def test_invalid_requests_are_rejected_before_anything_runs() -> None:
    b = ScriptedBackend(default="x")
    with pytest.raises(BackendError, match=r"requests\[0\]\.n must be >= 1"):
        await b.generate_until([GenerationRequest("a", n=0)])
    assert b.generation_calls == []

"""Contract tests: openai-completions against a server speaking vLLM's OpenAI protocol over hf-local on
the same tiny model gives hf-local's numbers (log-likelihoods to 1e-4, is_greedy, identical greedy
text), with the prompt sent as token ids (tokenizer known) or as text (split by text_offset);
openai-chat generates through the chat template and says it cannot score prompts."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyoka.orchestrator.backends import (
    BackendConfigError,
    BackendError,
    BackendRequestError,
    GenerationRequest,
    LoglikelihoodRequest,
    create_backend,
)
from hyoka.orchestrator.backends.hf_local import HFLocalBackend, LocalModel
from hyoka.orchestrator.backends.openai import OpenAIChatBackend, OpenAICompletionsBackend
from hyoka.orchestrator.backends.testing.openai_server import OpenAIServer

FAST_RETRY = {"backoff_s": 0.01, "backoff_max_s": 0.05}


def completions(server: OpenAIServer, **options: object) -> OpenAICompletionsBackend:
    backend = create_backend("openai-completions", **({"base_url": server.url} | FAST_RETRY | options))
    assert isinstance(backend, OpenAICompletionsBackend)
    return backend


@pytest.mark.parametrize("with_tokenizer", [True, False], ids=["token-ids", "text"])
async def test_loglikelihood_equals_hf_local(
    openai_server: OpenAIServer,
    reference: HFLocalBackend,
    tiny_model_dir: Path,
    contract_pairs: list[tuple[str, str]],
    greedy_pair: tuple[str, str],
    with_tokenizer: bool,
) -> None:
    requests = [LoglikelihoodRequest(c, x) for c, x in [*contract_pairs, greedy_pair]]
    options = {"tokenizer": str(tiny_model_dir)} if with_tokenizer else {}
    async with completions(openai_server, **options) as backend:
        assert backend.capabilities.token_ids_input is with_tokenizer
        got = await backend.loglikelihood(requests)
    sent = openai_server.received[-1]
    assert sent["echo"] is True and sent["logprobs"] == 1 and sent["max_tokens"] == 1
    assert isinstance(sent["prompt"], list if with_tokenizer else str)
    want = await reference.loglikelihood(requests)
    for g, w in zip(got, want, strict=True):
        assert g.logprob == pytest.approx(w.logprob, abs=1e-4)
        assert g.is_greedy == w.is_greedy
    assert got[-1].is_greedy and not all(g.is_greedy for g in got)


@pytest.mark.parametrize("with_tokenizer", [True, False], ids=["token-ids", "text"])
async def test_greedy_generation_equals_hf_local(
    openai_server: OpenAIServer,
    reference: HFLocalBackend,
    tiny_model_dir: Path,
    generation_cases: list[tuple[str, int, tuple[str, ...]]],
    with_tokenizer: bool,
) -> None:
    requests = [GenerationRequest(c, stop=stop, max_new_tokens=m) for c, m, stop in generation_cases]
    options = {"tokenizer": str(tiny_model_dir)} if with_tokenizer else {}
    async with completions(openai_server, **options) as backend:
        got = await backend.generate_until(requests)
    assert got == await reference.generate_until(requests)


async def test_sampling_parameters_and_n(openai_server: OpenAIServer) -> None:
    async with completions(openai_server) as backend:
        req = GenerationRequest("def", max_new_tokens=6, temperature=0.2, top_p=0.95, n=4, seed=3, stop=("\n",))
        (samples,) = await backend.generate_until([req])
        sent = openai_server.received[-1]
        assert (sent["temperature"], sent["top_p"], sent["n"], sent["seed"], sent["stop"]) == (0.2, 0.95, 4, 3, ["\n"])
        assert len(samples) == 4 and all("\n" not in s for s in samples)
        assert await backend.generate_until([req]) == [samples]
        (greedy,) = await backend.generate_until([GenerationRequest("def", max_new_tokens=4, n=3)])
        assert openai_server.received[-1]["n"] == 1 and openai_server.received[-1]["temperature"] == 0
        assert len(set(greedy)) == 1 and len(greedy) == 3


async def test_model_discovery_and_info(openai_server: OpenAIServer, tiny_lm: LocalModel) -> None:
    backend = completions(openai_server, base_url=openai_server.url + "/v1")  # OpenAI-style base URL works too
    info = await backend.info()
    assert info.model == "hyoka/tiny-llama" and info.details["max_model_len"] == str(tiny_lm.max_length)
    assert backend.capabilities.max_new_tokens_limit == tiny_lm.max_length - 1
    await backend.health()
    await backend.aclose()
    wrong = completions(openai_server, model="other/model")
    with pytest.raises(BackendConfigError, match="model 'other/model' not served"):
        await wrong.start()
    await wrong.aclose()


async def test_400_is_not_retried(openai_server: OpenAIServer) -> None:
    async with completions(openai_server) as backend:
        with pytest.raises(BackendRequestError, match="HTTP 400: This model's maximum context length") as err:
            await backend.generate_until([GenerationRequest("The quick", max_new_tokens=10_000)])
    assert err.value.status_code == 400
    assert openai_server.hits[("/v1/completions", 400)] == 1


async def test_empty_context_needs_the_tokenizer(openai_server: OpenAIServer, tiny_model_dir: Path) -> None:
    async with completions(openai_server) as backend:
        with pytest.raises(BackendRequestError, match="empty context"):
            await backend.loglikelihood([LoglikelihoodRequest("", "fox")])
    async with completions(openai_server, tokenizer=str(tiny_model_dir)) as backend:
        (r,) = await backend.loglikelihood([LoglikelihoodRequest("", "fox")])
        assert r.logprob < 0


async def test_chat_generates_through_the_chat_template_and_cannot_score(
    openai_server: OpenAIServer, tiny_lm: LocalModel
) -> None:
    backend = create_backend("openai-chat", base_url=openai_server.url)
    assert isinstance(backend, OpenAIChatBackend)
    async with backend:
        assert not backend.capabilities.prompt_logprobs
        (out,) = await backend.generate_until([GenerationRequest("What is 12 + 30?", max_new_tokens=10)])
        with pytest.raises(BackendError, match="cannot score prompts"):
            await backend.loglikelihood([LoglikelihoodRequest("a", " b")])
    prompt = tiny_lm.tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 12 + 30?"}], add_generation_prompt=True, tokenize=False
    )
    ((expected,),) = tiny_lm.generate([tiny_lm.encode(prompt)], max_new_tokens=10)
    assert out == [expected.text]


async def test_max_total_tokens_uses_the_tokenizer_and_needs_it(
    openai_server: OpenAIServer, reference: HFLocalBackend, tiny_lm: LocalModel, tiny_model_dir: Path
) -> None:
    prompt_tokens = len(tiny_lm.encode("def add(a, b):"))
    request = GenerationRequest("def add(a, b):", max_new_tokens=40, max_total_tokens=prompt_tokens + 4)
    async with completions(openai_server, tokenizer=str(tiny_model_dir)) as backend:
        assert await backend.generate_until([request]) == await reference.generate_until([request])
    async with completions(openai_server) as backend:
        with pytest.raises(BackendConfigError, match="tokenizer="):
            await backend.generate_until([request])

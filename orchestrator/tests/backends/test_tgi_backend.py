"""Contract tests: the tgi backend against a server speaking TGI's protocol over hf-local on the same
tiny model must give hf-local's numbers (log-likelihoods to 1e-4, identical greedy text); plus TGI's
rules: no sampling parameters when greedy, /info sizes concurrency, 429 retried, 422 not, missing
prefill log-probabilities fail loudly, an unreachable server is a clear error."""

from __future__ import annotations

import pytest

from hyoka.orchestrator.backends import (
    BackendError,
    BackendRequestError,
    GenerationRequest,
    LoglikelihoodRequest,
    create_backend,
)
from hyoka.orchestrator.backends.hf_local import HFLocalBackend, LocalModel
from hyoka.orchestrator.backends.testing.tgi_server import TGIServer
from hyoka.orchestrator.backends.tgi import TGIBackend
from hyoka.rpc.server import free_port

FAST_RETRY = {"backoff_s": 0.01, "backoff_max_s": 0.05}


def tgi(server: TGIServer, **options: object) -> TGIBackend:
    backend = create_backend("tgi", **({"base_url": server.url} | FAST_RETRY | options))
    assert isinstance(backend, TGIBackend)
    return backend


async def test_loglikelihood_equals_hf_local(
    tgi_server: TGIServer,
    reference: HFLocalBackend,
    contract_pairs: list[tuple[str, str]],
    greedy_pair: tuple[str, str],
) -> None:
    requests = [LoglikelihoodRequest(c, x) for c, x in [*contract_pairs, greedy_pair]]
    async with tgi(tgi_server) as backend:
        got = await backend.loglikelihood(requests)
    want = await reference.loglikelihood(requests)
    for g, w in zip(got, want, strict=True):
        assert g.logprob == pytest.approx(w.logprob, abs=1e-4)
        assert g.is_greedy is None  # TGI returns no top token per prompt position
    assert want[-1].is_greedy


async def test_greedy_generation_equals_hf_local(
    tgi_server: TGIServer, reference: HFLocalBackend, generation_cases: list[tuple[str, int, tuple[str, ...]]]
) -> None:
    requests = [GenerationRequest(c, stop=stop, max_new_tokens=m) for c, m, stop in generation_cases]
    async with tgi(tgi_server) as backend:
        got = await backend.generate_until(requests)
    assert got == await reference.generate_until(requests)
    assert all(len(o) == 1 for o in got)


async def test_max_total_tokens_counts_the_prompt_with_tokenize(
    tgi_server: TGIServer, reference: HFLocalBackend, tiny_lm: LocalModel
) -> None:
    prompt_tokens = len(tiny_lm.encode("def add(a, b):"))
    requests = [
        GenerationRequest("def add(a, b):", max_new_tokens=40, max_total_tokens=prompt_tokens + 4),
        GenerationRequest("def add(a, b):", max_new_tokens=40, max_total_tokens=prompt_tokens - 1),
    ]
    async with tgi(tgi_server) as backend:
        got = await backend.generate_until(requests)
    assert got == await reference.generate_until(requests)
    assert got[1] == [""]
    assert tgi_server.received[-1]["parameters"]["max_new_tokens"] == 4


async def test_greedy_sends_no_sampling_parameters_and_sampling_sends_them(tgi_server: TGIServer) -> None:
    async with tgi(tgi_server) as backend:
        await backend.generate_until([GenerationRequest("The quick", max_new_tokens=4, stop=("x",))])
        greedy = tgi_server.received[-1]["parameters"]
        assert greedy["do_sample"] is False and greedy["max_new_tokens"] == 4 and greedy["stop"] == ["x"]
        assert not {"temperature", "top_k", "top_p", "seed"} & set(greedy)

        (samples,) = await backend.generate_until(
            [GenerationRequest("def", max_new_tokens=6, temperature=0.2, top_p=0.95, n=3, seed=7)]
        )
        sampled = [b["parameters"] for b in tgi_server.received[-3:]]
        assert {p["temperature"] for p in sampled} == {0.2} and {p["top_p"] for p in sampled} == {0.95}
        assert sorted(p["seed"] for p in sampled) == [7, 8, 9]  # one seed per sample
        assert len(samples) == 3
        again = await backend.generate_until(
            [GenerationRequest("def", max_new_tokens=6, temperature=0.2, top_p=0.95, n=3, seed=7)]
        )
        assert again == [samples]

        await backend.generate_until([GenerationRequest("def", max_new_tokens=3, temperature=1.0)])
        assert "top_p" not in tgi_server.received[-1]["parameters"]  # TGI rejects top_p = 1.0


async def test_max_new_tokens_zero_is_answered_without_asking(tgi_server: TGIServer) -> None:
    async with tgi(tgi_server) as backend:
        before = len(tgi_server.received)
        assert await backend.generate_until([GenerationRequest("a", max_new_tokens=0, n=2)]) == [["", ""]]
        assert len(tgi_server.received) == before


async def test_info_sizes_concurrency_and_describes_the_server(tiny_lm: LocalModel) -> None:
    with TGIServer(tiny_lm, max_concurrent_requests=7, max_stop_sequences=3, model_id="org/model") as server:
        backend = tgi(server)
        await backend.start()
        caps = backend.capabilities
        assert (caps.max_concurrency, caps.max_stop_sequences, caps.prompt_logprobs) == (7, 3, True)
        assert not caps.token_ids_input
        info = await backend.info()
        assert info.model == "org/model" and info.details["prefill_logprobs"] == "true"
        await backend.health()
        await backend.aclose()


async def test_missing_prefill_logprobs_fail_loudly(tiny_lm: LocalModel) -> None:
    with TGIServer(tiny_lm, enable_prefill_logprobs=False) as server:
        async with tgi(server) as backend:
            assert not backend.capabilities.prompt_logprobs  # known before any task runs
            with pytest.raises(BackendError, match="--enable-prefill-logprobs"):
                await backend.loglikelihood([LoglikelihoodRequest("The", " quick")])
        # Without the start-up probe, the empty prefill itself is caught.
        async with tgi(server, probe_prefill=False) as backend:
            assert backend.capabilities.prompt_logprobs
            with pytest.raises(BackendError, match="empty `prefill`"):
                await backend.loglikelihood([LoglikelihoodRequest("The", " quick")])


async def test_429_from_a_full_server_is_retried_until_it_succeeds(
    tiny_lm: LocalModel, reference: HFLocalBackend, contract_pairs: list[tuple[str, str]]
) -> None:
    requests = [LoglikelihoodRequest(c, x) for c, x in contract_pairs]
    with TGIServer(tiny_lm, max_concurrent_requests=1, latency_s=0.05) as server:
        # The client is told to send 6 at once to a server that takes 1: it must back off and retry.
        async with tgi(server, max_concurrency=6, max_retries=50) as backend:
            got = await backend.loglikelihood(requests)
        assert server.hits[("/generate", 429)] > 0
    want = await reference.loglikelihood(requests)
    assert [g.logprob for g in got] == pytest.approx([w.logprob for w in want], abs=1e-4)


async def test_422_is_not_retried(tiny_lm: LocalModel) -> None:
    with TGIServer(tiny_lm, max_total_tokens=64) as server:
        async with tgi(server) as backend:
            with pytest.raises(BackendRequestError, match=r"HTTP 422: .*max_new_tokens. must be <= 64") as err:
                await backend.generate_until([GenerationRequest("The quick", max_new_tokens=100)])
        assert err.value.status_code == 422
        assert server.hits[("/generate", 422)] == 1


async def test_empty_context_without_bos_is_a_clear_error(tgi_server: TGIServer) -> None:
    async with tgi(tgi_server) as backend:
        with pytest.raises(BackendRequestError, match=r"requests\[0\].*empty context"):
            await backend.loglikelihood([LoglikelihoodRequest("", "fox")])


async def test_unreachable_server_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    backend = create_backend("tgi", base_url=url, max_retries=2, **FAST_RETRY)
    with pytest.raises(BackendError, match=rf"tgi server {url}/info: cannot connect .*gave up after 3 attempt"):
        await backend.generate_until([GenerationRequest("a")])
    with pytest.raises(BackendError, match=rf"tgi server {url}/health: unreachable"):
        await backend.health()
    await backend.aclose()

"""The conformance probe passes against the project's own protocol servers and hf-local, and fails
with a precise message against servers that shift or drop prompt log-probabilities or ignore stop
sequences."""

from __future__ import annotations

from typing import Any

import pytest

from hyoka.orchestrator.backends.conformance import LOGPROB_TOLERANCE, ConformanceReport, probe
from hyoka.orchestrator.backends.hf_local import HFLocalBackend, LocalModel
from hyoka.orchestrator.backends.openai import OpenAICompletionsBackend
from hyoka.orchestrator.backends.registry import create_backend
from hyoka.orchestrator.backends.testing.openai_server import Fault, OpenAIServer
from hyoka.orchestrator.backends.testing.tgi_server import TGIServer
from hyoka.orchestrator.backends.tgi import TGIBackend


@pytest.fixture(params=["tgi", "openai-completions"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _server(kind: str, lm: LocalModel, fault: Fault | None) -> TGIServer | OpenAIServer:
    return TGIServer(lm, fault=fault) if kind == "tgi" else OpenAIServer(lm, fault=fault)


async def _probe(kind: str, lm: LocalModel, fault: Fault | None, **options: Any) -> ConformanceReport:
    with _server(kind, lm, fault) as server:
        backend = create_backend(kind, base_url=server.url, max_retries=0, **options)
        try:
            return await probe(backend, name=f"{kind}:{server.url}")
        finally:
            await backend.aclose()


def _by_name(report: ConformanceReport) -> dict[str, bool | None]:
    return {c.name: c.passed for c in report.checks}


async def test_passes_against_the_protocol_servers(kind: str, tiny_lm: LocalModel) -> None:
    report = await _probe(kind, tiny_lm, None)
    assert report.ok, [c for c in report.checks if c.passed is False]
    checks = _by_name(report)
    assert checks == {
        "greedy_deterministic": True,
        "greedy_argmax": True,
        "stop_sequence": True,
        "logprob_alignment": True,
        "first_token_unscored": True,
        "prompt_logprobs_present": True,
        "tokenisation_length": True,
    }
    assert report.error() is None
    (align,) = [c for c in report.checks if c.name == "logprob_alignment"]
    assert abs(align.returned["generation_logprob"] - align.returned["prompt_logprob"]) <= LOGPROB_TOLERANCE
    assert report.to_dict()["ok"] is True


async def test_passes_with_a_local_tokenizer(openai_server: OpenAIServer, tiny_model_dir: Any) -> None:
    backend = OpenAICompletionsBackend(base_url=openai_server.url, tokenizer=str(tiny_model_dir))
    report = await probe(backend)
    await backend.aclose()
    assert report.ok, [c for c in report.checks if c.passed is False]


async def test_passes_on_hf_local(reference: HFLocalBackend) -> None:
    report = await probe(reference, name="hf-local")
    assert report.ok, [c for c in report.checks if c.passed is False]
    assert _by_name(report)["logprob_alignment"] is True


async def test_shifted_logprobs_fail_alignment(kind: str, tiny_lm: LocalModel) -> None:
    report = await _probe(kind, tiny_lm, "shift_logprobs")
    checks = _by_name(report)
    assert checks["logprob_alignment"] is False and checks["first_token_unscored"] is False
    assert report.generation_ok and not report.logprobs_ok
    message = report.error()
    assert message is not None
    assert message.startswith(f"backend {kind}:http://127.0.0.1:")
    assert "prompt log-probabilities are not aligned: token " in message
    assert "by generation but " in message and " by prompt scoring (probe 'logprob_alignment'); " in message
    assert message.endswith("log-likelihood tasks cannot run on this server")
    assert report.error(loglikelihood=False) is None  # generation-only tasks may still run


async def test_dropped_logprobs_fail(kind: str, tiny_lm: LocalModel) -> None:
    report = await _probe(kind, tiny_lm, "drop_logprobs")
    checks = _by_name(report)
    assert checks["logprob_alignment"] is False and checks["prompt_logprobs_present"] is False
    message = report.error()
    assert message is not None and "(probe 'logprob_alignment')" in message
    assert "has no log-probability" in message
    (present,) = [c for c in report.checks if c.name == "prompt_logprobs_present"]
    assert present.message.startswith("prompt log-probabilities are missing: ")


async def test_ignored_stop_sequences_fail_every_task(kind: str, tiny_lm: LocalModel) -> None:
    report = await _probe(kind, tiny_lm, "ignore_stop")
    checks = _by_name(report)
    assert checks["stop_sequence"] is False and checks["logprob_alignment"] is True
    message = report.error(loglikelihood=False)
    assert message is not None and " not honoured: without it the server generated " in message
    assert message.endswith("(probe 'stop_sequence'); no task can run on this server")


async def test_a_greedy_that_is_not_argmax_fails_every_task(kind: str, tiny_lm: LocalModel) -> None:
    report = await _probe(kind, tiny_lm, "not_argmax")
    checks = _by_name(report)
    assert checks["greedy_argmax"] is False and checks["greedy_deterministic"] is True
    message = report.error(loglikelihood=False)
    assert message is not None and "greedy generation is not argmax: at token 0 of " in message
    assert "over '<more likely>'" in message and "pass repeat_penalty=1.0" in message
    assert message.endswith("(probe 'greedy_argmax'); no task can run on this server")


async def test_replicas_are_each_probed(tiny_lm: LocalModel) -> None:
    with TGIServer(tiny_lm) as good, TGIServer(tiny_lm, fault="shift_logprobs") as bad:
        bad_url = bad.url
        backend = create_backend("tgi", base_url=f"{good.url}+{bad_url}")
        report = await probe(backend, name="tgi:both")
        await backend.aclose()
    failed = [c for c in report.checks if c.passed is False]
    assert failed and all(c.message.startswith(bad_url) for c in failed)


def test_backends_have_the_hooks() -> None:
    assert hasattr(TGIBackend, "probe_prompt") and hasattr(OpenAICompletionsBackend, "probe_generate")


async def test_a_generation_only_server_may_serve_generation_tasks() -> None:
    """The simulated server answers text but no log-probabilities at all (400 when asked): the
    generation checks pass without asking for any, so only log-likelihood tasks are refused."""
    from hyoka.orchestrator.backends.testing.sim_server import LatencyModel, SimServer

    fast = LatencyModel(seconds_per_token=0.0005, short_tokens=(8, 12), long_tokens=(8, 12))
    with SimServer(2, latency=fast) as server:
        backend = create_backend("openai-completions", base_url=server.url, max_retries=0)
        try:
            report = await probe(backend, name="sim")
        finally:
            await backend.aclose()
    checks = _by_name(report)
    assert checks["greedy_deterministic"] is True and checks["logprob_alignment"] is False
    assert report.error(loglikelihood=False) is None
    assert report.error(loglikelihood=True) is not None

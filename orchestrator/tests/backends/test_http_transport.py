"""The shared HTTP transport's retry rules, with httpx.MockTransport standing in for a remote GPU server:
424/429/503 and connection errors retried with backoff (Retry-After honoured), 4xx never retried,
and giving up is a clear BackendError."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from hyoka.orchestrator.backends import BackendError, BackendRequestError, GenerationRequest
from hyoka.orchestrator.backends.tgi import TGIBackend

INFO = {"model_id": "m", "max_concurrent_requests": 2, "max_stop_sequences": 4, "max_total_tokens": 100}


def scripted_server(
    replies: list[httpx.Response | Exception],
) -> tuple[Callable[[httpx.Request], httpx.Response], list[str]]:
    """/info answers normally; each /generate gets the next scripted reply."""
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/info":
            return httpx.Response(200, json=INFO)
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    return handle, calls


def backend(handle: Callable[[httpx.Request], httpx.Response], **options: object) -> TGIBackend:
    defaults: dict[str, object] = {"probe_prefill": False, "backoff_s": 0.01, "backoff_max_s": 0.02}
    return TGIBackend(base_url="http://gpu-server:8080", transport=httpx.MockTransport(handle), **(defaults | options))


OK = httpx.Response(200, json={"generated_text": " done\nmore"})


async def test_overload_restart_and_connection_errors_are_retried() -> None:
    handle, calls = scripted_server(
        [
            httpx.Response(429, json={"error": "Model is overloaded", "error_type": "overloaded"}),
            httpx.Response(503, text="restarting"),
            httpx.Response(424, json={"error": "Request failed during generation", "error_type": "generation"}),
            httpx.ConnectError("connection refused"),
            httpx.ReadTimeout("slow"),
            OK,
        ]
    )
    b = backend(handle)
    assert await b.generate_until([GenerationRequest("x", stop=("\n",))]) == [[" done"]]
    assert calls.count("/generate") == 6
    assert b.capabilities.max_concurrency == 2


async def test_retry_after_is_honoured() -> None:
    handle, _ = scripted_server([httpx.Response(429, headers={"Retry-After": "0.3"}, json={"error": "busy"}), OK])
    b = backend(handle, backoff_max_s=1.0)
    started = time.perf_counter()
    await b.generate_until([GenerationRequest("x")])
    assert time.perf_counter() - started >= 0.3


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_client_errors_are_not_retried(status: int) -> None:
    handle, calls = scripted_server([httpx.Response(status, json={"error": "bad thing", "error_type": "validation"})])
    with pytest.raises(
        BackendRequestError, match=rf"tgi server http://gpu-server:8080/generate: HTTP {status}: bad thing"
    ):
        await backend(handle).generate_until([GenerationRequest("x")])
    assert calls.count("/generate") == 1


async def test_giving_up_names_the_last_error_and_attempts() -> None:
    handle, calls = scripted_server([httpx.Response(503, json={"error": "loading"})] * 3)
    with pytest.raises(BackendError, match=r"HTTP 503: loading \(gave up after 3 attempt\(s\)\)"):
        await backend(handle, max_retries=2).generate_until([GenerationRequest("x")])
    assert calls.count("/generate") == 3


async def test_a_reply_that_is_not_json_or_not_tgi_is_an_error() -> None:
    handle, _ = scripted_server([httpx.Response(200, text="<html>proxy</html>")])
    with pytest.raises(BackendError, match="reply is not JSON"):
        await backend(handle).generate_until([GenerationRequest("x")])
    handle, _ = scripted_server([httpx.Response(200, json={"choices": []})])
    with pytest.raises(BackendError, match="unexpected reply"):
        await backend(handle).generate_until([GenerationRequest("x")])


async def test_bearer_token_is_sent() -> None:
    seen: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json=INFO if request.url.path == "/info" else {"generated_text": "y"})

    await backend(handle, api_key="s3cret").generate_until([GenerationRequest("x")])
    assert seen and set(seen) == {"Bearer s3cret"}

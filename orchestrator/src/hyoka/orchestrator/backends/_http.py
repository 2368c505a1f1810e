"""Transport shared by the HTTP backends (tgi, openai-completions, openai-chat), lm-eval style: this
base does the connection pool, retries and the concurrency limit; each server's class only builds
payloads and parses replies.

Client: httpx.AsyncClient. `huggingface_hub.AsyncInferenceClient.text_generation` covers TGI's
`/generate` only (no `/tokenize`, no OpenAI completions with `echo`), hides status codes behind its
own exceptions and has its own retry policy; one httpx client gives every backend the same
transport, retry and error rules, and lets tests swap the network for `httpx.MockTransport`.
Its transport is `_transport.AsyncioTransport` (HTTP/1.1 keep-alive on asyncio streams): httpx's
own pool costs several ms of CPU per request with a wide window, enough to starve the server.

Retries: connection errors (refused, reset, a reply cut short), timeouts and HTTP
424/429/500/502/503/504 (overloaded, restarting, a transient internal error or a failed generation
on the server) are retried with exponential backoff and full jitter, honouring `Retry-After`, at
most `max_retries` times; other 4xx (TGI's 422 validation errors, vLLM's 400) are the request's
fault and are never retried. Every attempt has a deadline (`timeout_s`, connecting, sending and
reading the whole reply included: a server that sends headers and then hangs times out). When the
retries are spent the error names the endpoint (`<backend> server <url><path>`), the last failure
and the number of attempts.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from hyoka.orchestrator.backends._transport import AsyncioTransport
from hyoka.orchestrator.backends.base import BackendConfigError, BackendError, BackendRequestError, ModelBackend

T = TypeVar("T")
R = TypeVar("R")

RETRY_STATUSES = frozenset({424, 429, 500, 502, 503, 504})


class HttpConfig(BaseModel):
    """Options every HTTP backend takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str  # the server's root, e.g. http://gpu-1:8080
    timeout_s: float = Field(default=600.0, gt=0)  # one attempt, generation and whole reply included
    connect_timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=6, ge=0)
    backoff_s: float = Field(default=0.5, ge=0)  # first retry waits up to this; doubles per retry
    backoff_max_s: float = Field(default=30.0, ge=0)
    max_concurrency: int | None = Field(default=None, ge=1)  # default: what the server says, else 32
    api_key: str | None = None  # sent as a bearer token


def _server_message(resp: httpx.Response) -> str:
    """The error text servers put in their JSON bodies (TGI: {"error"}, OpenAI/vLLM: {"error": {"message"}}
    or {"message"}), else the raw body."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500] or resp.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body.get("message", body.get("detail")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            return str(err)[:500]
    return str(body)[:500]


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class HttpBackend(ModelBackend):
    """Base for backends that talk to a model server over HTTP."""

    backend_name: ClassVar[str]
    default_concurrency: ClassVar[int] = 32

    def __init__(self, config: HttpConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise BackendConfigError(
                f"{self.backend_name}: base_url must start with http:// or https://, got {config.base_url!r}"
            )
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            # Keep every connection the window opened: closing some after each answer means a new
            # connection (and handshake) per request once more than that many are in flight.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            transport=transport if transport is not None else AsyncioTransport(),
        )
        self._concurrency = config.max_concurrency or self.default_concurrency
        self._semaphore: asyncio.Semaphore | None = None
        self._started = False
        self._start_lock = asyncio.Lock()

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        async with self._start_lock:
            if not self._started:
                await self._on_start()
                self._semaphore = asyncio.Semaphore(self._concurrency)
                self._started = True

    async def _on_start(self) -> None:
        """Learn the server's limits (subclasses); may set `self._concurrency`."""

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- transport --------------------------------------------------------------------------------

    async def request_json(self, method: str, path: str, payload: Any = None, *, retries: int | None = None) -> Any:
        """Send one request and return its JSON body, retrying what is worth retrying (module docstring)."""
        attempts = 1 + (self.config.max_retries if retries is None else retries)
        last = ""
        for attempt in range(attempts):
            wait_at_least = 0.0
            try:
                resp = await self._client.request(method, path, json=payload)
            except httpx.TimeoutException as e:
                last = f"timed out ({type(e).__name__})"
            except httpx.TransportError as e:
                last = f"cannot connect ({type(e).__name__}: {e or 'no detail'})"
            else:
                if resp.is_success:
                    try:
                        return resp.json()
                    except ValueError as e:
                        raise BackendError(f"{self._where(path)}: reply is not JSON: {resp.text[:200]!r}") from e
                message = _server_message(resp)
                if resp.status_code not in RETRY_STATUSES:
                    raise BackendRequestError(
                        f"{self._where(path)}: HTTP {resp.status_code}: {message}", status_code=resp.status_code
                    )
                last = f"HTTP {resp.status_code}: {message}"
                wait_at_least = min(_retry_after(resp) or 0.0, self.config.backoff_max_s)
            if attempt + 1 < attempts:
                ceiling = min(self.config.backoff_max_s, self.config.backoff_s * 2**attempt)
                await asyncio.sleep(max(wait_at_least, random.uniform(0.0, ceiling)))
        raise BackendError(f"{self._where(path)}: {last} (gave up after {attempts} attempt(s))")

    def _where(self, path: str) -> str:
        return f"{self.backend_name} server {self.base_url}{path}"

    async def map_limited(self, fn: Callable[[T], Awaitable[R]], items: Sequence[T]) -> list[R]:
        """`fn` over `items`, at most `max_concurrency` at once, results in order."""
        await self.start()
        semaphore = self._semaphore
        assert semaphore is not None

        async def one(item: T) -> R:
            async with semaphore:
                return await fn(item)

        return list(await asyncio.gather(*(one(item) for item in items)))

    async def check_path(self, path: str) -> None:
        """Raise BackendError unless GET `path` answers 2xx (one attempt: health checks must be quick)."""
        try:
            resp = await self._client.get(path)
        except httpx.HTTPError as e:
            raise BackendError(f"{self._where(path)}: unreachable ({type(e).__name__}: {e or 'no detail'})") from e
        if not resp.is_success:
            raise BackendError(f"{self._where(path)}: not ready (HTTP {resp.status_code}: {_server_message(resp)})")

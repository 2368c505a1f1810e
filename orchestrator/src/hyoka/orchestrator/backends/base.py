"""The model-backend interface: lm-evaluation-harness's primitives, asynchronous.

A backend is anything that can continue text (`generate_until`) and, if it can score prompts,
say how likely a continuation is (`loglikelihood`). Servers (TGI, vLLM, SGLang) and local models
implement the same small interface; tasks only ever see this one. What a backend can do is in its
`Capabilities`, checked before a run starts: a multiple-choice task on a backend without prompt
log-probabilities fails up front instead of scoring at chance.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from hyoka.orchestrator.tasks.builders import PromptTokenizer


@dataclass(frozen=True)
class GenerationRequest:
    """Continue `context` until a stop sequence, EOS or `max_new_tokens`.

    `temperature == 0` means greedy decoding (then `top_p` and `seed` are ignored); `n` samples are
    returned per request. Stop sequences are cut from the returned text.
    """

    context: str
    stop: tuple[str, ...] = ()
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    seed: int | None = None
    # Prompt + generation at most this many tokens (bigcode-evaluation-harness's
    # `max_length_generation`): the generation budget shrinks with the prompt. None: no such bound.
    max_total_tokens: int | None = None
    # Encode the context with the tokenizer's special tokens (BOS where it has one), as
    # bigcode-evaluation-harness does; lm-eval and llm-jp-eval add none.
    add_special_tokens: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def new_token_budget(self, prompt_tokens: int) -> int:
        """New tokens allowed after a prompt of `prompt_tokens` tokens (0: generate nothing)."""
        if self.max_total_tokens is None:
            return self.max_new_tokens
        return max(0, min(self.max_new_tokens, self.max_total_tokens - prompt_tokens))


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """log P(continuation | context), summed over the continuation's tokens."""

    context: str
    continuation: str


@dataclass(frozen=True)
class LoglikelihoodResult:
    logprob: float
    # Whether greedy decoding from `context` would produce exactly `continuation`;
    # None where the server cannot tell (it returns no top-1 token per prompt position).
    is_greedy: bool | None


@dataclass(frozen=True)
class Capabilities:
    prompt_logprobs: bool  # can score prompt tokens (needed by loglikelihood)
    token_ids_input: bool  # accepts token ids instead of text
    max_concurrency: int  # sequences worth having in flight at once (the run's window)
    max_stop_sequences: int | None = None  # None: no limit
    max_new_tokens_limit: int | None = None
    sampling: bool = True  # supports temperature/top-p sampling with n samples


@dataclass(frozen=True)
class BackendInfo:
    backend: str  # registry name, e.g. "tgi"
    model: str  # model id as the server reports it
    details: dict[str, str] = field(default_factory=dict)  # server version, dtype, revision...


class BackendError(RuntimeError):
    """A backend failed in a way a user must act on (unreachable server, server misconfigured)."""


class BackendConfigError(BackendError, ValueError):
    """A backend's options are invalid (unknown option, wrong type, model not found)."""


class BackendRequestError(BackendError):
    """The server rejected a request as invalid (HTTP 4xx other than 429, e.g. TGI's 422); never retried."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ModelBackend(abc.ABC):
    """Base class for every backend. Subclasses register with `@register_backend("name")`."""

    #: Whether `tokenizer()` gives the model's tokenizer (after `start()`); remote servers do not,
    #: and tasks that count tokens then need one named by the user.
    provides_tokenizer: bool = False

    def tokenizer(self) -> PromptTokenizer | None:
        """The evaluated model's tokenizer, where the backend holds it (after `start()`)."""
        return None

    @property
    def prefers_batches(self) -> bool:
        """Whether requests should come in batches of up to `capabilities.max_concurrency`
        sequences (a local model); False: one request per call, up to `max_concurrency` calls in
        flight at once (a server that batches concurrent requests itself)."""
        return False

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abc.abstractmethod
    async def generate_until(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        """One list of `request.n` completions per request, in request order."""

    async def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        raise BackendError(f"{type(self).__name__} cannot score prompts (no prompt log-probabilities)")

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect, load the model or learn the server's limits; idempotent.

        `capabilities` is exact only after `start()` (a remote server's concurrency limit and whether
        it returns prompt log-probabilities are learnt here). Every request method starts the backend
        on first use, so calling it is only needed to check capabilities before a run.
        """

    @abc.abstractmethod
    async def health(self) -> None:
        """Raise BackendError unless the backend is ready to serve."""

    @abc.abstractmethod
    async def info(self) -> BackendInfo: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections, threads or models."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

"""`tgi`: Hugging Face text-generation-inference over its HTTP API.

- Start: `GET /info` sizes the concurrency (`max_concurrent_requests`, unless `max_concurrency` is
  given) and gives the stop-sequence and token limits; one one-token probe asks for prompt
  log-probabilities to learn whether the server runs with `--enable-prefill-logprobs`
  (`capabilities.prompt_logprobs`), so that a multiple-choice task fails before the run.
- `generate_until`: `POST /generate`. Greedy requests send `do_sample: false` and *no*
  temperature/top-k/top-p (TGI samples as soon as any is present); sampled requests send
  temperature, top-p (only when < 1: TGI rejects 1.0) and a seed per sample (seed + k), one request
  per sample. `max_new_tokens` 0 is answered locally (TGI rejects 0). Stop sequences beyond the
  server's `max_stop_sequences` are applied on the client only, and every text is cut at the
  earliest stop sequence (TGI keeps it in `generated_text`). `truncate` keeps the last tokens of a
  prompt that would not fit, as lm-eval does.
- `loglikelihood`: `POST /tokenize` of context + continuation and `POST /generate` with
  `details` + `decoder_input_details` and one new token. `/tokenize` offsets are byte offsets into
  the UTF-8 input (TGI slices `input.bytes()`); the continuation is the tokens starting at or after
  the context's byte length (after lm-eval's rule that the context's trailing whitespace moves to
  the continuation), zero-width special tokens excluded. TGI returns no most-likely token per
  prompt position, so `is_greedy` is None. An empty `prefill` means the server was started without
  `--enable-prefill-logprobs`: that is a loud BackendError, never a silent zero.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import httpx
from pydantic import Field

from hyoka.orchestrator.backends._http import HttpBackend, HttpConfig
from hyoka.orchestrator.backends._text import (
    check_generation_request,
    check_loglikelihood_request,
    cut_at_stop,
    move_trailing_space,
)
from hyoka.orchestrator.backends.base import (
    BackendError,
    BackendInfo,
    BackendRequestError,
    Capabilities,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)
from hyoka.orchestrator.backends.conformance import RawGeneration, RawPromptScores
from hyoka.orchestrator.backends.registry import register_backend

NO_PREFILL = (
    "returned no prompt log-probabilities (empty `prefill`): start TGI with --enable-prefill-logprobs "
    "to score prompts (log-likelihood tasks), or use a generation-only task"
)


# One greedy token with the prompt's per-token log-probabilities (TGI's "prefill" details).
_PREFILL_PARAMS: dict[str, Any] = {
    "max_new_tokens": 1,
    "details": True,
    "decoder_input_details": True,
    "do_sample": False,
}


class TGIConfig(HttpConfig):
    probe_prefill: bool = True  # learn at start whether the server returns prompt log-probabilities
    max_stop_sequences: int | None = Field(default=None, ge=0)  # default: the server's /info


@register_backend("tgi")
class TGIBackend(HttpBackend):
    """TGI's `/generate`, `/tokenize`, `/info`, `/health`; see the module docstring."""

    backend_name = "tgi"
    default_concurrency = 128  # TGI's own default max_concurrent_requests

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None, **options: Any) -> None:
        self.tgi_config = TGIConfig(**options)
        super().__init__(self.tgi_config, transport)
        self._info: dict[str, Any] = {}
        self._prefill: bool | None = None  # unknown until probed

    async def _on_start(self) -> None:
        info = await self.request_json("GET", "/info")
        if not isinstance(info, dict) or "model_id" not in info:
            raise BackendError(f"{self._where('/info')}: not a TGI /info reply: {str(info)[:200]}")
        self._info = info
        if self.config.max_concurrency is None:
            self._concurrency = int(info.get("max_concurrent_requests") or self.default_concurrency)
        if self.tgi_config.probe_prefill:
            reply = await self._generate_raw("Hello", _PREFILL_PARAMS)
            self._prefill = bool(reply.get("details", {}).get("prefill"))

    @property
    def capabilities(self) -> Capabilities:
        max_stop = self.tgi_config.max_stop_sequences
        if max_stop is None and self._info:
            max_stop = int(self._info.get("max_stop_sequences", 4))
        total = self._info.get("max_total_tokens")
        return Capabilities(
            prompt_logprobs=self._prefill is not False,
            token_ids_input=False,
            max_concurrency=self._concurrency,
            max_stop_sequences=max_stop,
            max_new_tokens_limit=int(total) - 1 if total else None,
        )

    async def _generate_raw(self, inputs: str, parameters: dict[str, Any]) -> dict[str, Any]:
        reply = await self.request_json("POST", "/generate", {"inputs": inputs, "parameters": parameters})
        if isinstance(reply, list) and reply:  # some TGI versions/proxies answer a one-element list
            reply = reply[0]
        if not isinstance(reply, dict) or "generated_text" not in reply:
            raise BackendError(f"{self._where('/generate')}: unexpected reply: {str(reply)[:200]}")
        return reply

    def _truncate(self, max_new_tokens: int) -> int | None:
        """Keep the prompt's last tokens so prompt + generation fit (TGI cuts on the left)."""
        limits = [self._info.get("max_input_tokens")]
        if self._info.get("max_total_tokens"):
            limits.append(int(self._info["max_total_tokens"]) - max_new_tokens)
        usable = [int(x) for x in limits if x]
        return max(1, min(usable)) if usable else None

    # --- generation -------------------------------------------------------------------------------

    async def generate_until(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        for i, r in enumerate(requests):
            check_generation_request(i, r)
        await self.start()
        max_stop = self.capabilities.max_stop_sequences
        jobs = [(i, k) for i, r in enumerate(requests) for k in range(r.n)]

        budgets = await self.map_limited(self._new_token_budget, list(requests))

        async def one(job: tuple[int, int]) -> str:
            i, k = job
            r = requests[i]
            if budgets[i] == 0:
                return ""
            params: dict[str, Any] = {
                "max_new_tokens": budgets[i],
                "stop": list(r.stop if max_stop is None else r.stop[:max_stop]),
                "details": False,
            }
            truncate = self._truncate(budgets[i])
            if truncate is not None:
                params["truncate"] = truncate
            if r.greedy:
                params["do_sample"] = False
            else:
                params["do_sample"] = True
                params["temperature"] = r.temperature
                if r.top_p < 1.0:
                    params["top_p"] = r.top_p
                if r.seed is not None:
                    params["seed"] = r.seed + k
            reply = await self._generate_raw(r.context, params)
            return cut_at_stop(str(reply["generated_text"]), r.stop)

        texts = await self.map_limited(one, jobs)
        out: list[list[str]] = [[] for _ in requests]
        for (i, _), text in zip(jobs, texts, strict=True):
            out[i].append(text)
        return out

    async def _new_token_budget(self, r: GenerationRequest) -> int:
        if r.max_total_tokens is None:
            return r.max_new_tokens
        tokens = await self.request_json("POST", "/tokenize", {"inputs": r.context})
        if not isinstance(tokens, list):
            raise BackendError(f"{self._where('/tokenize')}: unexpected reply: {str(tokens)[:200]}")
        return r.new_token_budget(len(tokens))

    # --- log-likelihood ---------------------------------------------------------------------------

    async def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        for i, r in enumerate(requests):
            check_loglikelihood_request(i, r)
        await self.start()
        if self._prefill is False:
            raise BackendError(f"{self._where('/generate')} {NO_PREFILL}")
        return await self.map_limited(self._loglikelihood_one, list(enumerate(requests)))

    async def _loglikelihood_one(self, item: tuple[int, LoglikelihoodRequest]) -> LoglikelihoodResult:
        i, r = item
        context, continuation = move_trailing_space(r.context, r.continuation)
        text = context + continuation
        tokens, reply = await asyncio.gather(
            self.request_json("POST", "/tokenize", {"inputs": text}), self._generate_raw(text, _PREFILL_PARAMS)
        )
        prefill = reply.get("details", {}).get("prefill") or []
        if not prefill:
            raise BackendError(f"{self._where('/generate')} {NO_PREFILL}")
        if not isinstance(tokens, list) or [t.get("id") for t in tokens] != [t.get("id") for t in prefill]:
            raise BackendError(
                f"{self._where('/tokenize')}: its tokens differ from /generate's prefill for requests[{i}] "
                "(is the prompt truncated?)"
            )
        boundary = len(context.encode("utf-8"))
        first = next(
            (j for j, t in enumerate(tokens) if int(t["start"]) >= boundary and int(t["stop"]) > int(t["start"])),
            None,
        )
        if first is None:
            raise BackendError(f"{self._where('/tokenize')}: no continuation token found for requests[{i}]")
        if first == 0:
            raise BackendRequestError(
                f"tgi: requests[{i}]: the continuation is the first token (empty context and no BOS token), "
                "so TGI gives it no log-probability"
            )
        logprob = 0.0
        for j in range(first, len(tokens)):
            if int(tokens[j]["stop"]) <= int(tokens[j]["start"]):
                continue  # a zero-width special token (e.g. an EOS the tokenizer appends) is not text
            t = prefill[j]
            lp = t.get("logprob")
            if lp is None or (isinstance(lp, float) and math.isnan(lp)):
                raise BackendError(f"{self._where('/generate')}: prefill token {t!r} has no log-probability")
            logprob += float(lp)
        return LoglikelihoodResult(logprob=logprob, is_greedy=None)

    # --- conformance probe hooks (backends/conformance.py) ---------------------------------------

    async def probe_generate(
        self, context: str, max_new_tokens: int, stop: Sequence[str], *, logprobs: bool = False
    ) -> RawGeneration:
        """Greedy generation as the server returns it (stop sequence kept, nothing cut), with the
        generated tokens' log-probabilities when asked (`details`)."""
        await self.start()
        params: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": False, "details": logprobs}
        if logprobs:
            params["top_n_tokens"] = 2  # the best alternatives at each position (greedy_argmax)
        if stop:
            params["stop"] = list(stop)
        reply = await self._generate_raw(context, params)
        details = reply.get("details", {})
        kept = [i for i, t in enumerate(details.get("tokens") or []) if not t.get("special")]
        tokens = [details["tokens"][i] for i in kept]
        lps = [None if t.get("logprob") is None else float(t["logprob"]) for t in tokens]
        top_tokens = details.get("top_tokens") or []
        tops = (
            [
                {str(t.get("text", "")): float(t["logprob"]) for t in top_tokens[i] if t.get("logprob") is not None}
                for i in kept
            ]
            if len(top_tokens) == len(details.get("tokens") or [])
            else []
        )
        return RawGeneration(str(reply["generated_text"]), lps, {"inputs": context, "parameters": params}, tops)

    async def probe_prompt(self, text: str) -> RawPromptScores:
        """`/generate`'s prefill log-probabilities of `text` and `/tokenize`'s token count."""
        await self.start()
        tokens = await self.request_json("POST", "/tokenize", {"inputs": text})
        reply = await self._generate_raw(text, _PREFILL_PARAMS)
        prefill = reply.get("details", {}).get("prefill") or []
        lps = [None if t.get("logprob") is None else float(t["logprob"]) for t in prefill]
        return RawPromptScores(
            [str(t.get("text", "")) for t in prefill],
            lps,
            len(tokens) if isinstance(tokens, list) else None,
            {"inputs": text, "parameters": _PREFILL_PARAMS},
        )

    # --- status -----------------------------------------------------------------------------------

    async def health(self) -> None:
        await self.check_path("/health")

    async def info(self) -> BackendInfo:
        await self.start()
        keys = ("version", "sha", "model_sha", "model_dtype", "max_input_tokens", "max_total_tokens")
        details = {k: str(self._info[k]) for k in keys if self._info.get(k) is not None}
        details["base_url"] = self.base_url
        details["max_concurrent_requests"] = str(self._info.get("max_concurrent_requests", ""))
        if self._prefill is not None:
            details["prefill_logprobs"] = str(self._prefill).lower()
        return BackendInfo(backend="tgi", model=str(self._info["model_id"]), details=details)

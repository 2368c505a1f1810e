"""OpenAI-compatible servers (vLLM, SGLang): `openai-completions` and `openai-chat`.

`openai-completions` (`POST /v1/completions`):
- `loglikelihood` sends the prompt with `echo: true`, `logprobs: 1`, `max_tokens: 1`, temperature 0,
  and reads the echoed prompt's `token_logprobs` (lm-eval's `local-completions` does the same).
  Where the tokenizer is known (`tokenizer=` a local folder or `smollm2`) the prompt is sent as
  token ids split exactly as hf-local and lm-eval split them, so scores are comparable token for
  token; otherwise it is sent as text and the continuation is the tokens whose `text_offset` is at or
  after the context's length (after lm-eval's trailing-whitespace rule). `is_greedy` compares each
  continuation token's log-probability with the best in `top_logprobs`.
- `generate_until` sends `max_tokens`, `temperature` (0 = greedy), `top_p`, `n`, `seed`, `stop`
  (token ids when the tokenizer is known, so the prompt is tokenised as hf-local does it); texts are
  cut at the earliest stop sequence on the client as well.

`openai-chat` (`POST /v1/chat/completions`): the context is one user message; generation only
(no prompt log-probabilities), for instruction-tuned models served with a chat template.

The model name is the `model` option, else the first model of `GET /v1/models` (whose
`max_model_len` vLLM also reports). Concurrency (the run's in-flight window): `max_concurrency`,
else what the server says (SGLang's `/get_server_info` `max_running_requests`), else 32; vLLM and
SGLang batch concurrent requests themselves (vLLM does not publish its `max_num_seqs`: pass it).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from hyoka.orchestrator.backends._http import HttpBackend, HttpConfig
from hyoka.orchestrator.backends._text import (
    check_generation_request,
    check_loglikelihood_request,
    cut_at_stop,
    lm_eval_split,
    move_trailing_space,
)
from hyoka.orchestrator.backends.base import (
    BackendConfigError,
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


class OpenAIConfig(HttpConfig):
    model: str | None = None  # default: the first model the server lists
    tokenizer: str | None = None  # local tokenizer (folder, .gguf, or `smollm2`): send token ids
    add_bos_token: bool = False  # with `tokenizer`: lm-eval's default for causal LMs
    max_stop_sequences: int | None = None  # OpenAI's own API takes 4; vLLM/SGLang no limit
    # Sent with every generation when set: llama.cpp's servers penalise repeats by default (1.1),
    # so their "greedy" is not argmax; 1.0 turns that off (the conformance probe's greedy_argmax).
    repeat_penalty: float | None = None


class _Tokenizer:
    """A local Hugging Face tokenizer, loaded from files only."""

    def __init__(self, spec: str, add_bos_token: bool) -> None:
        from transformers import AutoTokenizer

        from hyoka.orchestrator.backends.hf_local import resolve_model

        folder, gguf = resolve_model(spec)
        kwargs: dict[str, Any] = {"local_files_only": True}
        if gguf is not None:
            kwargs["gguf_file"] = gguf
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        except (OSError, ValueError) as e:
            raise BackendConfigError(f"openai-completions: cannot load tokenizer {spec!r}: {e}") from e
        self.add_bos_token = add_bos_token
        eos = self.tokenizer.eos_token_id
        bos = self.tokenizer.bos_token_id
        self.prefix_token_id: int = bos if bos is not None else eos

    def encode(self, text: str, *, special_tokens: bool = False) -> list[int]:
        ids: list[int] = self.tokenizer(text, add_special_tokens=special_tokens or self.add_bos_token)["input_ids"]
        return ids


class _OpenAIBase(HttpBackend):
    backend_name = "openai"

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None, **options: Any) -> None:
        self.openai_config = OpenAIConfig(**options)
        config = self.openai_config
        if config.base_url.rstrip("/").endswith("/v1"):  # accept the OpenAI-style base URL too
            config = config.model_copy(update={"base_url": config.base_url.rstrip("/")[: -len("/v1")]})
            self.openai_config = config
        super().__init__(config, transport)
        self._model = config.model
        self._max_model_len: int | None = None

    async def _on_start(self) -> None:
        reply = await self.request_json("GET", "/v1/models")
        models = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(models, list):
            raise BackendError(f"{self._where('/v1/models')}: not an OpenAI model list: {str(reply)[:200]}")
        ids = [m.get("id") for m in models if isinstance(m, dict)]
        if self._model is None:
            if not ids:
                raise BackendError(f"{self._where('/v1/models')}: the server serves no model")
            self._model = str(ids[0])
        elif self._model not in ids:
            raise BackendConfigError(f"{self._where('/v1/models')}: model {self._model!r} not served; served: {ids}")
        for m in models:
            if isinstance(m, dict) and m.get("id") == self._model and m.get("max_model_len"):
                self._max_model_len = int(m["max_model_len"])
        if self.config.max_concurrency is None:
            limit = await self._server_limit()
            if limit is not None:
                self._concurrency = limit

    async def _server_limit(self) -> int | None:
        """The server's own limit on requests decoded at once, where it tells: SGLang's
        `/get_server_info` (`max_running_requests`, also under `internal_states`). vLLM does not
        publish `max_num_seqs`: give `max_concurrency=` (else the default)."""
        try:
            info = await self.request_json("GET", "/get_server_info", retries=0)
        except BackendError:
            return None
        if not isinstance(info, dict):
            return None
        candidates = [info.get("max_running_requests")]
        states = info.get("internal_states")
        if isinstance(states, list):
            candidates += [s.get("max_running_requests") for s in states if isinstance(s, dict)]
        for value in candidates:
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    def _stops(self, stop: Sequence[str]) -> list[str]:
        limit = self.openai_config.max_stop_sequences
        return list(stop if limit is None else stop[:limit])

    def _sampling(self, r: GenerationRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"max_tokens": r.max_new_tokens, "temperature": r.temperature, **self._penalty()}
        if not r.greedy:
            params["top_p"] = r.top_p
            if r.seed is not None:
                params["seed"] = r.seed
        if r.stop:
            params["stop"] = self._stops(r.stop)
        return params

    def _penalty(self) -> dict[str, Any]:
        penalty = self.openai_config.repeat_penalty
        return {} if penalty is None else {"repeat_penalty": penalty}

    @staticmethod
    def _choices(reply: Any, expected: int, where: str) -> list[dict[str, Any]]:
        choices = reply.get("choices") if isinstance(reply, dict) else None
        if not isinstance(choices, list) or len(choices) != expected:
            raise BackendError(f"{where}: expected {expected} choice(s), got: {str(reply)[:200]}")
        return sorted(choices, key=lambda c: int(c.get("index", 0)))

    async def health(self) -> None:
        await self.check_path("/health")

    async def info(self) -> BackendInfo:
        await self.start()
        details = {"base_url": self.base_url, "max_concurrency": str(self._concurrency)}
        if self._max_model_len:
            details["max_model_len"] = str(self._max_model_len)
        return BackendInfo(backend=self.backend_name, model=str(self._model), details=details)

    async def generate_until(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        for i, r in enumerate(requests):
            check_generation_request(i, r)
        await self.start()
        return await self.map_limited(self._generate_one, requests)

    @abc.abstractmethod
    async def _generate_one(self, r: GenerationRequest) -> list[str]: ...

    async def _complete(
        self,
        path: str,
        r: GenerationRequest,
        inputs: dict[str, Any],
        max_tokens: int,
        text_of: Callable[[dict[str, Any]], Any],
    ) -> list[str]:
        """r.n texts from one request to `path` with `inputs` (prompt or messages); `text_of`
        finds the text in a choice."""
        if max_tokens == 0:
            return [""] * r.n
        n = 1 if r.greedy else r.n  # greedy samples are all the same; some servers reject n > 1 then
        payload = {"model": self._model, **inputs, "n": n, **self._sampling(r), "max_tokens": max_tokens}
        choices = self._choices(await self.request_json("POST", path, payload), n, self._where(path))
        texts = [cut_at_stop(str(text_of(c) or ""), r.stop) for c in choices]
        return texts * r.n if r.greedy else texts


@register_backend("openai-completions")
class OpenAICompletionsBackend(_OpenAIBase):
    """vLLM / SGLang `/v1/completions`; see the module docstring."""

    backend_name = "openai-completions"

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None, **options: Any) -> None:
        super().__init__(transport=transport, **options)
        spec = self.openai_config.tokenizer
        self._tokenizer = _Tokenizer(spec, self.openai_config.add_bos_token) if spec else None

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            prompt_logprobs=True,
            token_ids_input=self._tokenizer is not None,
            max_concurrency=self._concurrency,
            max_stop_sequences=self.openai_config.max_stop_sequences,
            max_new_tokens_limit=self._max_model_len - 1 if self._max_model_len else None,
        )

    def _prompt(self, text: str, *, special_tokens: bool = False) -> str | list[int]:
        """Token ids where a tokenizer is configured (the server then adds nothing), else the text
        (the server tokenises it with its own defaults)."""
        if self._tokenizer is None:
            return text
        return self._tokenizer.encode(text, special_tokens=special_tokens)

    async def _generate_one(self, r: GenerationRequest) -> list[str]:
        prompt = self._prompt(r.context, special_tokens=r.add_special_tokens)
        budget = self._new_token_budget(r, prompt)
        return await self._complete("/v1/completions", r, {"prompt": prompt}, budget, lambda c: c.get("text"))

    def _new_token_budget(self, r: GenerationRequest, prompt: str | list[int]) -> int:
        if r.max_total_tokens is None:
            return r.max_new_tokens
        if isinstance(prompt, str):
            raise BackendConfigError(
                f"{self.backend_name}: a request bounds prompt + generation to {r.max_total_tokens} tokens, "
                "which needs the model's tokenizer: pass tokenizer= (a local folder, .gguf or smollm2)"
            )
        return r.new_token_budget(len(prompt))

    async def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        for i, r in enumerate(requests):
            check_loglikelihood_request(i, r)
        await self.start()
        return await self.map_limited(self._loglikelihood_one, list(enumerate(requests)))

    async def _loglikelihood_one(self, item: tuple[int, LoglikelihoodRequest]) -> LoglikelihoodResult:
        i, r = item
        prompt: str | list[int]
        if self._tokenizer is not None:
            tok = self._tokenizer
            ctx, cont = lm_eval_split(tok.encode, tok.prefix_token_id, r.context, r.continuation)
            prompt, first, end = ctx + cont, len(ctx), len(ctx) + len(cont)
        else:
            context, continuation = move_trailing_space(r.context, r.continuation)
            prompt = context + continuation
        payload = {
            "model": self._model,
            "prompt": prompt,
            "max_tokens": 1,
            "temperature": 0,
            "logprobs": 1,
            "echo": True,
        }
        where = self._where("/v1/completions")
        (choice,) = self._choices(await self.request_json("POST", "/v1/completions", payload), 1, where)
        logprobs = choice.get("logprobs") or {}
        token_logprobs = logprobs.get("token_logprobs")
        top_logprobs = logprobs.get("top_logprobs") or []
        if not isinstance(token_logprobs, list) or not token_logprobs:
            raise BackendError(f"{where}: no echoed prompt log-probabilities (does the server support echo?)")
        if self._tokenizer is None:
            offsets = logprobs.get("text_offset")
            if not isinstance(offsets, list) or len(offsets) != len(token_logprobs):
                raise BackendError(f"{where}: echoed logprobs carry no text_offset")
            boundary, end_char = len(context), len(prompt)
            in_prompt = [j for j, off in enumerate(offsets) if int(off) < end_char]
            end = in_prompt[-1] + 1 if in_prompt else 0
            first = next((j for j in range(end) if int(offsets[j]) >= boundary), end)
        if first == 0:
            raise BackendRequestError(
                f"{self.backend_name}: requests[{i}]: the continuation is the first prompt token "
                "(empty context): it has no log-probability; pass tokenizer= to prefix BOS/EOS"
            )
        if first >= end or end > len(token_logprobs):
            raise BackendError(f"{where}: the echoed prompt has no tokens for the continuation of requests[{i}]")
        logprob, greedy = 0.0, True
        for j in range(first, end):
            lp = token_logprobs[j]
            if lp is None:
                raise BackendError(f"{where}: echoed prompt token {j} has no log-probability")
            logprob += float(lp)
            top = top_logprobs[j] if j < len(top_logprobs) else None
            if not top or float(lp) < max(float(v) for v in top.values()):
                greedy = False
        return LoglikelihoodResult(logprob=logprob, is_greedy=greedy)

    # --- conformance probe hooks (backends/conformance.py) ---------------------------------------

    async def probe_generate(
        self, context: str, max_new_tokens: int, stop: Sequence[str], *, logprobs: bool = False
    ) -> RawGeneration:
        """Greedy generation as the server returns it (nothing cut), with the generated tokens'
        log-probabilities when asked."""
        await self.start()
        payload: dict[str, Any] = {
            "model": self._model,
            "prompt": self._prompt(context),
            "max_tokens": max_new_tokens,
            "temperature": 0,
            **self._penalty(),
        }
        if logprobs:
            payload["logprobs"] = 2  # the chosen token's and the best alternatives' (greedy_argmax)
        if stop:
            payload["stop"] = self._stops(stop)
        where = self._where("/v1/completions")
        (choice,) = self._choices(await self.request_json("POST", "/v1/completions", payload), 1, where)
        logprobs_reply = choice.get("logprobs") or {}
        lps = logprobs_reply.get("token_logprobs") or []
        tops = [
            {str(k): float(v) for k, v in top.items()} if isinstance(top, dict) else {}
            for top in logprobs_reply.get("top_logprobs") or []
        ]
        return RawGeneration(
            str(choice.get("text") or ""), [None if x is None else float(x) for x in lps], payload, tops
        )

    async def probe_prompt(self, text: str) -> RawPromptScores:
        """The echoed prompt's log-probabilities (one new token, dropped) and the prompt's token
        count: the local tokenizer's where configured, else the server's `usage.prompt_tokens`."""
        await self.start()
        prompt = self._prompt(text)
        payload = {"model": self._model, "prompt": prompt, "max_tokens": 1, "temperature": 0, "logprobs": 1}
        payload["echo"] = True
        where = self._where("/v1/completions")
        reply = await self.request_json("POST", "/v1/completions", payload)
        (choice,) = self._choices(reply, 1, where)
        logprobs = choice.get("logprobs") or {}
        lps = list(logprobs.get("token_logprobs") or [])
        tokens = [str(t) for t in logprobs.get("tokens") or []]
        usage = reply.get("usage") or {}
        generated = usage.get("completion_tokens")
        if isinstance(generated, int) and 0 < generated <= len(lps):  # echo: prompt + generated tokens
            lps, tokens = lps[:-generated], tokens[:-generated]
        count = len(prompt) if isinstance(prompt, list) else usage.get("prompt_tokens")
        return RawPromptScores(
            tokens,
            [None if x is None else float(x) for x in lps],
            int(count) if isinstance(count, int) else None,
            payload,
        )


@register_backend("openai-chat")
class OpenAIChatBackend(_OpenAIBase):
    """`/v1/chat/completions`, generation only; see the module docstring."""

    backend_name = "openai-chat"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            prompt_logprobs=False,
            token_ids_input=False,
            max_concurrency=self._concurrency,
            max_stop_sequences=self.openai_config.max_stop_sequences,
        )

    async def _generate_one(self, r: GenerationRequest) -> list[str]:
        messages = [{"role": "user", "content": r.context}]
        return await self._complete(
            "/v1/chat/completions",
            r,
            {"messages": messages},
            r.max_new_tokens,
            lambda c: (c.get("message") or {}).get("content"),
        )

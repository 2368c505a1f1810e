"""vLLM's OpenAI-compatible protocol served from an hf-local model: a stand-in for a remote GPU server.

Implements what the `openai-completions` and `openai-chat` backends rely on, as vLLM's
OpenAI server documents it:

- `GET /v1/models`: {"object": "list", "data": [{"id", "object": "model", "max_model_len", ...}]}.
- `GET /health`: 200.
- `POST /v1/completions`: `prompt` as a string, a list of token ids, or a list of either;
  `max_tokens` (default 16), `temperature` (default 1.0; 0 is greedy), `top_p`, `n`, `seed`, `stop`
  (str or list; the stop string is not included in the text), `echo` (prompt + completion in `text`),
  `logprobs` (k: `tokens`, `token_logprobs`, `top_logprobs` with the k best plus the chosen token,
  `text_offset`; with echo the prompt's tokens come first and the first has null log-probability).
  Choices are numbered prompt-major (`index = prompt * n + sample`). `usage` counts tokens.
- `POST /v1/chat/completions`: `messages` through the tokenizer's chat template; `choices[].message`.
- Errors: 400 {"object": "error", "message", "type": "BadRequestError", "code": 400}; 404 for an
  unknown model.

Text prompts are tokenised with special tokens (as vLLM does); token-id prompts are used as given.

`fault=` makes it misbehave as real servers have, for the conformance probe's tests:
`"shift_logprobs"` reports each echoed token's value from the next position, as llama-cpp-python
0.3.36 does (the value for token i is the log-probability of token i+1); `"drop_logprobs"` echoes
null for every prompt token; `"ignore_stop"` generates as if no stop sequence were given;
`"not_argmax"` reports, for the first generated token, an alternative more likely than the chosen one
(what a server that penalises repeats by default, as llama.cpp's do, returns).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from hyoka.orchestrator.backends.hf_local import Generated, LocalModel, PromptToken
from hyoka.orchestrator.backends.testing._server import JsonHttpServer, Reply

Fault = Literal["shift_logprobs", "drop_logprobs", "ignore_stop", "not_argmax"]


def _error(message: str, status: int = 400, kind: str = "BadRequestError") -> Reply:
    return Reply(status, {"object": "error", "message": message, "type": kind, "param": None, "code": status})


class OpenAIServer(JsonHttpServer):
    def __init__(self, lm: LocalModel, *, model_id: str = "hyoka/tiny-llama", fault: Fault | None = None) -> None:
        super().__init__()
        self.lm = lm
        self.fault = fault
        self.model_id = model_id
        self.received: list[dict[str, Any]] = []
        self.routes = {
            ("GET", "/v1/models"): self._models,
            ("GET", "/health"): lambda _body: Reply(200),
            ("POST", "/v1/completions"): self._completions,
            ("POST", "/v1/chat/completions"): self._chat,
        }

    def _models(self, _body: Any) -> Reply:
        model = {"id": self.model_id, "object": "model", "created": 0, "owned_by": "vllm"}
        model |= {"root": self.model_id, "max_model_len": self.lm.max_length}
        return Reply(200, {"object": "list", "data": [model]})

    def _check(self, body: Any) -> Reply | None:
        if not isinstance(body, dict):
            return _error("request body must be a JSON object")
        self.received.append(body)
        if body.get("model") != self.model_id:
            return _error(f"The model `{body.get('model')}` does not exist.", 404, "NotFoundError")
        return None

    def _sample(self, ids: list[int], body: dict[str, Any], n: int) -> list[Generated] | Reply:
        max_tokens = body.get("max_tokens", 16)
        temperature = body.get("temperature", 1.0)
        top_p = body.get("top_p", 1.0)
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        if self.fault == "ignore_stop":
            stop = []
        if not isinstance(max_tokens, int) or max_tokens < 0:
            return _error(f"max_tokens must be at least 0, got {max_tokens}.")
        if temperature < 0 or not 0 < top_p <= 1:
            return _error("temperature must be non-negative and top_p in (0, 1].")
        if len(ids) + max_tokens > self.lm.max_length:
            return _error(
                f"This model's maximum context length is {self.lm.max_length} tokens. However, you requested "
                f"{len(ids) + max_tokens} tokens ({len(ids)} in the messages, {max_tokens} in the completion)."
            )
        (samples,) = self.lm.generate(
            [ids],
            max_new_tokens=max_tokens,
            stop=stop,
            temperature=temperature,
            top_p=top_p,
            n=n,
            seed=body.get("seed"),
        )
        return samples

    def _completions(self, body: Any) -> Reply:
        if (bad := self._check(body)) is not None:
            return bad
        prompt = body.get("prompt")
        if isinstance(prompt, str) or (isinstance(prompt, list) and prompt and isinstance(prompt[0], int)):
            prompts = [prompt]
        elif isinstance(prompt, list) and prompt:
            prompts = list(prompt)
        else:
            return _error("prompt must be a string, a list of token ids, or a non-empty list of them")
        n = int(body.get("n", 1))
        echo = bool(body.get("echo"))
        k = body.get("logprobs")
        if body.get("max_tokens", 16) == 0 and not echo:
            return _error("max_tokens must be at least 1 unless echo is set.")
        choices, prompt_tokens, completion_tokens = [], 0, 0
        for p_index, p in enumerate(prompts):
            if isinstance(p, str):
                ids: list[int] = self.lm.tokenizer(p, add_special_tokens=True)["input_ids"]
                prompt_text = p
            else:
                ids, prompt_text = list(p), self.lm.decode(p)
            samples = self._sample(ids, body, n)
            if isinstance(samples, Reply):
                return samples
            prompt_tokens += len(ids)
            for s_index, s in enumerate(samples):
                completion_tokens += len(s.token_ids)
                logprobs = None
                if k is not None:
                    logprobs = self._logprobs(ids, prompt_text if isinstance(p, str) else None, s, int(k), echo)
                choices.append(
                    {
                        "index": p_index * n + s_index,
                        "text": (prompt_text if echo else "") + s.text,
                        "logprobs": logprobs,
                        "finish_reason": "length" if s.finish_reason == "length" else "stop",
                        "stop_reason": None,
                    }
                )
        return Reply(200, self._envelope("text_completion", choices, prompt_tokens, completion_tokens))

    def _logprobs(self, ids: list[int], text: str | None, s: Generated, k: int, echo: bool) -> dict[str, Any]:
        gen_ids = s.token_ids
        scored = self.lm.prompt_logprobs(ids + gen_ids, top_k=max(k, 1))
        if echo and self.fault == "shift_logprobs":  # token i gets token i+1's value (and top)
            scored = [
                PromptToken(id=t.id, logprob=nxt.logprob, top=nxt.top)
                for t, nxt in zip(scored, [*scored[1:], PromptToken(id=-1, logprob=None)], strict=True)
            ]
        elif echo and self.fault == "drop_logprobs":
            scored = [PromptToken(id=t.id, logprob=None) if j < len(ids) else t for j, t in enumerate(scored)]
        if text is not None:  # text prompt: character offsets from the tokenizer
            enc = self.lm.tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
            offsets = [start for start, _ in enc["offset_mapping"]]
            prompt_len = len(text)
        else:  # token-id prompt: offsets into the detokenised pieces
            offsets, prompt_len = [], 0
            for t in ids:
                offsets.append(prompt_len)
                prompt_len += len(self.lm.decode([t]))
        for t in gen_ids:
            offsets.append(prompt_len)
            prompt_len += len(self.lm.decode([t]))
        first = 0 if echo else len(ids)
        out: dict[str, Any] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        for j in range(first, len(scored)):
            pt = scored[j]
            out["tokens"].append(self.lm.decode([pt.id]))
            out["token_logprobs"].append(pt.logprob)
            if pt.logprob is None:
                out["top_logprobs"].append(None)
            else:
                top = {self.lm.decode([tid]): lp for tid, lp in pt.top[:k]}
                top[self.lm.decode([pt.id])] = pt.logprob
                if self.fault == "not_argmax" and j == len(ids):
                    top["<more likely>"] = pt.logprob + 1.0
                out["top_logprobs"].append(top)
            out["text_offset"].append(offsets[j] - (0 if echo else offsets[len(ids)]))
        return out

    def _chat(self, body: Any) -> Reply:
        if (bad := self._check(body)) is not None:
            return bad
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error("messages must be a non-empty list")
        if not self.lm.tokenizer.chat_template:
            return _error("this model's tokenizer has no chat template")
        chat = self.lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids: list[int] = self.lm.tokenizer(chat, add_special_tokens=False)["input_ids"]
        n = int(body.get("n", 1))
        samples = self._sample(ids, body, n)
        if isinstance(samples, Reply):
            return samples
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": s.text},
                "finish_reason": "length" if s.finish_reason == "length" else "stop",
            }
            for i, s in enumerate(samples)
        ]
        completion = sum(len(s.token_ids) for s in samples)
        return Reply(200, self._envelope("chat.completion", choices, len(ids), completion))

    def _envelope(self, kind: str, choices: list[dict[str, Any]], prompt: int, completion: int) -> dict[str, Any]:
        return {
            "id": f"cmpl-{time.monotonic_ns()}",
            "object": kind,
            "created": int(time.time()),
            "model": self.model_id,
            "choices": choices,
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }

"""TGI's documented HTTP protocol served from an hf-local model: a stand-in for a remote GPU server.

Implements what the `tgi` backend relies on, as text-generation-inference 3.x's router does it
(router/src/server.rs, validation.rs, lib.rs):

- `GET /info`: model_id, max_concurrent_requests, max_best_of, max_stop_sequences, max_input_tokens,
  max_total_tokens, max_client_batch_size, router, version...
- `GET /health`: 200, empty body.
- `POST /tokenize` {"inputs"}: [{"id", "text", "start", "stop"}], offsets in *bytes* of the UTF-8
  input, special tokens added as for generation.
- `POST /generate` {"inputs", "parameters"}: {"generated_text", "details"?}. Sampling is on when
  `do_sample` or any of temperature/top_k/top_p/typical_p is present. `generated_text` keeps the
  stop sequence (all generated tokens, EOS excluded). `details.prefill` holds the prompt tokens with
  log-probabilities (first one null) only with `decoder_input_details` *and* when the server was
  started with `enable_prefill_logprobs`; otherwise it is silently empty, as in TGI.
- Errors: 422 {"error", "error_type": "validation"} for invalid parameters (TGI's messages),
  429 {"error": "Model is overloaded", "error_type": "overloaded"} beyond max_concurrent_requests.

`fault=` makes it misbehave, for the conformance probe's tests: `"shift_logprobs"` gives each
prefill token the value of the next position (the last one the first generated token's),
`"drop_logprobs"` null for every prefill token, `"ignore_stop"` ignores `stop`, `"not_argmax"`
reports, for the first generated token, an alternative more likely than the chosen one.
`top_n_tokens` (with `details`) gives `details.top_tokens`: per generated token, the n best.

Not implemented (not used by hyoka): streaming, best_of, grammar, watermark, the
OpenAI routes, top_k and typical_p sampling (answered with 422 rather than ignored).
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from hyoka.orchestrator.backends.hf_local import LocalModel
from hyoka.orchestrator.backends.testing._server import JsonHttpServer, Reply
from hyoka.orchestrator.backends.testing.openai_server import Fault


def _validation(message: str) -> Reply:
    return Reply(422, {"error": f"Input validation error: {message}", "error_type": "validation"})


class TGIServer(JsonHttpServer):
    bad_json_status = 422  # axum's Json extractor

    def __init__(
        self,
        lm: LocalModel,
        *,
        model_id: str = "hyoka/tiny-llama",
        enable_prefill_logprobs: bool = True,
        max_concurrent_requests: int = 128,
        max_stop_sequences: int = 4,
        max_input_tokens: int | None = None,
        max_total_tokens: int | None = None,
        latency_s: float = 0.0,
        fault: Fault | None = None,
    ) -> None:
        super().__init__()
        self.lm = lm
        self.fault = fault
        self.model_id = model_id
        self.enable_prefill_logprobs = enable_prefill_logprobs
        self.max_concurrent_requests = max_concurrent_requests
        self.max_stop_sequences = max_stop_sequences
        self.max_total_tokens = max_total_tokens or lm.max_length
        self.max_input_tokens = max_input_tokens or self.max_total_tokens - 1
        self.latency_s = latency_s  # added to each /generate, as a remote GPU's would be (makes overlap certain)
        self.received: list[dict[str, Any]] = []  # /generate bodies, for tests that check the payload
        self._in_flight = 0
        self._lock = threading.Lock()
        self.routes = {
            ("GET", "/info"): self._info,
            ("GET", "/health"): lambda _body: Reply(200),
            ("POST", "/tokenize"): self._tokenize,
            ("POST", "/generate"): self._generate_limited,
        }

    def _info(self, _body: Any) -> Reply:
        return Reply(
            200,
            {
                "model_id": self.model_id,
                "model_sha": None,
                "model_pipeline_tag": "text-generation",
                "max_concurrent_requests": self.max_concurrent_requests,
                "max_best_of": 2,
                "max_stop_sequences": self.max_stop_sequences,
                "max_input_tokens": self.max_input_tokens,
                "max_total_tokens": self.max_total_tokens,
                "validation_workers": 2,
                "max_client_batch_size": 4,
                "router": "text-generation-router",
                "version": "3.3.6+hyoka-protocol-server",
                "sha": None,
                "docker_label": None,
            },
        )

    def _encode(self, text: str) -> list[int]:
        ids: list[int] = self.lm.tokenizer(text, add_special_tokens=True)["input_ids"]
        return ids

    def _tokenize(self, body: Any) -> Reply:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), str):
            return Reply(422, {"error": "missing field `inputs`", "error_type": "validation"})
        text: str = body["inputs"]
        enc = self.lm.tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
        # Python tokenizers give character offsets; TGI (Rust) gives byte offsets.
        byte_at = [0]
        for ch in text:
            byte_at.append(byte_at[-1] + len(ch.encode("utf-8")))
        raw = text.encode("utf-8")
        tokens = []
        for tok, (start, stop) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
            b0, b1 = byte_at[start], byte_at[stop]
            tokens.append({"id": tok, "text": raw[b0:b1].decode("utf-8", "replace"), "start": b0, "stop": b1})
        return Reply(200, tokens)

    def _generate_limited(self, body: Any) -> Reply:
        with self._lock:
            if self._in_flight >= self.max_concurrent_requests:
                return Reply(429, {"error": "Model is overloaded", "error_type": "overloaded"})
            self._in_flight += 1
            if isinstance(body, dict):
                self.received.append(body)
        try:
            if self.latency_s:
                time.sleep(self.latency_s)
            return self._generate(body)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _generate(self, body: Any) -> Reply:
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), str):
            return Reply(422, {"error": "missing field `inputs`", "error_type": "validation"})
        inputs: str = body["inputs"]
        p: dict[str, Any] = body.get("parameters") or {}
        sampling = bool(p.get("do_sample")) or any(p.get(k) is not None for k in ("temperature", "top_k", "top_p"))
        temperature = p.get("temperature")
        if temperature is not None and temperature <= 0:
            return _validation("`temperature` must be strictly positive")
        top_p = p.get("top_p")
        if top_p is not None and not 0.0 < top_p < 1.0:
            return _validation("`top_p` must be > 0.0 and < 1.0")
        if p.get("top_k") is not None or p.get("typical_p") is not None:
            return _validation("top_k / typical_p sampling is not implemented by this protocol test server")
        if p.get("max_new_tokens") == 0:
            return _validation("`max_new_tokens` must be strictly positive")
        stop: list[str] = list(p.get("stop") or [])
        if len(stop) > self.max_stop_sequences:
            return _validation(f"`stop` supports up to {self.max_stop_sequences} stop sequences. Given: {len(stop)}")
        if self.fault == "ignore_stop":
            stop = []
        if not inputs:
            return _validation("`inputs` cannot be empty")
        ids = self._encode(inputs)
        truncate = p.get("truncate")
        if truncate is not None:
            if not 0 < truncate <= self.max_input_tokens:
                return _validation(
                    f"`truncate` must be strictly positive and less than {self.max_input_tokens}. Given: {truncate}"
                )
            ids = ids[-truncate:]
        if len(ids) > self.max_input_tokens:
            return _validation(f"`inputs` must have less than {self.max_input_tokens} tokens. Given: {len(ids)}")
        max_new = p.get("max_new_tokens") or self.max_total_tokens - len(ids)
        if len(ids) + max_new > self.max_total_tokens:
            return _validation(
                f"`inputs` tokens + `max_new_tokens` must be <= {self.max_total_tokens}. "
                f"Given: {len(ids)} `inputs` tokens and {max_new} `max_new_tokens`"
            )
        seed = p.get("seed")
        if sampling and seed is None:
            seed = random.getrandbits(63)
        ((gen,),) = self.lm.generate(
            [ids],
            max_new_tokens=max_new,
            stop=stop,
            temperature=(temperature or 1.0) if sampling else 0.0,
            top_p=top_p or 1.0,
            seed=seed if sampling else None,
        )
        text_ids = gen.token_ids[:-1] if gen.finish_reason == "eos_token" else gen.token_ids
        reply: dict[str, Any] = {"generated_text": self.lm.decode(text_ids)}
        if p.get("details"):
            top_n = int(p.get("top_n_tokens") or 0)
            scored = self.lm.prompt_logprobs(ids + gen.token_ids, top_k=max(top_n, 1))
            special = set(self.lm.tokenizer.all_special_ids)
            prefill = []
            if p.get("decoder_input_details") and self.enable_prefill_logprobs:
                prefill = [
                    {"id": t.id, "text": self.lm.tokenizer.decode([t.id]), "logprob": t.logprob}
                    for t in scored[: len(ids)]
                ]
                if self.fault == "shift_logprobs":
                    for j, t in enumerate(prefill):
                        t["logprob"] = scored[j + 1].logprob
                elif self.fault == "drop_logprobs":
                    for t in prefill:
                        t["logprob"] = None
            reply["details"] = {
                "finish_reason": gen.finish_reason,
                "generated_tokens": len(gen.token_ids),
                "seed": seed if sampling else None,
                "prefill": prefill,
                "tokens": [
                    {
                        "id": t.id,
                        "text": self.lm.tokenizer.decode([t.id]),
                        "logprob": t.logprob,
                        "special": t.id in special,
                    }
                    for t in scored[len(ids) :]
                ],
            }
            if top_n:
                top_tokens = [
                    [
                        {"id": tid, "text": self.lm.tokenizer.decode([tid]), "logprob": lp, "special": tid in special}
                        for tid, lp in t.top[:top_n]
                    ]
                    for t in scored[len(ids) :]
                ]
                if self.fault == "not_argmax" and top_tokens:
                    best = scored[len(ids)].logprob or 0.0
                    top_tokens[0].insert(
                        0, {"id": -1, "text": "<more likely>", "logprob": best + 1.0, "special": False}
                    )
                reply["details"]["top_tokens"] = top_tokens
        return Reply(200, reply)

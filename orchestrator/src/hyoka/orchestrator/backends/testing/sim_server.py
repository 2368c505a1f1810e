"""A simulated OpenAI-compatible model server with C decoding slots, for scheduling tests and
`benchmarks/bench_orchestrator.py`. It computes nothing: each answer takes a time drawn, from the
prompt alone, from a length distribution with a long tail, and the server records what it saw.

Protocol (what `openai-completions` and lm-evaluation-harness's `local-completions` use):
`GET /v1/models`, `GET /health`, `GET /get_server_info` (SGLang's: `max_running_requests` = C, so
clients can size themselves; off with `report_limit=False`), `POST /v1/completions` with `prompt`
a string or a list of strings (each prompt takes a slot; choices in prompt order). Answers are
" ans" repeated the drawn number of tokens, cut at the first `stop` string; `max_tokens` does not
change the timing. `GET /sim/stats` returns `stats()` as JSON and `POST /sim/reset` clears it.

Slots: `overflow="queue"` (vLLM, SGLang) makes a request wait for a free slot; `"reject"` (TGI)
answers 429 when all C are busy. Two test modes replace the timing with control:
- `hold_until_full`: a request is answered only while the server holds C requests (the oldest
  first), or once all `expected_total` requests have arrived; a client that does not refill the
  window as each answer comes back stalls instead of finishing. Each release records how many
  requests the server held (`release_levels`).
- `answer_limit=K`: the first K requests are answered, later ones are held until `stop()`: a client
  killed then has persisted every answer it was given, so a rerun can be checked to repeat none.

Everything it observes: requests received and answered (per prompt), slots busy now and at most,
busy slot-seconds (the integral of busy slots over time), first arrival and last answer.

Standard library only (asyncio streams, HTTP/1.1 with keep-alive and Content-Length bodies), on
127.0.0.1; in a background thread (`with SimServer(...) as s`) or as a process
(`python -m hyoka.orchestrator.backends.testing.sim_server --slots 16`, which prints its URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

from hyoka.orchestrator.backends.conformance import PROBE_PROMPTS


@dataclass(frozen=True)
class LatencyModel:
    """Answer lengths: most short, `long_fraction` long (uniform within each range), drawn from a
    hash of the prompt and `seed`, so every client sees the same time for the same prompt."""

    seconds_per_token: float = 0.002
    short_tokens: tuple[int, int] = (20, 80)
    long_tokens: tuple[int, int] = (400, 800)
    long_fraction: float = 0.1
    seed: int = 0

    def tokens(self, prompt: str) -> int:
        """The answer's length for `prompt` (its surrounding whitespace ignored, so clients that
        trim prompts differently still see the same time)."""
        digest = hashlib.sha256(f"{self.seed}\x00{prompt.strip()}".encode()).digest()
        u1 = int.from_bytes(digest[:8], "big") / 2**64
        u2 = int.from_bytes(digest[8:16], "big") / 2**64
        lo, hi = self.long_tokens if u1 < self.long_fraction else self.short_tokens
        return lo + int(u2 * (hi - lo + 1))

    def seconds(self, prompt: str) -> float:
        return self.tokens(prompt) * self.seconds_per_token


class SimServer:
    """See the module docstring."""

    def __init__(
        self,
        slots: int,
        *,
        latency: LatencyModel | None = None,
        overflow: Literal["queue", "reject"] = "queue",
        model_id: str = "sim/model",
        report_limit: bool = True,
        hold_until_full: bool = False,
        expected_total: int | None = None,
        answer_limit: int | None = None,
        port: int = 0,
    ) -> None:
        if slots < 1:
            raise ValueError("slots must be >= 1")
        if hold_until_full and expected_total is None:
            raise ValueError("hold_until_full needs expected_total")
        self.slots = slots
        self.latency = latency or LatencyModel()
        self.overflow = overflow
        self.model_id = model_id
        self.report_limit = report_limit
        self.hold_until_full = hold_until_full
        self.expected_total = expected_total
        self.answer_limit = answer_limit
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._holds: list[asyncio.Future[None]] = []
        self._forever: asyncio.Event | None = None
        self.reset()

    # --- observations -------------------------------------------------------------------------

    def reset(self) -> None:
        self.received = 0  # prompts received
        self.answered: Counter[str] = Counter()  # prompt -> times answered
        self.rejected = 0  # prompts answered 429
        self.busy = 0  # prompts in a slot now
        self.max_busy = 0
        self.busy_slot_seconds = 0.0
        self.work_seconds = 0.0  # sum of the drawn answer times of the answered prompts
        self.longest_seconds = 0.0
        self.first_arrival: float | None = None
        self.first_item_arrival: float | None = None
        self.last_answer: float | None = None
        self.release_levels: list[int] = []  # hold_until_full: prompts held at each answer
        self._held: list[asyncio.Future[None]] = []
        self._changed_at = time.perf_counter()

    def stats(self) -> dict[str, Any]:
        span = (self.last_answer or 0.0) - (self.first_arrival or 0.0)
        return {
            "slots": self.slots,
            "received": self.received,
            "answered": sum(self.answered.values()),
            # of which the conformance probe's (hyoka eval probes a server before its first item)
            "answered_probe": sum(n for prompt, n in self.answered.items() if prompt in PROBE_PROMPTS),
            "rejected": self.rejected,
            "max_busy": self.max_busy,
            "busy_slot_seconds": self.busy_slot_seconds,
            "work_seconds": self.work_seconds,
            "longest_seconds": self.longest_seconds,
            "span_seconds": max(span, 0.0),
            # from the first request that is not the conformance probe's
            "item_span_seconds": max((self.last_answer or 0.0) - (self.first_item_arrival or 0.0), 0.0),
            "utilisation": self.busy_slot_seconds / (self.slots * span) if span > 0 else 0.0,
        }

    def _set_busy(self, delta: int) -> None:
        now = time.perf_counter()
        self.busy_slot_seconds += self.busy * (now - self._changed_at)
        self._changed_at = now
        self.busy += delta
        self.max_busy = max(self.max_busy, self.busy)

    # --- serving ------------------------------------------------------------------------------

    async def _one_prompt(self, prompt: str) -> str | None:
        """Serve one prompt in a slot; None: rejected (all slots busy)."""
        now = time.perf_counter()
        if self.first_arrival is None:
            self.first_arrival = now
        if self.first_item_arrival is None and prompt not in PROBE_PROMPTS:
            self.first_item_arrival = now
        self.received += 1
        tokens = self.latency.tokens(prompt)
        seconds = tokens * self.latency.seconds_per_token
        if self.answer_limit is not None and self.received > self.answer_limit:
            assert self._forever is not None
            await self._forever.wait()  # held until the server stops
        if self.hold_until_full:
            self._set_busy(+1)
            future = asyncio.get_running_loop().create_future()
            self._held.append(future)
            self._release_held()
            await future
        else:
            if self.busy >= self.slots or self._holds:
                if self.overflow == "reject":
                    self.rejected += 1
                    return None
                future = asyncio.get_running_loop().create_future()
                self._holds.append(future)
                await future  # a finishing prompt handed its slot over (still counted busy)
            else:
                self._set_busy(+1)
            await asyncio.sleep(seconds)
        if not self.hold_until_full and self._holds:
            self._holds.pop(0).set_result(None)  # the slot goes to the oldest waiting prompt
        else:
            self._set_busy(-1)
        self.answered[prompt] += 1
        self.work_seconds += seconds
        self.longest_seconds = max(self.longest_seconds, seconds)
        self.last_answer = time.perf_counter()
        return " ans" * tokens

    def _release_held(self) -> None:
        assert self.expected_total is not None
        while self._held and (len(self._held) >= self.slots or self.received >= self.expected_total):
            self.release_levels.append(len(self._held))
            self._held.pop(0).set_result(None)
            if self.received < self.expected_total:
                break  # one answer; the client must send the next request to get another

    async def _completions(self, body: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict):
            return 400, {"object": "error", "message": "request body must be a JSON object", "code": 400}, {}
        if body.get("model") != self.model_id:
            message = f"The model `{body.get('model')}` does not exist."
            return 404, {"object": "error", "message": message, "type": "NotFoundError", "code": 404}, {}
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            return 400, {"object": "error", "message": "prompt must be a string or a list of strings", "code": 400}, {}
        if body.get("echo") or body.get("logprobs") is not None:
            return 400, {"object": "error", "message": "the simulated server does not score prompts", "code": 400}, {}
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else list(stops)
        texts = await asyncio.gather(*(self._one_prompt(p) for p in prompts))
        if any(t is None for t in texts):
            return 429, {"object": "error", "message": "all slots are busy", "code": 429}, {"Retry-After": "0"}
        choices = []
        for i, text in enumerate(texts):
            assert text is not None
            for stop in stops:
                if stop and stop in text:
                    text = text[: text.index(stop)]
            choices.append({"index": i, "text": text, "logprobs": None, "finish_reason": "stop"})
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        reply = {"id": "cmpl-sim", "object": "text_completion", "created": 0, "model": self.model_id}
        return 200, reply | {"choices": choices, "usage": usage}, {}

    async def _route(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        if (method, path) == ("POST", "/v1/completions"):
            return await self._completions(body)
        if (method, path) == ("GET", "/v1/models"):
            model = {"id": self.model_id, "object": "model", "created": 0, "owned_by": "hyoka-sim"}
            return 200, {"object": "list", "data": [model]}, {}
        if (method, path) == ("GET", "/health"):
            return 200, None, {}
        if (method, path) == ("GET", "/get_server_info") and self.report_limit:
            return 200, {"max_running_requests": self.slots, "version": "hyoka-sim"}, {}
        if (method, path) == ("GET", "/sim/stats"):
            return 200, self.stats(), {}
        if (method, path) == ("POST", "/sim/reset"):
            self.reset()
            return 200, {}, {}
        return 404, {"object": "error", "message": f"no route {method} {path}", "code": 404}, {}

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                method, target, _ = request_line.decode("latin-1").split(" ", 2)
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                raw = await reader.readexactly(length) if length else b""
                headers: dict[str, str] = {}
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    status, reply = 400, {"object": "error", "message": "invalid JSON", "code": 400}
                else:
                    status, reply, headers = await self._route(method, target.split("?", 1)[0], body)
                data = b"" if reply is None else json.dumps(reply).encode()
                head = f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
                writer.write(head.encode("latin-1") + data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self) -> None:
        """Serve in the running loop until cancelled."""
        self._forever = asyncio.Event()
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        async with self._server:
            await self._server.serve_forever()

    def start(self) -> Self:
        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            task = loop.create_task(self.serve())
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(task)
            rest = asyncio.all_tasks(loop)  # connections still open: end them before the loop
            for t in rest:
                t.cancel()
            if rest:
                loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="SimServer", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("simulated server did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and self._thread is not None:

            def cancel() -> None:
                for task in asyncio.all_tasks(loop):
                    task.cancel()

            loop.call_soon_threadsafe(cancel)
            self._thread.join(timeout=10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A simulated OpenAI-compatible server with C slots.")
    parser.add_argument("--slots", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seconds-per-token", type=float, default=LatencyModel.seconds_per_token)
    parser.add_argument("--short", type=int, nargs=2, default=LatencyModel.short_tokens)
    parser.add_argument("--long", type=int, nargs=2, default=LatencyModel.long_tokens)
    parser.add_argument("--long-fraction", type=float, default=LatencyModel.long_fraction)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overflow", choices=["queue", "reject"], default="queue")
    parser.add_argument("--model-id", default="sim/model")
    args = parser.parse_args(argv)
    latency = LatencyModel(args.seconds_per_token, tuple(args.short), tuple(args.long), args.long_fraction, args.seed)
    server = SimServer(args.slots, latency=latency, overflow=args.overflow, model_id=args.model_id, port=args.port)

    async def run() -> None:
        serving = asyncio.create_task(server.serve())
        await asyncio.get_running_loop().run_in_executor(None, server._ready.wait)
        print(server.url, flush=True)
        await serving

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()

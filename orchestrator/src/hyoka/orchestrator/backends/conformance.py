"""Conformance probe: check, before the first real request, that a model server does what its
protocol says (real servers differ from their documentation: llama-cpp-python 0.3.36 returns
prompt log-probabilities shifted by one position, and a multiple-choice task then scores at chance).

`probe(backend)` sends a handful of small requests and returns a `ConformanceReport` of checks,
each with its name, whether it passed (None: skipped), what was sent and what came back:

- `greedy_deterministic`: two identical greedy requests (8 new tokens) give identical text.
- `greedy_argmax`: greedy means argmax: each token of a greedy generation has the highest
  log-probability among the server's own top alternatives at its position. A server that applies
  a penalty by default (llama.cpp's `repeat_penalty` is 1.1) picks other tokens than hf-local would.
  Skipped where the server returns no top log-probabilities.
- `stop_sequence`: a stop sequence occurring early in the greedy text (one of `STOP_CANDIDATES`,
  sent beside the greedy requests, else a piece of the text, sent after them) ends the generation
  there; a server that ignores it returns the whole greedy text (checked on the server's raw text where the
  backend exposes it, `probe_generate`; backends cut at stop sequences on the client as well).
- `logprob_alignment`: one greedy token T after prompt P, with its log-probability L from the
  generation path; then `loglikelihood(P, T)` (the prompt-scoring path every log-likelihood task
  uses) must give T within `LOGPROB_TOLERANCE` (0.05, absolute) of L. A server whose prompt values
  are shifted by one position scores T by a different distribution. Where the backend has no
  generation log-probabilities (no `probe_generate`), T must at least be the greedy token by
  prompt scoring (`is_greedy`, where the backend can tell).
- `first_token_unscored`: the first prompt token has no log-probability (nothing precedes it).
- `prompt_logprobs_present`: every later prompt token has one.
- `tokenisation_length`: the prompt-scoring path scored as many prompt tokens as the server's own
  tokenisation counts (TGI `/tokenize`; OpenAI `usage.prompt_tokens` or the local tokenizer).

The last three need the backend's raw prompt scores (`probe_prompt`); the log-probability checks
are skipped on backends that cannot score prompts. `ConformanceReport.error()` is the one-line
message for a failed check: a failed log-probability check stops log-likelihood tasks only
(`logprobs_ok`), a failed generation check stops every task (`generation_ok`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from hyoka.orchestrator.backends.base import BackendError, GenerationRequest, LoglikelihoodRequest, ModelBackend

#: Absolute tolerance on log-probabilities compared across the generation and prompt-scoring paths.
#: Loose enough for bf16 servers, whose prefill and decode kernels round differently (hundredths
#: of a nat); a one-position shift moves a value by whole nats as a rule.
LOGPROB_TOLERANCE = 0.05

GENERATION_CHECKS = ("greedy_deterministic", "greedy_argmax", "stop_sequence")
#: How far below the best alternative a greedy token's log-probability may be (rounding only: the
#: values come from one distribution in one reply).
ARGMAX_TOLERANCE = 1e-4
LOGPROB_CHECKS = ("logprob_alignment", "first_token_unscored", "prompt_logprobs_present", "tokenisation_length")

#: Prompts tried in turn for the alignment check, until one whose greedy token is a whole token.
PROBE_PROMPTS = (
    "The capital of France is",
    "Question: Which is the capital of Japan? Answer:",
    "The quick brown fox jumps over the lazy",
    "富士山は日本で",
    "def add(a, b):\n    return",
)
GREEDY_TOKENS = 8
#: Stop sequences tried beside the greedy requests: one of them occurs early in most greedy texts
#: (Latin letters, a space, Japanese punctuation), so the stop check needs no second round.
STOP_CANDIDATES = ("a", "e", "n", " ", "、", "。")


@dataclass(frozen=True)
class RawGeneration:
    """A greedy generation as the server returned it (not cut at stop sequences)."""

    text: str
    token_logprobs: list[float | None]  # of the generated tokens, in order
    sent: dict[str, Any] = field(default_factory=dict)
    top_logprobs: list[dict[str, float]] = field(default_factory=list)  # per token: the best alternatives


@dataclass(frozen=True)
class RawPromptScores:
    """A prompt's per-token log-probabilities as the server returned them (prompt tokens only)."""

    tokens: list[str]
    logprobs: list[float | None]
    server_token_count: int | None  # the server's own count of the prompt's tokens (None: unknown)
    sent: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class GenerationHooks(Protocol):
    async def probe_generate(
        self, context: str, max_new_tokens: int, stop: Sequence[str], *, logprobs: bool = False
    ) -> RawGeneration: ...


@runtime_checkable
class PromptHooks(Protocol):
    async def probe_prompt(self, text: str) -> RawPromptScores: ...


@dataclass
class ConformanceCheck:
    name: str
    passed: bool | None  # None: skipped
    message: str  # what failed (or why skipped); one line
    sent: Any = None
    returned: Any = None


@dataclass
class ConformanceReport:
    backend: str  # the model spec or backend name, for messages
    checks: list[ConformanceCheck] = field(default_factory=list)
    tolerance: float = LOGPROB_TOLERANCE  # of `logprob_alignment`, absolute

    def _failed(self, names: Sequence[str]) -> list[ConformanceCheck]:
        return [c for c in self.checks if c.name in names and c.passed is False]

    @property
    def ok(self) -> bool:
        return not any(c.passed is False for c in self.checks)

    @property
    def generation_ok(self) -> bool:
        return not self._failed(GENERATION_CHECKS)

    @property
    def logprobs_ok(self) -> bool:
        return not self._failed(LOGPROB_CHECKS)

    def error(self, *, loglikelihood: bool = True) -> str | None:
        """The one-line error for the first failed check that matters (None: none): generation
        checks always, log-probability checks only when `loglikelihood` tasks are to run."""
        gen = self._failed(GENERATION_CHECKS)
        if gen:
            c = gen[0]
            return f"backend {self.backend}: {c.message} (probe {c.name!r}); no task can run on this server"
        lp = self._failed(LOGPROB_CHECKS)
        if lp and loglikelihood:
            c = lp[0]
            return (
                f"backend {self.backend}: {c.message} (probe {c.name!r}); "
                "log-likelihood tasks cannot run on this server"
            )
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "ok": self.ok,
            "generation_ok": self.generation_ok,
            "logprobs_ok": self.logprobs_ok,
            "logprob_tolerance": self.tolerance,
            "checks": [asdict(c) for c in self.checks],
        }


def _fmt(x: float | None) -> str:
    return "none" if x is None else f"{x:.4g}" if abs(x) < 1e-2 and x != 0 else f"{x:.2f}"


#: The probe's requests go out together but never more at once than the backend's concurrency
#: (a server's own limit: TGI answers 429 beyond it); set by `probe` for the checks it runs.
_SLOTS: contextvars.ContextVar[asyncio.Semaphore | None] = contextvars.ContextVar("probe_slots", default=None)


@contextlib.asynccontextmanager
async def _slot() -> AsyncIterator[None]:
    slots = _SLOTS.get()
    if slots is None:
        yield
        return
    async with slots:
        yield


async def _generate(
    backend: ModelBackend, context: str, max_new_tokens: int, stop: Sequence[str], *, logprobs: bool = False
) -> RawGeneration:
    """Raw greedy text; the generated tokens' log-probabilities only when asked, so that the
    generation checks hold for servers that return none (generation-only servers may still serve
    generation tasks)."""
    if isinstance(backend, GenerationHooks):
        async with _slot():
            return await backend.probe_generate(context, max_new_tokens, stop, logprobs=logprobs)
    req = GenerationRequest(context=context, stop=tuple(stop), max_new_tokens=max_new_tokens)
    async with _slot():
        ((text,),) = await backend.generate_until([req])
    return RawGeneration(text=text, token_logprobs=[], sent={"context": context, "stop": list(stop)})


async def _check_greedy(backend: ModelBackend) -> tuple[ConformanceCheck, RawGeneration | None]:
    prompt = PROBE_PROMPTS[0]
    sent = {"context": prompt, "max_new_tokens": GREEDY_TOKENS, "greedy": True}
    try:
        a, b = await asyncio.gather(
            _generate(backend, prompt, GREEDY_TOKENS, ()), _generate(backend, prompt, GREEDY_TOKENS, ())
        )
    except BackendError as e:
        return ConformanceCheck("greedy_deterministic", False, f"greedy generation failed: {e}", sent), None
    if a.text != b.text:
        msg = f"greedy generation is not deterministic: two identical requests gave {a.text!r} and {b.text!r}"
        return ConformanceCheck("greedy_deterministic", False, msg, sent, [a.text, b.text]), None
    return ConformanceCheck("greedy_deterministic", True, "", sent, a.text), a


async def _check_argmax(backend: ModelBackend) -> ConformanceCheck:
    name = "greedy_argmax"
    prompt = PROBE_PROMPTS[0]
    sent = {"context": prompt, "max_new_tokens": GREEDY_TOKENS, "greedy": True, "logprobs": True}
    try:
        gen = await _generate(backend, prompt, GREEDY_TOKENS, (), logprobs=True)
    except BackendError as e:  # a generation-only server may refuse log-probabilities
        return ConformanceCheck(name, None, f"skipped: no log-probabilities with the generation ({e})", sent)
    if not gen.top_logprobs or len(gen.top_logprobs) != len(gen.token_logprobs):
        return ConformanceCheck(name, None, "skipped: the server returns no top log-probabilities", sent)
    for i, (chosen, top) in enumerate(zip(gen.token_logprobs, gen.top_logprobs, strict=True)):
        if chosen is None or not top:
            continue
        best_token, best = max(top.items(), key=lambda kv: kv[1])
        if chosen < best - ARGMAX_TOLERANCE:
            msg = (
                f"greedy generation is not argmax: at token {i} of {gen.text!r} the server chose a token with "
                f"log-probability {_fmt(chosen)} over {best_token!r} ({_fmt(best)}); it applies a penalty "
                "or sampling setting by default (llama.cpp servers: pass repeat_penalty=1.0)"
            )
            return ConformanceCheck(name, False, msg, sent, {"text": gen.text, "top_logprobs": gen.top_logprobs})
    return ConformanceCheck(name, True, "", sent, gen.text)


def _pick_stop(text: str, candidates: Sequence[str] | None = None) -> tuple[str, int] | None:
    """A stop sequence first occurring at k >= 1 and ending in the first half of the text, so that
    the tokens after it make a server that ignores it visibly longer: the first of `candidates`
    that does, else (no candidates given) the first such 2-character piece of the text."""
    half = len(text) // 2
    if candidates is not None:
        for stop in candidates:
            k = text.find(stop)
            if k >= 1 and k + len(stop) <= half:
                return stop, k
        return None
    for k in range(1, half - 1):
        s = text[k : k + 2]
        if s.strip() and text.find(s) == k:
            return s, k
    return None


async def _stop_candidates(backend: ModelBackend) -> dict[str, RawGeneration | BackendError]:
    """The probe prompt's greedy generation with each of STOP_CANDIDATES as its stop sequence, sent
    beside the greedy requests so that the stop check needs no second round in the usual case."""

    async def one(stop: str) -> RawGeneration | BackendError:
        try:
            return await _generate(backend, PROBE_PROMPTS[0], GREEDY_TOKENS, (stop,))
        except BackendError as e:
            return e

    results = await asyncio.gather(*(one(stop) for stop in STOP_CANDIDATES))
    return dict(zip(STOP_CANDIDATES, results, strict=True))


async def _check_stop(
    backend: ModelBackend, greedy: RawGeneration | None, ready: dict[str, RawGeneration | BackendError]
) -> ConformanceCheck:
    """`ready`: generations already made with candidate stop sequences; one that occurs early in
    the greedy text is checked, else a stop is picked from the text and sent."""
    name = "stop_sequence"
    if greedy is None:
        return ConformanceCheck(name, None, "skipped: greedy generation did not pass")
    picked = _pick_stop(greedy.text, list(ready)) or _pick_stop(greedy.text)
    if picked is None:
        return ConformanceCheck(name, None, f"skipped: the greedy text {greedy.text!r} is too short to pick a stop")
    stop, k = picked
    sent = {"context": PROBE_PROMPTS[0], "max_new_tokens": GREEDY_TOKENS, "stop": [stop]}
    try:
        got = ready.get(stop) or await _generate(backend, PROBE_PROMPTS[0], GREEDY_TOKENS, (stop,))
        if isinstance(got, BackendError):
            raise got
    except BackendError as e:
        return ConformanceCheck(name, False, f"generation with a stop sequence failed: {e}", sent)
    # Honoured: the text ends at the stop sequence (removed, as vLLM does, or kept with at most the
    # rest of its token, as TGI does), so it is shorter than the text generated without it.
    if not got.text.startswith(greedy.text[:k]) or len(got.text) >= len(greedy.text):
        msg = (
            f"stop sequence {stop!r} not honoured: without it the server generated {greedy.text!r}, "
            f"with it {got.text!r}"
        )
        return ConformanceCheck(name, False, msg, sent, got.text)
    return ConformanceCheck(name, True, "", sent, got.text)


async def _alignment(backend: ModelBackend, tolerance: float) -> list[ConformanceCheck]:
    gen_hooks = isinstance(backend, GenerationHooks)
    prompt_hooks = isinstance(backend, PromptHooks)
    last: ConformanceCheck | None = None
    for prompt in PROBE_PROMPTS:
        sent: dict[str, Any] = {"prompt": prompt, "max_new_tokens": 1, "greedy": True}
        try:
            gen = await _generate(backend, prompt, 1, (), logprobs=True)
        except BackendError as e:
            return [ConformanceCheck("logprob_alignment", False, f"one-token greedy generation failed: {e}", sent)]
        token = gen.text
        if not token or not token.strip():
            continue  # EOS or whitespace: try another prompt
        gen_lp = gen.token_logprobs[0] if gen.token_logprobs else None
        checks: list[ConformanceCheck] = []
        if prompt_hooks:
            assert isinstance(backend, PromptHooks)
            try:
                async with _slot():
                    whole = await backend.probe_prompt(prompt + token)
                async with _slot():
                    head = await backend.probe_prompt(prompt)
            except BackendError as e:
                return [ConformanceCheck("prompt_logprobs_present", False, f"prompt scoring failed: {e}", sent)]
            if len(whole.logprobs) != len(head.logprobs) + 1:
                continue  # the token merges with the prompt's end: not a clean probe, try another
            checks += _shape_checks(whole)
        sent["continuation"] = token
        try:
            async with _slot():
                (scored,) = await backend.loglikelihood([LoglikelihoodRequest(prompt, token)])
        except BackendError as e:
            return [
                ConformanceCheck(
                    "logprob_alignment", False, f"prompt scoring of {token!r} after {prompt!r} failed: {e}", sent
                ),
                *checks,
            ]
        returned = {"generation_logprob": gen_lp, "prompt_logprob": scored.logprob, "is_greedy": scored.is_greedy}
        if gen_hooks and gen_lp is not None:
            if math.isfinite(scored.logprob) and abs(scored.logprob - gen_lp) <= tolerance:
                last = ConformanceCheck("logprob_alignment", True, "", sent, returned)
            else:
                msg = (
                    f"prompt log-probabilities are not aligned: token {token!r} scored {_fmt(gen_lp)} by generation "
                    f"but {_fmt(scored.logprob)} by prompt scoring"
                )
                last = ConformanceCheck("logprob_alignment", False, msg, sent, returned)
        elif scored.is_greedy is False:
            msg = (
                f"prompt log-probabilities are not aligned: token {token!r}, the greedy continuation of "
                f"{prompt!r}, is not the most likely token by prompt scoring ({_fmt(scored.logprob)})"
            )
            last = ConformanceCheck("logprob_alignment", False, msg, sent, returned)
        else:
            last = ConformanceCheck("logprob_alignment", True, "", sent, returned)
        return [last, *checks]
    return [ConformanceCheck("logprob_alignment", None, "skipped: no probe prompt gave a clean one-token probe")]


def _shape_checks(scores: RawPromptScores) -> list[ConformanceCheck]:
    lps = scores.logprobs
    sent = scores.sent
    returned = {"tokens": scores.tokens, "logprobs": lps, "server_token_count": scores.server_token_count}
    out = []
    if lps and lps[0] is not None:
        msg = f"the first prompt token {scores.tokens[0]!r} has a log-probability ({_fmt(lps[0])}); it must have none"
        out.append(ConformanceCheck("first_token_unscored", False, msg, sent, returned))
    else:
        out.append(ConformanceCheck("first_token_unscored", True, "", sent, returned))
    missing = [i for i, lp in enumerate(lps[1:], start=1) if lp is None or not math.isfinite(lp)]
    if not lps or missing:
        msg = f"prompt log-probabilities are missing: {len(missing)} of {max(len(lps) - 1, 0)} prompt tokens have none"
        out.append(ConformanceCheck("prompt_logprobs_present", False, msg, sent, returned))
    else:
        out.append(ConformanceCheck("prompt_logprobs_present", True, "", sent, returned))
    if scores.server_token_count is None:
        out.append(ConformanceCheck("tokenisation_length", None, "skipped: the server gives no token count"))
    elif scores.server_token_count != len(lps):
        msg = (
            f"tokenisation lengths differ: prompt scoring returned {len(lps)} tokens, "
            f"the server's tokenisation has {scores.server_token_count}"
        )
        out.append(ConformanceCheck("tokenisation_length", False, msg, sent, returned))
    else:
        out.append(ConformanceCheck("tokenisation_length", True, "", sent, returned))
    return out


async def probe(
    backend: ModelBackend, *, name: str | None = None, tolerance: float = LOGPROB_TOLERANCE
) -> ConformanceReport:
    """Run the checks (module docstring) against a started or unstarted backend; `tolerance` is the
    absolute tolerance of `logprob_alignment`."""
    from hyoka.orchestrator.backends.replicas import ReplicaSet

    await backend.start()
    label = name or type(backend).__name__
    if isinstance(backend, ReplicaSet):  # every replica must conform
        report = ConformanceReport(label, tolerance=tolerance)
        for replica_name, replica in zip(backend.names, backend.replicas, strict=True):
            sub = await probe(replica, name=replica_name, tolerance=tolerance)
            for c in sub.checks:
                c.message = f"{replica_name}: {c.message}" if c.message else c.message
                report.checks.append(c)
        return report
    report = ConformanceReport(label, tolerance=tolerance)

    async def logprob_checks() -> list[ConformanceCheck]:
        if backend.capabilities.prompt_logprobs:
            return await _alignment(backend, tolerance)
        return [ConformanceCheck(n, None, "skipped: the backend cannot score prompts") for n in LOGPROB_CHECKS]

    # Every request goes out at once (the probe delays the run's first item), within the backend's
    # concurrency: the stop check picks, among the candidate stops, one that occurs early in the
    # greedy text (a second round only when none does).
    slots = _SLOTS.set(asyncio.Semaphore(max(1, backend.capabilities.max_concurrency)))
    try:
        (greedy_check, greedy), argmax_check, logprob, with_stops = await asyncio.gather(
            _check_greedy(backend), _check_argmax(backend), logprob_checks(), _stop_candidates(backend)
        )
        report.checks += [greedy_check, argmax_check, await _check_stop(backend, greedy, with_stops), *logprob]
    finally:
        _SLOTS.reset(slots)
    names = {c.name for c in report.checks}
    report.checks += [ConformanceCheck(n, None, "skipped") for n in LOGPROB_CHECKS if n not in names]
    return report

"""Text helpers shared by every backend, so that all of them cut and split text the same way."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hyoka.orchestrator.backends.base import BackendRequestError, GenerationRequest, LoglikelihoodRequest


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to the earliest occurrence of any stop sequence (the stop sequence itself removed).

    Servers differ (TGI keeps the stop sequence, vLLM drops it, a server may accept only a few), so
    every backend cuts on the client as well; cutting twice is harmless.
    """
    end = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if 0 <= i < end:
                end = i
    return text[:end]


def move_trailing_space(context: str, continuation: str) -> tuple[str, str]:
    """lm-evaluation-harness's boundary rule: trailing whitespace of the context moves to the continuation.

    ("Question: ... Answer:", " Paris") is how tasks are written; ("... Answer: ", "Paris") is
    rewritten to the same thing, because BPE vocabularies attach the space to the following word.
    """
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        return context[:-n_spaces], context[-n_spaces:] + continuation
    return context, continuation


def lm_eval_split(
    encode: Callable[[str], list[int]], prefix_token_id: int, context: str, continuation: str
) -> tuple[list[int], list[int]]:
    """(context tokens, continuation tokens) as lm-evaluation-harness 0.4.2's `_encode_pair` makes them.

    The whole string and the context are encoded separately and the continuation is whatever follows
    the context's token count in the whole encoding, so a merge across the boundary is scored as
    lm-eval scores it. An empty context becomes the prefix token (BOS, else EOS).
    """
    context, continuation = move_trailing_space(context, continuation)
    if not context:
        return [prefix_token_id], encode(continuation)
    whole = encode(context + continuation)
    ctx = encode(context)
    return ctx, whole[len(ctx) :]


def check_generation_request(i: int, r: GenerationRequest) -> None:
    """Reject impossible requests before anything is sent (a clear error naming the request)."""
    if r.n < 1:
        raise BackendRequestError(f"requests[{i}].n must be >= 1, got {r.n}")
    if r.max_new_tokens < 0:
        raise BackendRequestError(f"requests[{i}].max_new_tokens must be >= 0, got {r.max_new_tokens}")
    if r.temperature < 0:
        raise BackendRequestError(f"requests[{i}].temperature must be >= 0, got {r.temperature}")
    if not 0.0 < r.top_p <= 1.0:
        raise BackendRequestError(f"requests[{i}].top_p must be in (0, 1], got {r.top_p}")


def check_loglikelihood_request(i: int, r: LoglikelihoodRequest) -> None:
    if not r.continuation:
        raise BackendRequestError(f"requests[{i}].continuation is empty: nothing to score")

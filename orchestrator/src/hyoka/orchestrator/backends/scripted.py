"""`scripted`: a backend whose outputs are written in advance, for tests of everything above backends.

Generations come from a mapping context -> completion(s) or from a callable; log-likelihoods from a
mapping (context, continuation) -> logprob or (logprob, is_greedy), or a callable. From the CLI
(`--model scripted:PATH`) the script is a JSON file:

    {"generations": {"<context>": "<completion>" | ["<sample 1>", ...]},
     "default": "<completion for unscripted contexts>",            (optional)
     "loglikelihoods": [{"context": "...", "continuation": "...", "logprob": -1.5, "is_greedy": true}]}

Stop sequences are cut from scripted completions like any backend does; `max_new_tokens` is not
applied (there is no tokenizer). Its capabilities are honest: without log-likelihoods it cannot
score prompts. Every request is recorded in `generation_calls` / `loglikelihood_calls`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from hyoka.orchestrator.backends._text import check_generation_request, check_loglikelihood_request, cut_at_stop
from hyoka.orchestrator.backends.base import (
    BackendConfigError,
    BackendError,
    BackendInfo,
    Capabilities,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    ModelBackend,
)
from hyoka.orchestrator.backends.registry import register_backend

Completion = str | Sequence[str]
Score = float | tuple[float, bool | None]
GenerationScript = Mapping[str, Completion] | Callable[[GenerationRequest], Completion]
LoglikelihoodScript = Mapping[tuple[str, str], Score] | Callable[[LoglikelihoodRequest], Score]


class ScriptedConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    generations: GenerationScript | None = None
    loglikelihoods: LoglikelihoodScript | None = None
    default: str | None = None  # completion for contexts the script does not name
    path: Path | None = None  # JSON script (see the module docstring); merged under the explicit options
    model: str = "scripted"
    max_concurrency: int = 1
    batched: bool = False  # ask for batches of max_concurrency (as hf-local does) instead of single requests


class _ScriptFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    class Score(BaseModel):
        model_config = ConfigDict(extra="forbid")
        context: str
        continuation: str
        logprob: float
        is_greedy: bool | None = None

    generations: dict[str, str | list[str]] | None = None
    default: str | None = None
    loglikelihoods: list[Score] | None = None


def _load_script(path: Path) -> _ScriptFile:
    try:
        return _ScriptFile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except OSError as e:
        raise BackendConfigError(f"scripted: cannot read script {path}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise BackendConfigError(f"scripted: {path}:{e.lineno}: invalid JSON: {e.msg}") from e
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BackendConfigError(f"scripted: {path}: {where}: {first['msg']}") from e


@register_backend("scripted")
class ScriptedBackend(ModelBackend):
    """Deterministic outputs from a script; see the module docstring."""

    def __init__(self, **options: Any) -> None:
        self.config = ScriptedConfig(**options)
        generations = self.config.generations
        loglikelihoods = self.config.loglikelihoods
        default = self.config.default
        if self.config.path is not None:
            script = _load_script(self.config.path)
            if generations is None and script.generations is not None:
                generations = script.generations
            if loglikelihoods is None and script.loglikelihoods is not None:
                loglikelihoods = {(s.context, s.continuation): (s.logprob, s.is_greedy) for s in script.loglikelihoods}
            if default is None:
                default = script.default
        self._generations = generations
        self._loglikelihoods = loglikelihoods
        self._default = default
        self.generation_calls: list[GenerationRequest] = []
        self.loglikelihood_calls: list[LoglikelihoodRequest] = []

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            prompt_logprobs=self._loglikelihoods is not None,
            token_ids_input=False,
            max_concurrency=self.config.max_concurrency,
        )

    @property
    def prefers_batches(self) -> bool:
        return self.config.batched

    def _completions(self, i: int, r: GenerationRequest) -> list[str]:
        script = self._generations
        found: Completion | None
        if callable(script):
            found = script(r)
        elif script is not None and r.context in script:
            found = script[r.context]
        else:
            found = self._default
        if found is None:
            raise BackendError(f"scripted: requests[{i}]: no completion scripted for context {r.context[:80]!r}")
        outs = [found] * r.n if isinstance(found, str) else list(found)
        if len(outs) == 1 and r.n > 1:
            outs = outs * r.n
        if len(outs) < r.n:
            raise BackendError(f"scripted: requests[{i}]: {r.n} samples asked, {len(outs)} scripted")
        return [cut_at_stop(o, r.stop) for o in outs[: r.n]]

    async def generate_until(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        for i, r in enumerate(requests):
            check_generation_request(i, r)
        self.generation_calls.extend(requests)
        return [self._completions(i, r) for i, r in enumerate(requests)]

    async def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        script = self._loglikelihoods
        if script is None:
            return await super().loglikelihood(requests)
        for i, r in enumerate(requests):
            check_loglikelihood_request(i, r)
        self.loglikelihood_calls.extend(requests)
        results = []
        for i, r in enumerate(requests):
            if callable(script):
                score = script(r)
            elif (r.context, r.continuation) in script:
                score = script[(r.context, r.continuation)]
            else:
                raise BackendError(
                    f"scripted: requests[{i}]: no log-likelihood scripted for "
                    f"({r.context[-40:]!r}, {r.continuation[:40]!r})"
                )
            logprob, is_greedy = score if isinstance(score, tuple) else (score, None)
            results.append(LoglikelihoodResult(logprob=float(logprob), is_greedy=is_greedy))
        return results

    async def health(self) -> None:
        return None

    async def info(self) -> BackendInfo:
        details = {"script": str(self.config.path)} if self.config.path else {}
        return BackendInfo(backend="scripted", model=self.config.model, details=details)

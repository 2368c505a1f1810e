"""The builder hook: render a task's documents into `Item`s exactly as its harness does.

Builders live with their harness family (`families/`) and register with `@builder("name")`; a task
definition names one in `builder`. A builder gets the task's spec, its loaded data, how many
documents to render (None: all) and a `BuildContext` with what some harness steps need beyond the
data: the evaluated model's tokenizer (MGSM drops shots that do not fit the model; XL-Sum sizes
its generation by the gold summary's tokens).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from hyoka.orchestrator.backends.base import GenerationRequest
from hyoka.orchestrator.tasks.fewshot import LmEvalDefaultSampler
from hyoka.orchestrator.tasks.items import Item
from hyoka.orchestrator.tasks.loaders import Doc, TaskData
from hyoka.orchestrator.tasks.spec import TaskSpec


class PromptTokenizer(Protocol):
    """The evaluated model's tokenizer, as harness steps that count tokens see it."""

    @property
    def name(self) -> str:
        """Identifies the tokenizer in records and signatures (e.g. the model id)."""
        ...

    @property
    def max_length(self) -> int:
        """The model's context length in tokens, as the harness reads it from the model config."""
        ...

    def encode(self, text: str) -> list[int]:
        """Token ids without special tokens (the JP fork and llm-jp-eval add none)."""
        ...

    def tokenize(self, text: str) -> list[str]:
        """Token strings (`tokenizer.tokenize`), as rouge_score gets them from a HF tokenizer."""
        ...

    def decode(self, ids: list[int]) -> str:
        """Text of token ids (the JP fork's XL-Sum cuts an over-long first sentence by tokens)."""
        ...


class TokenizerRequiredError(ValueError):
    """A task counts the model's tokens but no tokenizer was given."""


@dataclass(frozen=True)
class BuildContext:
    tokenizer: PromptTokenizer | None = None

    def require_tokenizer(self, task: str) -> PromptTokenizer:
        if self.tokenizer is None:
            raise TokenizerRequiredError(
                f"task {task} counts the evaluated model's tokens: give a tokenizer (--tokenizer MODEL)"
            )
        return self.tokenizer


Builder = Callable[[TaskSpec, TaskData, int | None, BuildContext], list[Item]]
BUILDERS: dict[str, Builder] = {}


def builder(name: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        if name in BUILDERS:
            raise RuntimeError(f"builder {name!r} registered twice")
        BUILDERS[name] = fn
        return fn

    return register


def generation_request(
    spec: TaskSpec, context: str, index: int, *, max_new_tokens: int | None = None
) -> GenerationRequest:
    """The request the task's [generation] table describes, for the item at `index` (a sampled
    task's seed is offset by the index so items get different but reproducible samples)."""
    gen = spec.generation
    if gen is None:
        raise ValueError(f"task {spec.name} has no [generation] table")
    return GenerationRequest(
        context=context,
        stop=gen.stop,
        max_new_tokens=gen.max_new_tokens if max_new_tokens is None else max_new_tokens,
        max_total_tokens=gen.max_total_tokens,
        temperature=gen.temperature,
        top_p=gen.top_p,
        n=gen.n,
        seed=None if gen.seed is None else gen.seed + index,
        add_special_tokens=gen.add_special_tokens,
    )


def first(docs: list[Doc], limit: int | None) -> list[Doc]:
    """The first `limit` documents (all when None)."""
    return docs if limit is None else docs[:limit]


def prompt_option(spec: TaskSpec, name: str, kind: type, default: Any) -> Any:
    """A builder-specific setting from the definition's `[prompt] options`, type-checked."""
    value = spec.prompt.options.get(name, default)
    if not isinstance(value, kind):
        raise ValueError(f"task {spec.name}: prompt.options.{name} must be a {kind.__name__}, got {value!r}")
    return value


def lm_eval_default_shots(
    spec: TaskSpec, data: TaskData, limit: int | None, *, same: Callable[[Doc, Doc], bool] = operator.eq
) -> Iterator[tuple[int, Doc, list[Doc]]]:
    """(index, document, shots) for the first `limit` documents, the shots drawn by lm-eval
    0.4.2's default sampler: one Random(seed) for the task, documents in order, so document i's
    shots depend on every earlier draw. `same(a, b)`: whether a drawn document is the evaluated
    one; `prompt.options.fewshot_split_is_test_split` draws one extra, as lm-eval does when the
    task's fewshot_split equals its test_split (both unset counts)."""
    if spec.fewshot.procedure != "lm_eval_default":
        raise ValueError(
            f"task {spec.name}: this builder draws shots with lm_eval_default, not {spec.fewshot.procedure}"
        )
    sampler = LmEvalDefaultSampler(data.fewshot_pool, seed=spec.fewshot.seed, same=same)
    extra_draw = prompt_option(spec, "fewshot_split_is_test_split", bool, False)
    for i, doc in enumerate(first(data.test, limit)):
        yield i, doc, sampler.shots(doc, spec.fewshot.num, fewshot_split_is_test_split=extra_draw)

"""What a task sends and gets back: an `Item` (one document rendered into backend requests), the
backend's `ItemOutput`, and the `ScoredItem` written to the records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hyoka.orchestrator.backends.base import GenerationRequest, LoglikelihoodRequest


@dataclass(frozen=True)
class Item:
    """One evaluated document, ready to send: the prompt and the exact backend requests."""

    index: int  # position in the evaluated split (in harness order)
    id: str
    prompt: str  # generation context, or the shared few-shot context of a multiple-choice task
    gold: str  # the reference as the harness states it (a choice index for acc tasks)
    generation: GenerationRequest | None = None
    loglikelihood: tuple[LoglikelihoodRequest, ...] = ()
    # Every acceptable reference where there are several (TriviaQA aliases, SQuAD answers);
    # empty: `gold` alone.
    golds: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the code problem's test, the subject group

    @property
    def references(self) -> tuple[str, ...]:
        return self.golds or (self.gold,)

    def request_record(self, task: str) -> dict[str, Any]:
        """Everything sent for this item, as `hyoka prompts` writes it (JSON-ready)."""
        record: dict[str, Any] = {"task": task, "item_id": self.id, "index": self.index, "prompt": self.prompt}
        if self.generation is not None:
            g = self.generation
            record["generation"] = {
                "stop": list(g.stop),
                "max_new_tokens": g.max_new_tokens,
                "max_total_tokens": g.max_total_tokens,
                "temperature": g.temperature,
                "top_p": g.top_p,
                "n": g.n,
                "seed": g.seed,
                "add_special_tokens": g.add_special_tokens,
            }
        if self.loglikelihood:
            record["loglikelihood"] = [[r.context, r.continuation] for r in self.loglikelihood]
        record["gold"] = self.gold
        if self.golds:
            record["references"] = list(self.golds)
        if self.extra:
            record["extra"] = self.extra
        return record


@dataclass(frozen=True)
class ItemOutput:
    """What the backend answered for one item."""

    completions: tuple[str, ...] = ()
    logprobs: tuple[float, ...] = ()


@dataclass(frozen=True)
class ScoredItem:
    item: Item
    output: ItemOutput
    extracted: str | list[str]
    score: float | None  # None: only the corpus score means anything (BLEU)
    details: dict[str, Any] = field(default_factory=dict)

    def record(self, task: str) -> dict[str, Any]:
        """The per-item JSONL record."""
        out: Any
        if self.output.completions and self.output.logprobs:
            out = {"completions": list(self.output.completions), "logprobs": list(self.output.logprobs)}
        elif self.output.logprobs:
            out = list(self.output.logprobs)
        elif len(self.output.completions) == 1:
            out = self.output.completions[0]
        else:
            out = list(self.output.completions)
        return {
            "task": task,
            "item_id": self.item.id,
            "index": self.item.index,
            "prompt": self.item.prompt,
            "output": out,
            "extracted": self.extracted,
            "gold": self.item.gold,
            **({"references": list(self.item.golds)} if self.item.golds else {}),
            **({"group": self.item.extra["group"]} if "group" in self.item.extra else {}),
            "score": self.score,
            # choice tasks: each choice's context after the shared prompt, and the continuation
            **(
                {"choices": [[r.context[len(self.item.prompt) :], r.continuation] for r in self.item.loglikelihood]}
                if self.item.loglikelihood
                else {}
            ),
            **({"details": self.details} if self.details else {}),
        }

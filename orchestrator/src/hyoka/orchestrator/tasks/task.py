"""A task = its data definition (`TaskSpec`) + the hooks it names: a loader reads the data, a
builder renders documents into model requests (`Item`s), an extraction rule and a metric turn
model outputs into scored records, and the task score is aggregated from those records."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyoka.orchestrator.backends.base import Capabilities
from hyoka.orchestrator.tasks import extraction
from hyoka.orchestrator.tasks.builders import BUILDERS, BuildContext, PromptTokenizer
from hyoka.orchestrator.tasks.items import Item, ItemOutput, ScoredItem
from hyoka.orchestrator.tasks.loaders import LOADERS, TaskData, TaskDataError
from hyoka.orchestrator.tasks.scoring import CodeSubmission, Scorers, TextMetrics
from hyoka.orchestrator.tasks.spec import ACC, PASS_AT_1, MetricSpec, TaskSpec

#: Separates the model tokenizer's tokens in texts sent with `tokenizer=pretokenized`.
TOKEN_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class TaskScore:
    """A task's aggregate: the score, the metric signatures behind it, per-group scores."""

    score: float
    signatures: tuple[str, ...] = ()
    groups: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class Task:
    """A benchmark: build `Item`s from the data directory, score backend outputs."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def metric(self) -> MetricSpec:
        return self.spec.metric

    # --- checks before any work -------------------------------------------------------------

    def check_data(self, data_dir: Path) -> None:
        """Raise TaskDataError naming the task, the first missing file and how to get it."""
        for rel in self.spec.data_files:
            path = data_dir / rel
            if not path.is_file():
                raise TaskDataError(
                    f"task {self.name}: {path} not found; run `hyoka data pull {self.name}` "
                    "(or point --data-dir / HYOKA_DATA_DIR at a copy)"
                )

    def incompatibilities(self, caps: Capabilities) -> list[str]:
        """Why this task cannot run on a backend with these capabilities (empty: it can)."""
        problems: list[str] = []
        if self.spec.request.needs_prompt_logprobs and not caps.prompt_logprobs:
            problems.append(
                f"task {self.name} scores continuations by log-likelihood, but the backend cannot score prompts "
                "(no prompt log-probabilities)"
            )
        gen = self.spec.generation
        if gen is not None and (gen.temperature > 0 or gen.n > 1) and not caps.sampling:
            problems.append(f"task {self.name} samples {gen.n} completions at T={gen.temperature}, backend cannot")
        return problems

    # --- requests -----------------------------------------------------------------------------

    def load(self, data_dir: Path) -> TaskData:
        self.check_data(data_dir)
        return LOADERS[self.spec.loader](data_dir)

    def items(self, data: TaskData, limit: int | None = None, context: BuildContext | None = None) -> list[Item]:
        """Items for the first `limit` documents in harness order (all when None), shots drawn
        as the harness draws them."""
        return BUILDERS[self.spec.builder](self.spec, data, limit, context or BuildContext())

    # --- scoring --------------------------------------------------------------------------------

    async def score(self, items: Sequence[Item], outputs: Sequence[ItemOutput], scorers: Scorers) -> list[ScoredItem]:
        """Extract answers and score a batch of items (one call to a service per batch)."""
        name = self.metric.name
        if name == ACC:
            scored = []
            for item, out in zip(items, outputs, strict=True):
                pick = extraction.argmax_first(out.logprobs)
                scored.append(ScoredItem(item, out, str(pick), 1.0 if str(pick) == item.gold else 0.0))
            return scored
        if name == PASS_AT_1:
            return await self._score_code(items, outputs, scorers)
        extract = extraction.TEXT_RULES[self.spec.extraction]
        predictions = [extract(out.completions[0]) for out in outputs]
        metrics = self._metrics(scorers)
        scores = await metrics.score(
            name,
            self._for_metric(predictions, scorers),
            [self._for_metric(item.references, scorers) for item in items],
            self._options(),
        )
        return [
            ScoredItem(item, out, pred, s.value, {"signature": s.signature})
            for item, out, pred, s in zip(items, outputs, predictions, scores, strict=True)
        ]

    async def aggregate(self, records: Sequence[Mapping[str, Any]], scorers: Scorers) -> TaskScore:
        """The task score from every item's record: the mean of item scores, or the metrics
        service's corpus score over all predictions (`metric.corpus`)."""
        signatures = sorted({str(r["details"]["signature"]) for r in records if "signature" in r.get("details", {})})
        if not records:
            return TaskScore(float("nan"))
        if self.metric.corpus:
            predictions = [str(r["extracted"]) for r in records]
            references = [[str(x) for x in r.get("references") or [r["gold"]]] for r in records]
            corpus = await self._metrics(scorers).corpus(
                self.metric.name,
                self._for_metric(predictions, scorers),
                [self._for_metric(refs, scorers) for refs in references],
                self._options(),
            )
            signature = corpus.signature
            if self.metric.model_tokenizer and scorers.tokenizer is not None:
                signature += f"|model_tok:{scorers.tokenizer.name}"  # which model's tokens were compared
            return TaskScore(corpus.value, (signature,), details=dict(corpus.details))
        scores = [float(r["score"]) for r in records]
        groups: dict[str, list[float]] = {}
        for r, s in zip(records, scores, strict=True):
            if "group" in r:
                groups.setdefault(str(r["group"]), []).append(s)
        return TaskScore(
            math.fsum(scores) / len(scores),
            tuple(signatures),
            {g: math.fsum(v) / len(v) for g, v in sorted(groups.items())},
        )

    def _metrics(self, scorers: Scorers) -> TextMetrics:
        if scorers.metrics is None:
            raise RuntimeError(f"task {self.name} needs the metrics service")
        return scorers.metrics

    def _options(self) -> dict[str, str]:
        if self.metric.model_tokenizer:
            return {**self.metric.options, "tokenizer": "pretokenized"}
        return dict(self.metric.options)

    def _for_metric(self, texts: Sequence[str], scorers: Scorers) -> list[str]:
        """Texts as the metric gets them: tokenised by the model's tokenizer where the harness
        does that (tokens joined by TOKEN_SEPARATOR for `tokenizer=pretokenized`)."""
        if not self.metric.model_tokenizer:
            return list(texts)
        tokenizer: PromptTokenizer | None = scorers.tokenizer
        if tokenizer is None:
            raise RuntimeError(f"task {self.name} scores with the model's tokenizer, but none was given")
        return [TOKEN_SEPARATOR.join(tokenizer.tokenize(t)) for t in texts]

    async def _score_code(
        self, items: Sequence[Item], outputs: Sequence[ItemOutput], scorers: Scorers
    ) -> list[ScoredItem]:
        if scorers.sandbox is None:
            raise RuntimeError(f"task {self.name} needs the sandbox service")
        gen = self.spec.generation
        assert gen is not None
        submissions = []
        for item, out in zip(items, outputs, strict=True):
            completions = tuple(extraction.stop_at_stop_words(c, gen.stop) for c in out.completions)
            submissions.append(
                CodeSubmission(item.id, item.prompt, completions, item.extra["test"], item.extra["entry_point"])
            )
        verdicts = await scorers.sandbox.check(submissions)
        return [
            ScoredItem(
                item,
                out,
                list(sub.completions),
                v.pass_at_1,
                {
                    "passed": list(v.passed),
                    **({"statuses": list(v.statuses)} if v.statuses else {}),
                    **({"signature": v.signature} if v.signature else {}),
                },
            )
            for item, out, sub, v in zip(items, outputs, submissions, verdicts, strict=True)
        ]


__all__ = ["Item", "ItemOutput", "ScoredItem", "Task", "TaskDataError", "TaskScore"]

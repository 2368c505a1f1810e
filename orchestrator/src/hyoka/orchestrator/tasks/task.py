"""A task = its data definition (`TaskSpec`) + the hooks it names: turns documents into model
requests (`Item`s) and model outputs into scored records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyoka.orchestrator.backends.base import Capabilities, GenerationRequest, LoglikelihoodRequest
from hyoka.orchestrator.tasks import extraction
from hyoka.orchestrator.tasks.fewshot import LmEvalDefaultSampler, llm_jp_eval_shots, without_id
from hyoka.orchestrator.tasks.loaders import LOADERS, Doc, TaskData, TaskDataError
from hyoka.orchestrator.tasks.prompts import Shot, llm_jp_eval_prompt, lm_eval_fewshot_context
from hyoka.orchestrator.tasks.scoring import CodeSubmission, Scorers
from hyoka.orchestrator.tasks.spec import Metric, RequestType, TaskSpec


@dataclass(frozen=True)
class Item:
    """One evaluated document, ready to send: the prompt and the exact backend requests."""

    index: int  # position in the evaluated split
    id: str
    prompt: str  # generation context, or the shared few-shot context of a multiple-input task
    gold: str
    generation: GenerationRequest | None = None
    loglikelihood: tuple[LoglikelihoodRequest, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the code problem's test


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
    score: float
    details: dict[str, Any] = field(default_factory=dict)

    def record(self, task: str) -> dict[str, Any]:
        """The per-item JSONL record."""
        out: str | list[str] | list[float]
        if self.output.logprobs:
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
            "score": self.score,
            # multiple-input tasks: each choice's context after the shared prompt, and the continuation
            **(
                {"choices": [[r.context[len(self.item.prompt) :], r.continuation] for r in self.item.loglikelihood]}
                if self.item.loglikelihood
                else {}
            ),
            **({"details": self.details} if self.details else {}),
        }


class Task:
    """A benchmark: build `Item`s from the data directory, score backend outputs."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    # --- checks before any work -------------------------------------------------------------

    def check_data(self, data_dir: Path) -> None:
        """Raise TaskDataError naming the first of the task's files missing from `data_dir`."""
        for rel in self.spec.data_files:
            path = data_dir / rel
            if not path.is_file():
                raise TaskDataError(f"task {self.name}: {path} not found (is --data-dir / HYOKA_DATA_DIR right?)")

    def incompatibilities(self, caps: Capabilities) -> list[str]:
        """Why this task cannot run on a backend with these capabilities (empty: it can)."""
        problems: list[str] = []
        if self.spec.request is RequestType.LOGLIKELIHOOD_MULTIPLE_INPUT and not caps.prompt_logprobs:
            problems.append(
                f"task {self.name} scores choices by log-likelihood, but the backend cannot score prompts "
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

    def items(self, data: TaskData, limit: int | None = None) -> list[Item]:
        """Items for the first `limit` documents (all when None), shots drawn as the harness does."""
        docs = data.test if limit is None else data.test[:limit]
        request = self.spec.request
        if request is RequestType.GENERATE:
            return self._generate_items(docs, data.fewshot_pool)
        if request is RequestType.LOGLIKELIHOOD_MULTIPLE_INPUT:
            return self._multiple_input_items(docs, data.fewshot_pool)
        return self._code_items(docs)

    def _format(self, template: str, doc: Doc) -> str:
        try:
            return template.format_map(doc)
        except (KeyError, IndexError, ValueError) as e:
            raise TaskDataError(f"task {self.name}: document {doc.get('id')} does not fit {template!r} ({e})") from e

    def _generation_request(self, context: str, index: int) -> GenerationRequest:
        gen = self.spec.generation
        assert gen is not None  # checked by TaskSpec
        seed = None if gen.seed is None else gen.seed + index
        return GenerationRequest(
            context=context,
            stop=gen.stop,
            max_new_tokens=gen.max_new_tokens,
            max_total_tokens=gen.max_total_tokens,
            temperature=gen.temperature,
            top_p=gen.top_p,
            n=gen.n,
            seed=seed,
        )

    def _generate_items(self, docs: Sequence[Doc], pool: Sequence[Doc]) -> list[Item]:
        spec = self.spec
        if spec.fewshot.procedure != "llm_jp_eval_train_split":
            raise ValueError(f"task {self.name}: generation tasks use llm-jp-eval shots")
        chosen = llm_jp_eval_shots(
            pool, spec.fewshot.num, seed=spec.fewshot.seed, train_fraction=spec.fewshot.train_fraction
        )
        shots = [
            Shot(self._format(spec.prompt.input_template, d), self._format(spec.prompt.output_template, d))
            for d in chosen
        ]
        items = []
        for i, doc in enumerate(docs):
            prompt = llm_jp_eval_prompt(spec.prompt.instruction, shots, self._format(spec.prompt.input_template, doc))
            gold = extraction.nfkc(self._format(spec.prompt.output_template, doc))
            items.append(Item(i, doc["id"], prompt, gold, generation=self._generation_request(prompt, i)))
        return items

    def _multiple_input_items(self, docs: Sequence[Doc], pool: Sequence[Doc]) -> list[Item]:
        """lm-eval 0.4.2 xwinograd: choices are the sentence up to "_" with each option; the shared
        continuation is target_delimiter + the text after "_" (stripped)."""
        spec = self.spec
        sampler = LmEvalDefaultSampler(pool, seed=spec.fewshot.seed, same=lambda a, b: without_id(a) == without_id(b))
        items = []
        for i, doc in enumerate(docs):
            shots = [
                Shot(_winograd_choices(s)[_winograd_gold(s)], _winograd_target(s))
                for s in sampler.shots(doc, spec.fewshot.num)
            ]
            context = lm_eval_fewshot_context(
                shots, target_delimiter=spec.prompt.target_delimiter, fewshot_delimiter=spec.prompt.fewshot_delimiter
            )
            continuation = spec.prompt.target_delimiter + _winograd_target(doc)
            requests = tuple(LoglikelihoodRequest(context + choice, continuation) for choice in _winograd_choices(doc))
            items.append(Item(i, doc["id"], context, str(_winograd_gold(doc)), loglikelihood=requests))
        return items

    def _code_items(self, docs: Sequence[Doc]) -> list[Item]:
        items = []
        for i, doc in enumerate(docs):
            prompt = doc["prompt"]  # "unstripped": the trailing newline stays
            extra = {"test": doc["test"], "entry_point": doc["entry_point"]}
            items.append(
                Item(
                    i,
                    doc["id"],
                    prompt,
                    doc["canonical_solution"],
                    generation=self._generation_request(prompt, i),
                    extra=extra,
                )
            )
        return items

    # --- scoring --------------------------------------------------------------------------------

    async def score(self, items: Sequence[Item], outputs: Sequence[ItemOutput], scorers: Scorers) -> list[ScoredItem]:
        """Extract answers and score a batch of items (one call to a service per batch)."""
        metric = self.spec.metric
        if metric is Metric.ACC:
            scored = []
            for item, out in zip(items, outputs, strict=True):
                pick = extraction.argmax_first(out.logprobs)
                scored.append(ScoredItem(item, out, str(pick), 1.0 if str(pick) == item.gold else 0.0))
            return scored
        if metric is Metric.PASS_AT_1:
            return await self._score_code(items, outputs, scorers)
        extract = extraction.TEXT_RULES[self.spec.extraction]
        predictions = [extract(out.completions[0]) for out in outputs]
        if metric is Metric.EXACT_MATCH:
            return [
                ScoredItem(item, out, pred, extraction.exact_match(pred, item.gold))
                for item, out, pred in zip(items, outputs, predictions, strict=True)
            ]
        if scorers.metrics is None:
            raise RuntimeError(f"task {self.name} needs the metrics service")
        scores = await scorers.metrics.char_f1(predictions, [item.gold for item in items])
        return [
            ScoredItem(item, out, pred, s.value, {"signature": s.signature})
            for item, out, pred, s in zip(items, outputs, predictions, scores, strict=True)
        ]

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


def _winograd_choices(doc: Doc) -> list[str]:
    cut = doc["sentence"].index("_")
    return [doc["sentence"][:cut] + doc["option1"], doc["sentence"][:cut] + doc["option2"]]


def _winograd_target(doc: Doc) -> str:
    return str(doc["sentence"][doc["sentence"].index("_") + 1 :].strip())


def _winograd_gold(doc: Doc) -> int:
    return {"1": 0, "2": 1}[doc["answer"]]

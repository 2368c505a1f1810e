"""Task definitions as data: the typed schema of `definitions/*.toml`.

A definition says everything a harness setting fixes (split files, shots, prompt strings, request
type, decoding, stop sequences, extraction rule, metric); the Python hooks it names by key
(loader, few-shot procedure, extraction rule) live in `loaders.py`, `fewshot.py` and
`extraction.py`. Keeping the strings in data makes them easy to diff against the upstream harness.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RequestType(StrEnum):
    """How a task talks to the model (checked against the backend's capabilities before a run)."""

    GENERATE = "generate"  # greedy generation of an answer
    LOGLIKELIHOOD = "loglikelihood"  # one shared context, one continuation per choice (lm-eval multiple choice)
    LOGLIKELIHOOD_MULTIPLE_INPUT = "loglikelihood_multiple_input"  # one context per choice, shared continuation
    # Generation plus log-likelihood requests per item (lm-eval squadv2: the answer and P(" unanswerable")).
    GENERATE_AND_LOGLIKELIHOOD = "generate_and_loglikelihood"
    CODE = "code"  # n sampled completions executed against unit tests

    @property
    def needs_prompt_logprobs(self) -> bool:
        return self in (
            RequestType.LOGLIKELIHOOD,
            RequestType.LOGLIKELIHOOD_MULTIPLE_INPUT,
            RequestType.GENERATE_AND_LOGLIKELIHOOD,
        )


# Metric names scored inside the orchestrator or the sandbox; every other name is a metric of the
# metrics service (`hyoka-metrics list`), e.g. char_f1_fuzzywuzzy, exact_match_gsm8k, bleu, rouge2.
ACC = "acc"  # argmax of choice log-likelihoods equals the gold index (lm-eval `acc`)
PASS_AT_1 = "pass_at_1"  # unbiased pass@1 over n samples, programs run by the sandbox service


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FewShotSpec(_Frozen):
    """Which procedure picks the in-context examples, and how many (see FEWSHOT.md). The task's
    builder hook carries the procedure out; the name documents it and goes into the fingerprint."""

    procedure: Literal[
        "none",
        "builtin",  # exemplars fixed in the prompt text (BBH's CoT prompts)
        "llm_jp_eval_train_split",
        "lm_eval_default",
        "lm_eval_first_n",
        "jp_fork_random",  # JP lm-eval fork: Random(42) shuffles the test set, then draws the shots
    ]
    num: int = Field(ge=0)
    seed: int
    # llm-jp-eval: share of the shuffled train file that forms its train split.
    train_fraction: float = Field(default=0.9, gt=0, le=1)


class PromptSpec(_Frozen):
    """Prompt strings, as the harness's configuration has them; the builder hook lays them out."""

    description: str = ""  # text before the shots (lm-eval `description`, JP fork `DESCRIPTION`)
    instruction: str = ""
    # str.format templates over the document's fields (llm-jp-eval input/output formats).
    input_template: str = ""
    output_template: str = ""
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    # Builder-specific settings that have no common field (validated by the builder).
    options: dict[str, str | int | float | bool | list[str]] = Field(default_factory=dict)


class GenerationSpec(_Frozen):
    """Decoding settings; `temperature == 0` is greedy."""

    max_new_tokens: int = Field(ge=1)
    # Prompt + generation at most this many tokens (bigcode's max_length_generation); unset: no bound.
    max_total_tokens: int | None = Field(default=None, ge=2)
    temperature: float = Field(default=0.0, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    n: int = Field(default=1, ge=1)
    # Stop sequences sent to the backend; extraction re-applies them, so a backend that accepts
    # fewer than all of them still gives the harness's answer.
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # bigcode-evaluation-harness tokenises prompts with the tokenizer's defaults, which add BOS
    # where the tokenizer has one; lm-eval 0.4.2, llm-jp-eval and the JP fork add no special tokens.
    add_special_tokens: bool = False


class MetricSpec(_Frozen):
    """How items are scored and the task score aggregated."""

    name: str  # "acc", "pass_at_1", or a metrics-service metric
    options: dict[str, str] = Field(default_factory=dict)  # metrics-service options
    # The task score is the service's corpus score over every item (BLEU, bootstrap ROUGE) rather
    # than the mean of item scores.
    corpus: bool = False
    # Tokenise predictions and references with the evaluated model's tokenizer before scoring
    # (the JP fork's XL-Sum sets LOAD_TOKENIZER; the service then gets `tokenizer=pretokenized`).
    model_tokenizer: bool = False

    @property
    def service(self) -> bool:
        """Scored by the metrics service."""
        return self.name not in (ACC, PASS_AT_1)


class TaskSpec(_Frozen):
    """One benchmark as the paper's harness ran it."""

    name: str
    benchmark_column: str  # column name in the published 35-model score table
    description: str
    harness: str
    request: RequestType
    loader: str  # hook that reads the data files (`hooks.LOADERS`)
    builder: str  # hook that renders documents into requests (`hooks.BUILDERS`)
    # Steps of the harness that count the evaluated model's tokens (MGSM drops shots that do not
    # fit; XL-Sum sizes its generation by the gold summary): items need the model's tokenizer.
    needs_tokenizer: bool = False
    # Files (relative to the data directory) the loader reads; checked before a run starts.
    data_files: tuple[str, ...]
    fewshot: FewShotSpec
    prompt: PromptSpec = Field(default_factory=PromptSpec)
    generation: GenerationSpec | None = None
    # Rule (`extraction.TEXT_RULES`) from a raw completion to the scored prediction.
    extraction: str = "none"
    metric: MetricSpec
    # Sub-benchmarks whose item-weighted mean is the score (MMLU's 57 subjects, BBH's 27 tasks):
    # results list each group's score too; the item field `extra["group"]` names it.
    groups: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        needs_generation = self.request in (
            RequestType.GENERATE,
            RequestType.CODE,
            RequestType.GENERATE_AND_LOGLIKELIHOOD,
        )
        if needs_generation and self.generation is None:
            raise ValueError(f"task {self.name}: request type {self.request} needs a [generation] table")
        is_loglikelihood = self.request in (RequestType.LOGLIKELIHOOD, RequestType.LOGLIKELIHOOD_MULTIPLE_INPUT)
        if is_loglikelihood != (self.metric.name == ACC):
            raise ValueError(f"task {self.name}: log-likelihood tasks, and only they, report acc")
        if (self.request is RequestType.CODE) != (self.extraction == "code_stop_words"):
            raise ValueError(f"task {self.name}: code tasks, and only they, use the code_stop_words extraction")
        if (self.request is RequestType.CODE) != (self.metric.name == PASS_AT_1):
            raise ValueError(f"task {self.name}: code tasks, and only they, report pass_at_1")
        if (self.metric.corpus or self.metric.model_tokenizer) and not self.metric.service:
            raise ValueError(f"task {self.name}: corpus and model-tokenizer scoring are for metrics-service metrics")
        if self.metric.model_tokenizer and not self.needs_tokenizer:
            raise ValueError(f"task {self.name}: metric.model_tokenizer needs needs_tokenizer = true")
        return self

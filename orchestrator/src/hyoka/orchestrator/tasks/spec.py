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
    """How a task talks to the model."""

    GENERATE = "generate"  # greedy generation of a short answer (llm-jp-eval)
    LOGLIKELIHOOD_MULTIPLE_INPUT = "loglikelihood_multiple_input"  # one context per choice, shared continuation
    CODE = "code"  # n sampled completions executed against unit tests


class Metric(StrEnum):
    EXACT_MATCH = "exact_match"  # local string equality of normalised prediction and gold
    CHAR_F1 = "char_f1"  # fuzzywuzzy token_sort_ratio / 100, computed by the metrics service
    ACC = "acc"  # argmax of choice log-likelihoods equals the gold index
    PASS_AT_1 = "pass_at_1"  # unbiased pass@1 over n samples, computed by the sandbox service


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FewShotSpec(_Frozen):
    """Which procedure picks the in-context examples, and how many (see FEWSHOT.md)."""

    procedure: Literal["none", "llm_jp_eval_train_split", "lm_eval_default"]
    num: int = Field(ge=0)
    seed: int
    # llm-jp-eval: share of the shuffled train file that forms its train split.
    train_fraction: float = Field(default=0.9, gt=0, le=1)


class PromptSpec(_Frozen):
    """Prompt strings. `style` picks the harness's context layout (`prompts.py`)."""

    style: Literal["llm_jp_eval", "lm_eval_multiple_input", "raw"]
    instruction: str = ""
    # str.format templates over the document's fields (llm-jp-eval input/output formats).
    input_template: str = ""
    output_template: str = ""
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"


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


class TaskSpec(_Frozen):
    """One benchmark as the paper's harness ran it."""

    name: str
    benchmark_column: str  # column name in the published 35-model score table
    description: str
    harness: str
    request: RequestType
    loader: str
    # Files (relative to the data directory) the loader reads; checked before a run starts.
    data_files: tuple[str, ...]
    fewshot: FewShotSpec
    prompt: PromptSpec
    generation: GenerationSpec | None = None
    extraction: Literal["none", "llm_jp_eval", "code_stop_words"] = "none"
    metric: Metric

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        needs_generation = self.request in (RequestType.GENERATE, RequestType.CODE)
        if needs_generation and self.generation is None:
            raise ValueError(f"task {self.name}: request type {self.request} needs a [generation] table")
        if self.request is RequestType.LOGLIKELIHOOD_MULTIPLE_INPUT and self.metric is not Metric.ACC:
            raise ValueError(f"task {self.name}: log-likelihood tasks report acc")
        if (self.request is RequestType.CODE) != (self.extraction == "code_stop_words"):
            raise ValueError(f"task {self.name}: code tasks, and only they, use the code_stop_words extraction")
        if (self.request is RequestType.CODE) != (self.metric is Metric.PASS_AT_1):
            raise ValueError(f"task {self.name}: code tasks, and only they, report pass_at_1")
        return self

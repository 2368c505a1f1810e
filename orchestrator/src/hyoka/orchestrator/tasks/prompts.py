"""Context layouts of the harnesses. The strings are the harnesses' own (quoted in FEWSHOT.md A.4
and B.5); the task-specific parts (instruction, input/output formats) come from the task data."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# llm-jp-eval 1.3.0 `utils.get_evaluation_prompt` without a custom template.
LLM_JP_EVAL_HEADER = (
    "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。"
    "\n\n### 指示:\n"
)
LLM_JP_EVAL_TURN = "\n\n### 入力:\n{input}\n\n### 応答:\n"


@dataclass(frozen=True)
class Shot:
    text: str
    target: str


def llm_jp_eval_prompt(instruction: str, shots: Sequence[Shot], query: str) -> str:
    """Header + instruction, then each shot as an input/response turn, then the open turn."""
    parts = [LLM_JP_EVAL_HEADER, instruction]
    for shot in shots:
        parts.append(LLM_JP_EVAL_TURN.format(input=shot.text) + shot.target)
    parts.append(LLM_JP_EVAL_TURN.format(input=query))
    return "".join(parts)


def lm_eval_fewshot_context(
    shots: Sequence[Shot], *, target_delimiter: str = " ", fewshot_delimiter: str = "\n\n", description: str = ""
) -> str:
    """lm-eval 0.4.2: description, then shots (text + delimiter + target) each followed by the
    few-shot delimiter; empty without shots and description."""
    if not shots:
        return description
    rendered = fewshot_delimiter.join(s.text + target_delimiter + s.target for s in shots)
    return description + rendered + fewshot_delimiter


_NEWLINE = re.compile(r"\r\n|\r|\n")


def jinja_literal(template: str) -> str:
    """The literal text of a template as Jinja renders it in lm-eval 0.4.2 (`utils.apply_template`,
    default `Environment`): newlines normalised to "\\n" and one trailing newline dropped. For
    template text only: values substituted into it keep every character."""
    lines = _NEWLINE.split(template)
    if lines[-1] == "":
        lines.pop()
    return "\n".join(lines)

"""bigcode-evaluation-harness 0261c52 (swallow-evaluation v202407): HumanEval and JHumanEval,
`*-unstripped` prompts, n sampled completions executed against the problem's tests."""

from __future__ import annotations

from pathlib import Path

from hyoka.orchestrator.tasks.builders import BuildContext, builder, first, generation_request
from hyoka.orchestrator.tasks.items import Item
from hyoka.orchestrator.tasks.loaders import TaskData, loader, read_json_lines
from hyoka.orchestrator.tasks.spec import TaskSpec

_HUMANEVAL_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "test")


def _problems(path: Path) -> TaskData:
    rows = read_json_lines(path, _HUMANEVAL_FIELDS, compressed=True)
    for row in rows:
        row["id"] = row["task_id"]
    return TaskData(test=rows, fewshot_pool=[])


@loader("jhumaneval")
def load_jhumaneval(data_dir: Path) -> TaskData:
    """kogi-jwu/jhumaneval as KuramitsuLab/jhuman-eval ships it."""
    return _problems(data_dir / "jhumaneval/jhuman-eval.jsonl.gz")


@loader("humaneval")
def load_humaneval(data_dir: Path) -> TaskData:
    """openai/human-eval's HumanEval.jsonl.gz (the rows of HF `openai_humaneval`, in order)."""
    return _problems(data_dir / "humaneval/HumanEval.jsonl.gz")


@builder("bigcode_humaneval")
def build_humaneval(spec: TaskSpec, data: TaskData, limit: int | None, context: BuildContext) -> list[Item]:
    """The raw prompt ("unstripped": its trailing newline stays); the gold is the canonical solution."""
    items = []
    for i, doc in enumerate(first(data.test, limit)):
        prompt = doc["prompt"]
        extra = {"test": doc["test"], "entry_point": doc["entry_point"]}
        items.append(
            Item(
                i,
                doc["id"],
                prompt,
                doc["canonical_solution"],
                generation=generation_request(spec, prompt, i),
                extra=extra,
            )
        )
    return items

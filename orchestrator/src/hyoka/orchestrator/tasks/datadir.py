"""Where the benchmark data lives: `--data-dir`, else $HYOKA_DATA_DIR, else `<repo>/../shared/datasets`."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "HYOKA_DATA_DIR"


def repo_root() -> Path | None:
    """The checkout this package runs from (the folder holding `orchestrator/` and `protos/`)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "orchestrator").is_dir() and (parent / "protos").is_dir():
            return parent
    return None


def default_data_dir() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    root = repo_root()
    return (root.parent if root else Path.cwd().parent) / "shared" / "datasets"


def resolve_data_dir(flag: Path | None) -> Path:
    return flag if flag is not None else default_data_dir()

"""Where the benchmark data lives: `--data-dir`, else $HYOKA_DATA_DIR, else the user cache that
`hyoka data pull` fills ($XDG_CACHE_HOME/hyoka/datasets, by default ~/.cache/hyoka/datasets).

The offline copy beside a checkout (`../shared/datasets`) has the same layout; the test suite
points $HYOKA_DATA_DIR at it (scripts/test.sh).
"""

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


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME/hyoka/datasets; a relative $XDG_CACHE_HOME is ignored, as the XDG base
    directory specification requires."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "hyoka" / "datasets"


def default_data_dir() -> Path:
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return user_cache_dir()


def resolve_data_dir(flag: Path | None) -> Path:
    return flag if flag is not None else default_data_dir()

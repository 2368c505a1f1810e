"""The sandbox service's typed configuration."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from hyoka.sandbox.policy import DEFAULT_LIMITS, MAX_LIMITS, MIB, Limits
from hyoka.sandbox.runtimes import DEFAULT_RUNTIME, default_python, default_runtimes_dir

__all__ = ["HUMANEVAL_WALL_TIME_MS", "SandboxConfig", "default_data_dir", "default_python"]

HUMANEVAL_WALL_TIME_MS = 3000  # bigcode-evaluation-harness's per-program timeout


def default_data_dir() -> Path:
    env = os.environ.get("HYOKA_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[4] / ".." / "shared" / "datasets"


class SandboxConfig(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    workers: int = Field(default=2, ge=1, le=256)
    max_queued_runs: int = Field(default=2048, ge=1)
    max_program_bytes: int = Field(default=1 * MIB, ge=1)
    max_stdin_bytes: int = Field(default=1 * MIB, ge=0)
    max_batch_size: int = Field(default=1024, ge=1)
    max_completions: int = Field(default=256, ge=1)
    default_limits: Limits = DEFAULT_LIMITS
    max_limits: Limits = MAX_LIMITS
    # The interpreter of the built-in `minimal` runtime (each built runtime names its own).
    python: str = Field(default_factory=default_python)
    # Where built runtimes live (runtimes.py) and the one a request without a runtime gets.
    runtimes_dir: Path = Field(default_factory=default_runtimes_dir)
    default_runtime: str = DEFAULT_RUNTIME
    bwrap: str = Field(default_factory=lambda: shutil.which("bwrap") or "/usr/bin/bwrap")
    # Drops a root service's sandboxes to sandbox_uid (util-linux; in every Debian image).
    setpriv: str = Field(default_factory=lambda: shutil.which("setpriv") or "/usr/bin/setpriv")
    # Host uid/gid every sandbox runs as when the service runs as root (never host root, even
    # inside its user namespace); a non-root service's sandboxes run as the service's own uid.
    sandbox_uid: int = 65534
    sandbox_gid: int = 65534
    # "zygote": one started interpreter per worker, in its own bubblewrap sandbox, forks each run
    # into fresh namespaces (fast); "single-use": one bubblewrap sandbox per run.
    mode: str = Field(default="zygote", pattern="^(zygote|single-use)$")
    # single-use mode: pre-started sandboxes kept waiting for their one program.
    warm_pool: bool = True
    # Use per-run cgroups when the host allows them ("auto"), never, or refuse to start without.
    cgroups: str = Field(default="auto", pattern="^(auto|off|required)$")
    # Local development only: run programs with NO isolation. Loudly logged.
    insecure: bool = False
    data_dir: Path = Field(default_factory=default_data_dir)

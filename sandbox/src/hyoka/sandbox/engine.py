"""The isolation engine.

Every run gets fresh user*, mount, PID, network, IPC and UTS namespaces, no capabilities, a
seccomp deny-list, a read-only view of /usr and of its runtime's package prefix (runtimes.py) and
nothing else of the host, size-capped tmpfs for its scratch directory, /tmp and /dev/shm, and `/`
and `/dev` read-only; a per-run memory + pids cgroup where the host allows one, rlimits always.
When the run's first process ends, the kernel kills everything left in its PID namespace, and its
mount namespace with its tmpfs vanishes.

Two ways to get there (SandboxConfig.mode), each an `IsolationMode` (runs.py) the engine holds:
- "zygote" (default, zygote.py): one started interpreter per worker and runtime, in its own
  bubblewrap sandbox, forks each run into fresh namespaces (*the user namespace is the zygote's: runs of one
  zygote are sequential, so no two runs share it at once).
- "single-use" (single_use.py): one bubblewrap sandbox per run, its interpreter started ahead of
  time (a warm pool), each serving exactly one program. Insecure mode runs this way, unsandboxed.
Either way no state crosses from one run to another: nothing a run writes, starts or changes
outlives it. Both start their sandboxes through launcher.py; what a run's outcome is and how its
output is kept is in runs.py; the runner inside every sandbox is inside.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from hyoka.sandbox.capabilities import Capabilities
from hyoka.sandbox.config import SandboxConfig
from hyoka.sandbox.launcher import Launcher
from hyoka.sandbox.policy import Limits
from hyoka.sandbox.runs import IsolationMode, RunResult, Status
from hyoka.sandbox.runtimes import Runtime
from hyoka.sandbox.single_use import SingleUseMode
from hyoka.sandbox.zygote import ZygoteMode

__all__ = ["Engine", "RunResult", "Status"]


class Engine:
    """Runs programs in sandboxes of the configured mode. Create inside a running event loop."""

    def __init__(self, config: SandboxConfig, capabilities: Capabilities, runtimes: Mapping[str, Runtime]) -> None:
        self.config = config
        self.capabilities = capabilities
        self.runtimes = dict(runtimes)
        self.launcher = Launcher(config, capabilities)
        self.reaper = self.launcher.reaper
        self.mode: IsolationMode
        if config.mode == "zygote" and not config.insecure:
            self.mode = ZygoteMode(self.launcher, self.runtimes)
        else:
            self.mode = SingleUseMode(self.launcher, self.runtimes)

    def start(self) -> None:
        """Start the zygotes, or the pre-started single-use sandboxes, of every runtime."""
        self.mode.start()

    async def run(
        self, program: bytes, limits: Limits, stdin: bytes = b"", check_mode: bool = False, runtime: str = ""
    ) -> RunResult:
        """Run one program under `limits` (fully resolved) on a runtime (a name the engine was
        given; "" for the first) and return how it ended, with the runtime's name and checksum."""
        chosen = self.runtimes[runtime] if runtime else next(iter(self.runtimes.values()))
        result = await self.mode.run(program, limits, stdin, check_mode, chosen)
        return replace(result, runtime=chosen.name, runtime_sha256=chosen.sha256)

    async def close(self) -> None:
        await self.mode.close()
        await self.launcher.close()

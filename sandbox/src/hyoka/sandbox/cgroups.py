"""Per-run memory + pids cgroups, the only thing that bounds a run's memory as a whole (each of
many children may stay under RLIMIT_AS). cgroup v1 (one hierarchy per controller) and v2
(a delegated subtree we can write to) are both handled; where neither is writable the engine
points the OOM killer at sandboxed processes instead (oom_score_adj=1000)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class CgroupLayout:
    """Where this service may create per-run cgroups: one parent directory per controller
    (v1), or one parent for both (v2)."""

    version: str  # "v1" or "v2"
    memory_parent: Path
    pids_parent: Path

    @classmethod
    def detect(cls, name: str) -> CgroupLayout | None:
        """Create this service's parent cgroups, or None when the host does not let us."""
        if (ROOT / "memory" / "memory.limit_in_bytes").exists() and (ROOT / "pids").is_dir():
            layout = cls("v1", ROOT / "memory" / name, ROOT / "pids" / name)
        elif (ROOT / "cgroup.controllers").exists():
            own = _own_v2_cgroup()
            if own is None:
                return None
            layout = cls("v2", own / name, own / name)
        else:
            return None
        try:
            for parent in {layout.memory_parent, layout.pids_parent}:
                parent.mkdir(exist_ok=True)
            if layout.version == "v2":
                (layout.memory_parent / "cgroup.subtree_control").write_text("+memory +pids")
            layout.sweep_stale()
            probe = layout.create(f"probe-{os.getpid()}-0")
            probe.remove()
        except OSError as error:
            log.warning("cgroups not usable (%s): memory is bounded per process only", error)
            return None
        return layout

    def sweep_stale(self) -> None:
        """Remove the cgroups that services no longer running left behind (killed, say)."""
        for parent in {self.memory_parent, self.pids_parent}:
            for child in parent.glob("*-*-*"):
                owner = child.name.split("-")[1]
                if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                    RunCgroup(self.version, child, child).kill_all()
                    with contextlib.suppress(OSError):
                        child.rmdir()

    def create(self, run_name: str) -> RunCgroup:
        memory = self.memory_parent / run_name
        pids = self.pids_parent / run_name
        for path in {memory, pids}:
            path.mkdir()
        return RunCgroup(self.version, memory, pids)


def _own_v2_cgroup() -> Path | None:
    try:
        line = Path("/proc/self/cgroup").read_text().strip().splitlines()[0]
    except OSError:
        return None
    rel = line.split("::", 1)[1] if "::" in line else None
    if rel is None:
        return None
    return ROOT / rel.lstrip("/")


@dataclass(frozen=True)
class MemoryUsage:
    """What a run's memory cgroup saw during the run."""

    limit_hit: bool = False  # the limit was reached (reclaim, or an OOM kill)
    oom_kills: int = 0  # processes the cgroup's OOM killer ended


NO_CGROUP = MemoryUsage()


@dataclass(frozen=True)
class RunCgroup:
    version: str
    memory: Path
    pids: Path

    def limit(self, memory_bytes: int, max_processes: int) -> None:
        if self.version == "v1":
            # Swap would let a run exceed its memory: memsw (where the kernel accounts swap) gets
            # the same limit. v1 wants limit <= memsw at every step: raise memsw first, lower it last.
            limit, memsw = self.memory / "memory.limit_in_bytes", self.memory / "memory.memsw.limit_in_bytes"
            try:
                limit.write_text(str(memory_bytes))
            except OSError:
                with contextlib.suppress(OSError):
                    memsw.write_text(str(memory_bytes))
                limit.write_text(str(memory_bytes))
            with contextlib.suppress(OSError):
                memsw.write_text(str(memory_bytes))
        else:
            (self.memory / "memory.max").write_text(str(memory_bytes))
            with contextlib.suppress(OSError):
                (self.memory / "memory.swap.max").write_text("0")
        (self.pids / "pids.max").write_text(str(max_processes))

    def renamed(self, name: str) -> RunCgroup:
        """The same cgroup under a new name (cgroup v1 only; elsewhere it keeps its name)."""
        if self.version != "v1":
            return self
        try:
            memory = self.memory.rename(self.memory.with_name(name))
            pids = self.pids.rename(self.pids.with_name(name))
        except OSError:
            return self
        return RunCgroup(self.version, memory, pids)

    def add(self, pid: int) -> None:
        for path in {self.memory, self.pids}:
            (path / "cgroup.procs").write_text(str(pid))

    def pids_inside(self) -> list[int]:
        try:
            return [int(x) for x in (self.pids / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill_all(self) -> None:
        for pid in self.pids_inside():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def counters(self) -> tuple[int, int]:
        """(memory limit hits, OOM kills) so far; both only ever grow (a zygote's cgroup serves
        many runs, so a run compares them with what they were when it started).

        v2: memory.events `max` and `oom_kill`. v1: memory.failcnt and memory.oom_control's
        `oom_kill` (kernels from 4.13; older ones do not count kills, and only failcnt is read)."""
        try:
            if self.version == "v1":
                control = (self.memory / "memory.oom_control").read_text()
                return int((self.memory / "memory.failcnt").read_text()), _field(control, "oom_kill")
            events = (self.memory / "memory.events").read_text()
            return _field(events, "max"), _field(events, "oom_kill")
        except (OSError, ValueError):
            return 0, 0

    def usage_since(self, before: tuple[int, int]) -> MemoryUsage:
        """What the memory limit did to a run since `before` (counters() at its start)."""
        after = self.counters()
        if after[0] < before[0] or after[1] < before[1]:
            # The counters went back: the cgroup was emptied and removed (a discarded zygote's)
            # before this read, so it can tell nothing about the run.
            return MemoryUsage()
        return MemoryUsage(limit_hit=after[0] > before[0] or after[1] > before[1], oom_kills=after[1] - before[1])

    def remove(self) -> bool:
        """Remove the run's cgroups; False while processes are still dying in them."""
        done = True
        for path in {self.memory, self.pids}:
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                done = False
        return done


def _field(text: str, name: str) -> int:
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            return int(value)
    return 0

"""Per-run memory + pids cgroups, the only thing that bounds a run's memory as a whole (each of
many children may stay under RLIMIT_AS). cgroup v1 (one hierarchy per controller) and v2
(a delegated subtree we can write to) are both handled; where neither is writable the engine
points the OOM killer at sandboxed processes instead (oom_score_adj=1000)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass, field, replace
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
class OomKill:
    """One rise of the cgroup's OOM-kill count that OomWatch saw during a run."""

    after_ms: int  # since the run started, at the watch's resolution (POLL_S)
    kills: int  # how many the count rose by
    #: (pid in the run's PID namespace, comm) of the processes that ended just then (the
    #: victims, or when more ended than were killed, the ones among which they are)
    processes: tuple[tuple[int, str], ...] = ()

    def describe(self) -> str:
        names = [f"pid {pid} ({comm})" for pid, comm in self.processes]
        if not names:
            who = "a process the service could not name (it ended between two looks)"
        elif len(names) <= self.kills:
            who = ", ".join(names)
        else:
            who = f"{'one' if self.kills == 1 else self.kills} of " + ", ".join(names)
        return f"{who} killed {self.after_ms} ms after the run started"


@dataclass(frozen=True)
class MemoryUsage:
    """What a run's memory cgroup saw during the run."""

    limit_hit: bool = False  # the limit was reached (reclaim, or an OOM kill)
    oom_kills: int = 0  # processes the cgroup's OOM killer ended
    kills_seen: tuple[OomKill, ...] = field(default=())  # which and when, as far as OomWatch saw


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

    def memory_pids(self) -> list[int]:
        """The processes in the memory cgroup (v1: the pids cgroup may differ while one moves)."""
        try:
            return [int(x) for x in (self.memory / "cgroup.procs").read_text().split()]
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


#: How often OomWatch looks at a run's cgroup. Filling memory takes time (a process the OOM killer
#: picks has grown to a large share of the limit), so a victim is nearly always seen alive first.
POLL_S = 0.01
SIGKILL_BIT = 1 << (signal.SIGKILL - 1)


class OomWatch:
    """Watches a run's memory cgroup while it runs, to say which process the OOM killer ended and
    when: the kernel counts kills (v2 memory.events, v1 memory.oom_control `oom_kill`) but names
    no victim anywhere a container can read. Every POLL_S it reads the count and the cgroup's
    processes, learning each new one's pid in the run's PID namespace (NSpid) and name (comm);
    when the count rises, the victims are the processes that are dying (SIGKILL pending) or
    that left the cgroup just then. Costs two small reads per look while a run lasts."""

    def __init__(
        self, cgroup: RunCgroup, before: tuple[int, int], start: float, known: dict[int, tuple[int, str]] | None = None
    ) -> None:
        self._cgroup = cgroup
        self._start = start
        self._kills = before[1]
        # host pid -> (pid in the run, comm). A zygote passes the same dict to each of its runs'
        # watches: its own processes, named once, are what is left in it after each run.
        self._known: dict[int, tuple[int, str]] = {} if known is None else known
        self._waiting: OomKill | None = None  # a rise whose victims had not left yet
        self.kills_seen: list[OomKill] = []
        self._stopped = False
        self._victims: set[tuple[int, str]] = set()
        self._look()
        self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            self._look()

    def _look(self) -> None:
        now = set(self._cgroup.memory_pids())
        for pid in now - self._known.keys():
            named = _named(pid)
            if named is not None:
                self._known[pid] = named
        # Victims already named while dying are not named again when they leave.
        gone = [self._known.pop(pid) for pid in list(self._known) if pid not in now]
        gone = [process for process in gone if process not in self._victims]
        if self._waiting is not None:
            self._record(replace(self._waiting, processes=tuple(gone)))
            self._waiting = None
            gone = []
        kills = self._cgroup.counters()[1]
        if kills <= self._kills:
            return
        rise, self._kills = kills - self._kills, kills
        after_ms = round((time.monotonic() - self._start) * 1000)
        dying = [self._known[pid] for pid in now if pid in self._known and _sigkill_pending(pid)]
        dying = [process for process in dying if process not in self._victims]
        if dying or gone:
            self._record(OomKill(after_ms, rise, tuple(dying or gone)))
        else:  # killed but not yet gone: the next look names them
            self._waiting = OomKill(after_ms, rise)

    def _record(self, kill: OomKill) -> None:
        self.kills_seen.append(kill)
        self._victims.update(kill.processes)

    def stop(self, usage: MemoryUsage) -> MemoryUsage:
        """End the watch (one last look) and add what it saw to the run's `usage`."""
        self._task.cancel()
        if not self._stopped:
            self._stopped = True
            with contextlib.suppress(OSError):
                self._look()
            if self._waiting is not None:
                self._record(self._waiting)
                self._waiting = None
        if not usage.oom_kills:
            return usage
        return replace(usage, kills_seen=tuple(self.kills_seen))


def _named(pid: int) -> tuple[int, str] | None:
    """(pid in its innermost PID namespace, comm) of a host pid; None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    name, nspid = "?", pid
    for line in status.splitlines():
        if line.startswith("Name:"):
            name = line.partition(":")[2].strip() or "?"
        elif line.startswith("NSpid:"):
            nspid = int(line.split()[-1])
            break
    return nspid, name


def _sigkill_pending(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith(("ShdPnd:", "SigPnd:")) and int(line.split()[1], 16) & SIGKILL_BIT:
            return True
        if line.startswith("State:") and line.split()[1] in ("Z", "X"):
            return True
    return False

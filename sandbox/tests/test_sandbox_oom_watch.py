"""OomWatch (cgroups.py) on its own: real processes stand for a run's, a fake cgroup's counter
for the kernel's OOM-kill count (v1 and v2 differ only in the file that count is read from,
RunCgroup.counters)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

from hyoka.sandbox.cgroups import MemoryUsage, OomWatch
from hyoka.sandbox.policy import MAX_LIMITS
from hyoka.sandbox.runs import OutputStream, Status, classify


class FakeCgroup:
    def __init__(self, pids: list[int]) -> None:
        self.pids = list(pids)
        self.kills = 0

    def memory_pids(self) -> list[int]:
        return [pid for pid in self.pids if os.path.exists(f"/proc/{pid}") and not _zombie(pid)]  # noqa: PTH110

    def counters(self) -> tuple[int, int]:
        return self.kills, self.kills


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:  # noqa: PTH123
        return stat.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_the_watch_names_the_killed_process_and_when() -> None:
    procs = [subprocess.Popen(["sleep", "30"]) for _ in range(2)]

    async def scenario() -> MemoryUsage:
        cgroup = FakeCgroup([p.pid for p in procs])
        watch = OomWatch(cgroup, cgroup.counters(), time.monotonic())  # type: ignore[arg-type]
        await asyncio.sleep(0.1)
        procs[1].send_signal(signal.SIGKILL)  # the "OOM killer": the count rises, the victim dies
        cgroup.kills += 1
        await asyncio.sleep(0.1)
        return watch.stop(MemoryUsage(limit_hit=True, oom_kills=1))

    try:
        usage = asyncio.run(scenario())
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert len(usage.kills_seen) == 1
    kill = usage.kills_seen[0]
    assert kill.kills == 1 and [name for _, name in kill.processes] == ["sleep"]
    assert 80 <= kill.after_ms <= 1000, kill
    assert kill.describe().startswith(f"pid {kill.processes[0][0]} (sleep) killed ")


def test_the_detail_names_at_most_five_kills() -> None:
    async def streams() -> tuple[OutputStream, OutputStream]:
        loop = asyncio.get_running_loop()
        pipes = [os.pipe(), os.pipe()]
        for _, w in pipes:
            os.close(w)
        return OutputStream(loop, pipes[0][0], 10, None), OutputStream(loop, pipes[1][0], 10, None)

    from hyoka.sandbox.cgroups import OomKill

    kills = tuple(OomKill(100 * n, 1, ((n + 2, "python3"),)) for n in range(8))
    usage = MemoryUsage(limit_hit=True, oom_kills=8, kills_seen=kills)
    out, err = asyncio.run(streams())
    result = classify(0, out, err, 1.0, 0.5, MAX_LIMITS, timed_out=False, overflowed=False, memory=usage)
    assert result.status is Status.MEMORY_LIMIT
    assert "ended 8 processes of the run (not the program's own process, which exited with code 0)" in result.detail
    assert "pid 2 (python3) killed 0 ms after the run started" in result.detail
    assert "pid 7 (python3)" not in result.detail
    assert result.detail.endswith("3 more, the last 700 ms after the run started")

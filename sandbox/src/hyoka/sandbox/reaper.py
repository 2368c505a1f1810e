"""The service as a child subreaper: every process of a run that outlives its parent (bubblewrap
leaves one per --unshare-pid run) is re-parented to us, and we reap it. One SIGCHLD-driven
`wait4(-1)` loop reaps everything and hands each exit status to whoever waits on that pid;
nobody else in this process may wait on children."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
from dataclasses import dataclass

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class ExitStatus:
    status: int  # raw wait status
    rusage: object  # resource.struct_rusage

    @property
    def exit_code(self) -> int:
        """As a shell reports it: the code, or 128+N after signal N."""
        if os.WIFSIGNALED(self.status):
            return 128 + os.WTERMSIG(self.status)
        return os.WEXITSTATUS(self.status)

    @property
    def cpu_seconds(self) -> float:
        return float(self.rusage.ru_utime + self.rusage.ru_stime)  # type: ignore[attr-defined]


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")


class ChildReaper:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: dict[int, asyncio.Future[ExitStatus]] = {}
        self.orphans_reaped = 0
        become_subreaper()
        loop.add_signal_handler(signal.SIGCHLD, self.reap)

    def watch(self, pid: int) -> asyncio.Future[ExitStatus]:
        """Future of `pid`'s exit. Call right after spawning, before returning to the loop (the
        SIGCHLD handler runs in the loop, so it cannot reap the pid before this registers)."""
        future: asyncio.Future[ExitStatus] = self._loop.create_future()
        self._waiters[pid] = future
        return future

    def reap(self) -> None:
        while True:
            try:
                pid, status, rusage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            future = self._waiters.pop(pid, None)
            if future is None:
                self.orphans_reaped += 1
            elif not future.done():
                future.set_result(ExitStatus(status, rusage))

    def close(self) -> None:
        self._loop.remove_signal_handler(signal.SIGCHLD)

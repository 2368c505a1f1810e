"""What every run shares, whichever isolation mode runs it: how a run ends (Status, RunResult and
the classification of an exit), the capture of its output, the header that tells the runner
(inside.py) its limits, the runner's announcement of its pid, and the small asyncio helpers
around pipes. Nothing here starts a process; the modes (single_use.py, zygote.py) do, through
launcher.py, and the engine (engine.py) holds one of them behind `IsolationMode`."""

from __future__ import annotations

import array
import asyncio
import contextlib
import enum
import math
import os
import signal
import socket
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from hyoka.sandbox.cgroups import NO_CGROUP, MemoryUsage, RunCgroup
from hyoka.sandbox.policy import Limits
from hyoka.sandbox.reaper import ExitStatus
from hyoka.sandbox.runtimes import Runtime

#: Exit codes of the runner, kept in step with inside.py.
MEMORY_ERROR_EXIT = 250  # a MemoryError: EXECUTION_STATUS_MEMORY_LIMIT
SETUP_ERROR_EXIT = 251  # a zygote could not set a run up: EXECUTION_STATUS_SANDBOX_ERROR
EARLY_EXIT = 252  # check mode: the program ended its process before its checks finished
#: Check mode keeps at most this much of each stream (and never stops a run for its output).
CHECK_EXCERPT_BYTES = 16 * 1024
READ_CHUNK = 65536
DRAIN_AFTER_EXIT_S = 2.0  # how long pipes may stay open after the run's first process ended
OOM_KILLS_NAMED = 5  # a run's detail names the first OOM kills, and counts the rest


class Status(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    SANDBOX_ERROR = "sandbox_error"


@dataclass(frozen=True)
class RunResult:
    status: Status
    exit_code: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration_seconds: float = 0.0
    cpu_seconds: float = 0.0
    detail: str = ""
    runtime: str = ""
    runtime_sha256: str = ""


class IsolationMode(Protocol):
    """One way of running programs in sandboxes (zygote.py, single_use.py): what the engine holds."""

    def start(self) -> None:
        """Start what runs need ahead of time (zygotes, pre-started sandboxes)."""

    async def run(self, program: bytes, limits: Limits, stdin: bytes, check_mode: bool, runtime: Runtime) -> RunResult:
        """Run one program under `limits` (fully resolved) on `runtime` and say how it ended."""
        ...

    async def close(self) -> None:
        """Stop every sandbox; runs in progress end."""


def output_cap(limits: Limits, check_mode: bool) -> int:
    """Bytes kept of each stream: max_output_bytes, or in check mode a small excerpt."""
    return min(limits.max_output_bytes, CHECK_EXCERPT_BYTES) if check_mode else limits.max_output_bytes


class OutputStream:
    """Reads one pipe without blocking the loop, keeping the first `cap` bytes; beyond them it
    sets `on_overflow` (which stops the run), or without one drops the rest (check mode)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, cap: int, on_overflow: asyncio.Event | None) -> None:
        self._loop, self._fd, self._cap, self._overflow = loop, fd, cap, on_overflow
        self._chunks: list[bytes] = []
        self.kept = 0
        self.truncated = False
        self.eof = loop.create_future()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        room = self._cap - self.kept
        if room > 0:
            self._chunks.append(data[:room])
            self.kept += min(room, len(data))
        if len(data) > room:
            self.truncated = True
            if self._overflow is not None:
                self._overflow.set()

    def close(self) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
        if not self.eof.done():
            self.eof.set_result(None)

    @property
    def data(self) -> bytes:
        return b"".join(self._chunks)


def output_streams(
    loop: asyncio.AbstractEventLoop, stdout_r: int, stderr_r: int, limits: Limits, check_mode: bool
) -> tuple[OutputStream, OutputStream, asyncio.Event]:
    """Capture a run's stdout and stderr; the event is set when one overflows (never in check
    mode, which never stops a run for its output)."""
    overflow = asyncio.Event()
    cap = output_cap(limits, check_mode)
    stop_on = None if check_mode else overflow
    return OutputStream(loop, stdout_r, cap, stop_on), OutputStream(loop, stderr_r, cap, stop_on), overflow


async def fd_ready(loop: asyncio.AbstractEventLoop, fd: int, *, write: bool) -> None:
    """Wait until `fd` is writable (or readable) without blocking the loop."""
    ready = loop.create_future()
    if write:
        loop.add_writer(fd, ready.set_result, None)
    else:
        loop.add_reader(fd, ready.set_result, None)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def write_all(loop: asyncio.AbstractEventLoop, fd: int, data: bytes) -> None:
    """Write then close a pipe without blocking the loop; a reader that went away is fine."""
    view = memoryview(data)
    try:
        os.set_blocking(fd, False)
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                await fd_ready(loop, fd, write=True)
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        os.close(fd)


async def wait_finished(finished: asyncio.Future[Any], overflow: asyncio.Event, wall_s: float) -> tuple[bool, bool]:
    """Wait until `finished` is done, an output stream overflowed or `wall_s` passed:
    (timed out, overflowed)."""
    overflow_wait = asyncio.ensure_future(overflow.wait())
    waits: set[asyncio.Future[Any]] = {finished, overflow_wait}
    try:
        done, _ = await asyncio.wait(waits, timeout=wall_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        overflow_wait.cancel()
    return (not done, overflow.is_set())


async def announced_pid(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, exited: asyncio.Future[ExitStatus]
) -> int | None:
    """The runner's host pid, from the SCM_CREDENTIALS it sends on `sock` once it has started
    (None when its sandbox exited first)."""
    recv = asyncio.ensure_future(_recv_creds(loop, sock))
    waits: set[asyncio.Future[Any]] = {recv, exited}
    done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    if recv not in done:
        recv.cancel()
        return None
    return recv.result()


async def _recv_creds(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> int | None:
    fd = sock.fileno()
    while True:
        try:
            _, ancillary, _, _ = sock.recvmsg(1, socket.CMSG_SPACE(struct.calcsize("3i")))
            break
        except BlockingIOError:
            await fd_ready(loop, fd, write=False)
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            return int(array.array("i", data[:4])[0])
    return None


class Discardable(Protocol):
    """What a discarded sandbox or zygote offers its clean-up."""

    @property
    def exited(self) -> asyncio.Future[ExitStatus]: ...
    @property
    def prepared(self) -> asyncio.Task[bool] | None: ...
    @property
    def cgroup(self) -> RunCgroup | None: ...


_D = TypeVar("_D", bound=Discardable)


async def discard_all(queue: deque[_D], discard: Callable[[_D], None]) -> None:
    """Discard every waiting sandbox (or zygote), giving each up to 2 s to exit."""
    while queue:
        item = queue.popleft()
        discard(item)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(item.exited), 2)


def cpu_limit_s(limits: Limits) -> int:
    """The CPU time limit in whole seconds (RLIMIT_CPU's unit), rounded up, at least 1."""
    return max(1, math.ceil(limits.cpu_time_ms / 1000))


def _cpu_detail(limits: Limits) -> str:
    seconds = cpu_limit_s(limits)
    if seconds * 1000 == limits.cpu_time_ms:
        return f"CPU time limit of {seconds} s reached"
    return (
        f"CPU time limit of {limits.cpu_time_ms} ms reached (applied as {seconds} s: RLIMIT_CPU counts whole seconds)"
    )


def run_header(limits: Limits, processes: int, check_excerpt: int, *extra: int) -> bytes:
    """The line that tells the runner its limits: CPU s, memory, processes, file size, and 0 for
    a script or, in check mode, the bytes of output to keep."""
    fields = (cpu_limit_s(limits), limits.memory_bytes, processes, limits.max_file_bytes, check_excerpt, *extra)
    return " ".join(str(x) for x in fields).encode()


def classify(
    code: int,
    out: OutputStream,
    err: OutputStream,
    duration: float,
    cpu: float,
    limits: Limits,
    *,
    timed_out: bool,
    overflowed: bool,
    memory: MemoryUsage = NO_CGROUP,
    check_mode: bool = False,
) -> RunResult:
    """How a run ended. A run in which the cgroup's OOM killer ended any process hit its memory
    limit, whatever else happened after (its own process may still exit 0, or wait for a child
    until the wall limit)."""
    memory_detail = f"memory limit of {limits.memory_bytes} bytes reached"
    if memory.oom_kills:
        stopped = timed_out or overflowed  # then the service killed the program's process
        status, detail = Status.MEMORY_LIMIT, memory_detail + ": " + _oom_detail(memory, code, stopped)
        if timed_out:
            detail += f"; then the wall time limit of {limits.wall_time_ms} ms was reached"
        elif overflowed:
            detail += f"; then output exceeded {limits.max_output_bytes} bytes on a stream"
    elif overflowed:
        status, detail = Status.OUTPUT_LIMIT, f"output exceeded {limits.max_output_bytes} bytes on a stream"
    elif timed_out:
        status, detail = Status.TIMEOUT, f"wall time limit of {limits.wall_time_ms} ms reached"
        if memory.limit_hit:  # no process was killed, but the run may have stalled reclaiming
            detail += f" (the run also reached its memory limit of {limits.memory_bytes} bytes)"
    elif code == 0:
        status, detail = Status.PASSED, ""
    elif code == 128 + signal.SIGXCPU or (code == 128 + signal.SIGKILL and cpu >= cpu_limit_s(limits)):
        status, detail = Status.TIMEOUT, _cpu_detail(limits)
    elif code == MEMORY_ERROR_EXIT or memory.limit_hit:
        status, detail = Status.MEMORY_LIMIT, memory_detail
    elif check_mode and code == EARLY_EXIT:
        status, detail = Status.FAILED, "the program ended its process (os._exit) before its checks finished"
    else:
        status, detail = Status.FAILED, f"exit code {code}"
    return RunResult(
        status=status,
        exit_code=code,
        stdout=out.data,
        stderr=err.data,
        stdout_truncated=out.truncated,
        stderr_truncated=err.truncated,
        duration_seconds=duration,
        cpu_seconds=cpu,
        detail=detail,
    )


def _oom_detail(memory: MemoryUsage, code: int, stopped: bool) -> str:
    """Which processes the OOM killer ended and when, as far as the service saw them (the run's
    cgroup watched while it ran, cgroups.OomWatch), and whether the program's own process was
    one, as its exit code tells (nothing about it when the service killed it: a timeout, an
    output overflow)."""
    kills = memory.oom_kills
    what = "1 process" if kills == 1 else f"{kills} processes"
    if stopped:
        whose = ""
    elif code == 128 + signal.SIGKILL:
        whose = " (the program's own process was killed (SIGKILL))"
    else:
        whose = f" (not the program's own process, which exited with code {code})"
    text = f"the cgroup's OOM killer ended {what} of the run{whose}"
    seen = memory.kills_seen
    if seen:
        text += ": " + "; ".join(kill.describe() for kill in seen[:OOM_KILLS_NAMED])
        if len(seen) > OOM_KILLS_NAMED:
            text += f"; {len(seen) - OOM_KILLS_NAMED} more, the last {seen[-1].after_ms} ms after the run started"
    return text

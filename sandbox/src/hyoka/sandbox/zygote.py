"""Zygote mode: one started interpreter per worker and runtime, in its own bubblewrap sandbox (with
that runtime's package prefix mounted), forks each run into fresh namespaces (see inside.py).
Interpreter start-up and bubblewrap's set-up are paid once per zygote instead of once per run. A
run that must be stopped (time, output, a cancelled call) is stopped by killing its whole zygote
sandbox, which is then replaced."""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import os
import signal
import socket
import struct
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from hyoka.sandbox import seccomp_filter
from hyoka.sandbox.cgroups import NO_CGROUP, OomWatch, RunCgroup
from hyoka.sandbox.launcher import Launcher
from hyoka.sandbox.policy import Limits
from hyoka.sandbox.reaper import ExitStatus
from hyoka.sandbox.runs import (
    DRAIN_AFTER_EXIT_S,
    SETUP_ERROR_EXIT,
    OutputStream,
    RunResult,
    Status,
    announced_pid,
    classify,
    discard_all,
    fd_ready,
    output_cap,
    output_streams,
    run_header,
    wait_finished,
    write_all,
)
from hyoka.sandbox.runtimes import Runtime

log = logging.getLogger(__name__)

#: Processes of a zygote's user namespace besides the program's: bubblewrap's PID 1, the zygote,
#: the run's parent and the run's init.
RUN_OVERHEAD = 4


@dataclass
class _Zygote:
    pid: int
    exited: asyncio.Future[ExitStatus]
    ctrl: socket.socket
    ready: socket.socket
    prepared: asyncio.Task[bool] | None = None
    cgroup: RunCgroup | None = None
    discarded: bool = False
    #: The processes in its cgroup, named (OomWatch): the zygote's own stay from run to run.
    named: dict[int, tuple[int, str]] = field(default_factory=dict)


class ZygoteMode:
    """Runs programs in zygotes (IsolationMode): one pool per runtime (a runtime's prefix is
    mounted when its zygote's sandbox is made, so runs of another runtime cannot share it)."""

    def __init__(self, launcher: Launcher, runtimes: Mapping[str, Runtime]) -> None:
        self._pools = {name: ZygotePool(launcher, runtime) for name, runtime in runtimes.items()}

    def start(self) -> None:
        for pool in self._pools.values():
            pool.fill()

    async def run(self, program: bytes, limits: Limits, stdin: bytes, check_mode: bool, runtime: Runtime) -> RunResult:
        return await self._pools[runtime.name].run(program, limits, stdin, check_mode)

    async def close(self) -> None:
        for pool in self._pools.values():
            await pool.close()


class ZygotePool:
    """The zygotes of one runtime: one per worker, idle or busy."""

    def __init__(self, launcher: Launcher, runtime: Runtime) -> None:
        self.launcher = launcher
        self.workers = launcher.config.workers
        self.runtime = runtime
        self._loop = launcher.loop
        self._idle: deque[_Zygote] = deque()  # started or starting, waiting for a run
        self._busy = 0  # zygotes running a program now
        self._closed = False

    # ------------------------------------------------------------------ lifecycle
    def fill(self) -> None:
        """Keep one zygote per worker: the idle ones and the busy ones."""
        while not self._closed and len(self._idle) + self._busy < self.workers:
            try:
                self._idle.append(self._spawn())
            except OSError:
                log.exception("could not start a zygote")
                return

    def _spawn(self) -> _Zygote:
        launcher = self.launcher
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ready_ours, ready_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        ready_ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        bpf_fd = seccomp_filter.reopen(launcher.seccomp_fd)
        scratch = launcher.config.default_limits.scratch_bytes
        argv = [*launcher.bwrap_args(scratch, -1, self.runtime, zygote=True)]
        argv += launcher.python_argv(self.runtime, "zygote")
        argv += [str(theirs.fileno()), str(ready_theirs.fileno()), str(bpf_fd)]
        actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0), (os.POSIX_SPAWN_DUP2, 2, 1)]
        try:
            # The zygote's own stdout/stderr are the service's stderr: set-up errors reach the log.
            pid = launcher.launch(argv, [theirs.fileno(), ready_theirs.fileno(), bpf_fd], actions)
        except OSError:
            ours.close()
            ready_ours.close()
            raise
        finally:
            os.close(bpf_fd)
            theirs.close()
            ready_theirs.close()
        exited = launcher.reaper.watch(pid)
        ours.setblocking(False)
        ready_ours.setblocking(False)
        zygote = _Zygote(pid, exited, ours, ready_ours)
        zygote.prepared = self._loop.create_task(self._prepare(zygote))
        return zygote

    async def _prepare(self, zygote: _Zygote) -> bool:
        """Once the zygote has announced itself: its own cgroup, and the OOM killer's aim."""
        pid = await announced_pid(self._loop, zygote.ready, zygote.exited)
        zygote.ready.close()
        if pid is None:
            return False
        try:
            zygote.cgroup = await self.launcher.confine(pid, "zygote")
        except OSError:
            log.exception("could not put a zygote in its cgroup")
            return False
        return True

    def _take(self) -> _Zygote:
        self._busy += 1
        while self._idle:
            zygote = self._idle.popleft()
            if not zygote.exited.done():
                return zygote
            self._discard(zygote)
        try:
            return self._spawn()
        except OSError:
            self._busy -= 1
            raise

    def _give_back(self, zygote: _Zygote) -> None:
        if self._closed or zygote.exited.done() or len(self._idle) >= self.workers:
            self._discard(zygote)
        else:
            self._idle.append(zygote)

    def _discard(self, zygote: _Zygote) -> None:
        if zygote.discarded:
            return
        zygote.discarded = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(zygote.pid, signal.SIGKILL)
        if zygote.cgroup is not None:
            zygote.cgroup.kill_all()
        zygote.ctrl.close()
        zygote.ready.close()
        self.launcher.clean_up_discarded(zygote)
        if not self._closed:
            self._loop.call_soon(self.fill)

    async def close(self) -> None:
        self._closed = True
        await discard_all(self._idle, self._discard)

    # ------------------------------------------------------------------ running
    async def run(self, program: bytes, limits: Limits, stdin: bytes, check_mode: bool) -> RunResult:
        try:
            zygote = self._take()
        except OSError as error:
            log.exception("could not start a zygote")
            return RunResult(Status.SANDBOX_ERROR, detail=f"could not start a sandbox: {error}")
        reusable = False
        stdin_r, stdin_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        cap = output_cap(limits, check_mode)
        out, err, overflow = output_streams(self._loop, out_r, err_r, limits, check_mode)
        watch: OomWatch | None = None
        feeder: asyncio.Task[None] | None = None
        status: asyncio.Task[bytes] | None = None
        try:
            if zygote.prepared is None or not await zygote.prepared:
                return await self._setup_failed(out, err, "the zygote sandbox could not be set up")
            before = (0, 0)
            if zygote.cgroup is not None:
                # +4: bubblewrap's PID 1, the zygote, the run's parent and the run's init (its
                # PID 1, the program's parent) share the user namespace.
                zygote.cgroup.limit(limits.memory_bytes, limits.max_processes + RUN_OVERHEAD)
                before = zygote.cgroup.counters()
            processes = limits.max_processes + RUN_OVERHEAD
            header = run_header(limits, processes, cap if check_mode else 0, limits.scratch_bytes)
            await self._send(zygote.ctrl, struct.pack("!QQ", len(header), len(program)), [stdin_r, out_w, err_w])
            for fd in (stdin_r, out_w, err_w):
                os.close(fd)
            stdin_r = out_w = err_w = -1
            start = time.monotonic()
            if zygote.cgroup is not None:
                watch = OomWatch(zygote.cgroup, before, start, zygote.named)
            await self._loop.sock_sendall(zygote.ctrl, header + program)
            feeder = asyncio.ensure_future(write_all(self._loop, stdin_w, stdin))
            stdin_w = -1
            status = asyncio.ensure_future(self._status_line(zygote.ctrl))
            timed_out, overflowed = await wait_finished(status, overflow, limits.wall_time_ms / 1000)
            line = status.result() if status.done() and not overflowed else b""
            duration = time.monotonic() - start
            memory = NO_CGROUP
            if timed_out or overflowed or not line:
                # Read the cgroup's counters before the discard empties and removes it.
                if zygote.cgroup is not None and watch is not None:
                    memory = watch.stop(zygote.cgroup.usage_since(before))
                self._discard(zygote)  # the only way to stop a run: its whole zygote goes
                await asyncio.wait({zygote.exited}, timeout=DRAIN_AFTER_EXIT_S)
            await asyncio.wait({out.eof, err.eof}, timeout=DRAIN_AFTER_EXIT_S)
            if line and not (timed_out or overflowed) and zygote.cgroup is not None and watch is not None:
                memory = watch.stop(zygote.cgroup.usage_since(before))
            if line:
                code_text, cpu_text = line.split()
                code, cpu = int(code_text), float(cpu_text)
                reusable = not (timed_out or overflowed)
            else:
                code, cpu = 128 + signal.SIGKILL, 0.0
            if code == SETUP_ERROR_EXIT:
                message = err.data.decode(errors="replace").strip()[-500:]
                log.error("run set-up failed in a zygote: %s", message)
                return RunResult(Status.SANDBOX_ERROR, code, out.data, err.data, detail=f"set-up failed: {message}")
            if not line and not (timed_out or overflowed) and not memory.limit_hit:
                return RunResult(Status.SANDBOX_ERROR, code, out.data, err.data, detail="the zygote died")
            return classify(
                code,
                out,
                err,
                duration,
                cpu,
                limits,
                timed_out=timed_out,
                overflowed=overflowed,
                memory=memory,
                check_mode=check_mode,
            )
        finally:
            if watch is not None:
                watch.stop(NO_CGROUP)
            for task in (feeder, status):
                if task is not None:
                    task.cancel()
            for fd in (stdin_r, stdin_w, out_w, err_w):
                if fd >= 0:
                    os.close(fd)
            out.close()
            err.close()
            self._busy -= 1
            if reusable:
                self._give_back(zygote)
            else:
                self._discard(zygote)
                # Its replacement starts now, off the request path: _discard's own refill may
                # have run while this run still counted as busy (a timeout, an overflow, a
                # cancelled call), which would leave the pool one short until the next request.
                if not self._closed:
                    self._loop.call_soon(self.fill)

    async def _send(self, sock: socket.socket, data: bytes, fds: list[int]) -> None:
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
        while True:
            try:
                sent = sock.sendmsg([data], rights)
                break
            except BlockingIOError:
                await fd_ready(self._loop, sock.fileno(), write=True)
        if sent < len(data):
            await self._loop.sock_sendall(sock, data[sent:])

    async def _status_line(self, sock: socket.socket) -> bytes:
        line = b""
        while not line.endswith(b"\n"):
            chunk = await self._loop.sock_recv(sock, 64)
            if not chunk:
                return b""
            line += chunk
        return line

    async def _setup_failed(self, out: OutputStream, err: OutputStream, why: str) -> RunResult:
        """The zygote could not be set up; `run` discards it (it is not reusable)."""
        log.error("sandbox error: %s", why)
        return RunResult(Status.SANDBOX_ERROR, 0, out.data, err.data, detail=why)

"""Single-use mode: one bubblewrap sandbox per run, its interpreter (the runner, inside.py)
started ahead of time (a warm pool per runtime), each serving exactly one program. bubblewrap's
PID 1 is the run's init; killing it ends the run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from hyoka.sandbox import seccomp_filter
from hyoka.sandbox.cgroups import NO_CGROUP, OomWatch, RunCgroup
from hyoka.sandbox.launcher import SCRATCH, Launcher, parent_of
from hyoka.sandbox.policy import Limits
from hyoka.sandbox.reaper import ExitStatus
from hyoka.sandbox.runs import (
    DRAIN_AFTER_EXIT_S,
    OutputStream,
    RunResult,
    Status,
    announced_pid,
    classify,
    discard_all,
    output_cap,
    output_streams,
    run_header,
    wait_finished,
    write_all,
)
from hyoka.sandbox.runtimes import Runtime

log = logging.getLogger(__name__)


@dataclass
class _Sandbox:
    """One started sandbox: its outer process, pipes, and (once announced) the runner's host pid."""

    pid: int
    exited: asyncio.Future[ExitStatus]
    ctrl_w: int
    stdin_w: int
    stdout_r: int
    stderr_r: int
    ready_sock: socket.socket
    scratch_bytes: int
    runtime: str
    scratch_dir: str | None = None  # insecure mode only: a host directory to remove afterwards
    # Filled in by _prepare while the sandbox waits in the pool (off the request path).
    prepared: asyncio.Task[bool] | None = None
    cgroup: RunCgroup | None = None
    init_exited: asyncio.Future[ExitStatus] | None = None

    def close_unused(self) -> None:
        for fd in (self.ctrl_w, self.stdin_w, self.stdout_r, self.stderr_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.ready_sock.close()


class SingleUseMode:
    """Runs each program in a sandbox of its own (IsolationMode); insecure mode runs here too."""

    def __init__(self, launcher: Launcher, runtimes: Mapping[str, Runtime]) -> None:
        self.launcher = launcher
        self.config = launcher.config
        self.runtimes = dict(runtimes)
        self._loop = launcher.loop
        self._pools: dict[str, deque[_Sandbox]] = {name: deque() for name in self.runtimes}
        self._closed = False

    def start(self) -> None:
        self._refill()

    # ----------------------------------------------------------------- spawning
    def _spawn(self, scratch_bytes: int, runtime: Runtime) -> _Sandbox:
        launcher = self.launcher
        ctrl_r, ctrl_w = os.pipe()
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        seccomp_fd = seccomp_filter.reopen(launcher.seccomp_fd) if launcher.seccomp_fd >= 0 else -1
        scratch_dir = None
        python = launcher.python_argv(runtime, "once")
        if self.config.insecure:
            scratch_dir = tempfile.mkdtemp(prefix="hyoka-insecure-")
            if os.geteuid() == 0:
                os.chown(scratch_dir, self.config.sandbox_uid, self.config.sandbox_gid)
            argv = [*python, str(ctrl_r), str(theirs.fileno()), scratch_dir]
        else:
            argv = [*launcher.bwrap_args(scratch_bytes, seccomp_fd, runtime), *python]
            argv += [str(ctrl_r), str(theirs.fileno()), SCRATCH]
        passed = [ctrl_r, theirs.fileno()] + ([seccomp_fd] if seccomp_fd >= 0 else [])
        try:
            pid = launcher.launch(
                argv, passed, [(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate((stdin_r, stdout_w, stderr_w))]
            )
        except OSError:
            for fd in (ctrl_w, stdin_w, stdout_r, stderr_r):
                os.close(fd)
            ours.close()
            raise
        finally:
            for fd in (ctrl_r, stdin_r, stdout_w, stderr_w, *([seccomp_fd] if seccomp_fd >= 0 else [])):
                os.close(fd)
            theirs.close()
        exited = launcher.reaper.watch(pid)
        ours.setblocking(False)
        sandbox = _Sandbox(
            pid, exited, ctrl_w, stdin_w, stdout_r, stderr_r, ours, scratch_bytes, runtime.name, scratch_dir
        )
        sandbox.prepared = self._loop.create_task(self._prepare(sandbox))
        return sandbox

    async def _prepare(self, sandbox: _Sandbox) -> bool:
        """Once the runner has announced itself: move it into a fresh cgroup (a slow kernel
        operation, so in a thread), point the OOM killer at it and watch bubblewrap's PID 1.
        False when the sandbox died before its runner started."""
        runner_pid = await announced_pid(self._loop, sandbox.ready_sock, sandbox.exited)
        sandbox.ready_sock.close()
        if runner_pid is None:
            return False
        # "pool-" while it waits; renamed "run-" when it gets its program (outside observers and
        # tests tell waiting sandboxes from runs by the name).
        try:
            sandbox.cgroup = await self.launcher.confine(runner_pid, "pool", cgroup=not self.config.insecure)
        except OSError:
            log.exception("could not put a sandbox in its cgroup")
            return False
        # bubblewrap's PID 1 (the runner's parent) is re-parented to us and reaped here; its
        # rusage carries the CPU time of the whole run.
        with contextlib.suppress(OSError):
            sandbox.init_exited = self.launcher.reaper.watch(parent_of(runner_pid))
        return True

    def _refill(self) -> None:
        if self._closed or not self.config.warm_pool:
            return
        for name, pool in self._pools.items():
            while len(pool) < self.config.workers:
                try:
                    pool.append(self._spawn(self.config.default_limits.scratch_bytes, self.runtimes[name]))
                except OSError:
                    log.exception("could not pre-start a sandbox")
                    return

    def _take(self, scratch_bytes: int, runtime: Runtime) -> _Sandbox:
        pool = self._pools[runtime.name]
        while pool:
            sandbox = pool.popleft()
            if sandbox.exited.done() or sandbox.scratch_bytes != scratch_bytes:
                self._discard(sandbox)
                continue
            self._loop.call_soon(self._refill)
            return sandbox
        self._loop.call_soon(self._refill)
        return self._spawn(scratch_bytes, runtime)

    def _discard(self, sandbox: _Sandbox) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(sandbox.pid, signal.SIGKILL)
        sandbox.close_unused()
        if sandbox.scratch_dir:
            shutil.rmtree(sandbox.scratch_dir, ignore_errors=True)
        self.launcher.clean_up_discarded(sandbox)

    # ----------------------------------------------------------------- running
    async def run(self, program: bytes, limits: Limits, stdin: bytes, check_mode: bool, runtime: Runtime) -> RunResult:
        sandbox = self._take(limits.scratch_bytes, runtime)
        out, err, overflow = output_streams(self._loop, sandbox.stdout_r, sandbox.stderr_r, limits, check_mode)
        cap = output_cap(limits, check_mode)
        writers: list[asyncio.Task[None]] = []
        before = (0, 0)
        watch: OomWatch | None = None
        try:
            if sandbox.prepared is None or not await sandbox.prepared:
                return await self._sandbox_error(sandbox, out, err, "the sandbox could not be set up")
            if sandbox.cgroup is not None:
                sandbox.cgroup = sandbox.cgroup.renamed(sandbox.cgroup.memory.name.replace("pool-", "run-", 1))
                # +1: the runner's process counts too (bubblewrap's PID 1 stays outside the cgroup).
                sandbox.cgroup.limit(limits.memory_bytes, limits.max_processes + 1)
                before = sandbox.cgroup.counters()
            header = run_header(limits, limits.max_processes + 1, cap if check_mode else 0)
            start = time.monotonic()
            if sandbox.cgroup is not None:
                watch = OomWatch(sandbox.cgroup, before, start)
            writers = [
                asyncio.ensure_future(write_all(self._loop, sandbox.ctrl_w, header + b"\n" + program)),
                asyncio.ensure_future(write_all(self._loop, sandbox.stdin_w, stdin)),
            ]
            sandbox.ctrl_w = sandbox.stdin_w = -1
            timed_out, overflowed = await wait_finished(sandbox.exited, overflow, limits.wall_time_ms / 1000)
            if timed_out or overflowed:
                self._kill(sandbox)
            exit_status = await sandbox.exited
            duration = time.monotonic() - start
            await self._drain(out, err, sandbox)
            cpu = exit_status.cpu_seconds
            if sandbox.init_exited is not None:
                done, _ = await asyncio.wait({sandbox.init_exited}, timeout=DRAIN_AFTER_EXIT_S)
                if done:
                    cpu = sandbox.init_exited.result().cpu_seconds
            memory = NO_CGROUP
            if sandbox.cgroup is not None and watch is not None:
                memory = watch.stop(sandbox.cgroup.usage_since(before))
            return classify(
                exit_status.exit_code,
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
            for task in writers:
                task.cancel()
            self._kill(sandbox)
            out.close()
            err.close()
            for fd in (sandbox.ctrl_w, sandbox.stdin_w):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            sandbox.ready_sock.close()
            if sandbox.scratch_dir:
                shutil.rmtree(sandbox.scratch_dir, ignore_errors=True)
            if sandbox.cgroup is not None:
                self.launcher.remove_cgroup_later(sandbox.cgroup)

    def _kill(self, sandbox: _Sandbox) -> None:
        """Kill the whole run: the outer bubblewrap (its PID 1 dies with it, and with PID 1 the
        kernel kills everything in the namespace) and anything left in the run's cgroup."""
        if not sandbox.exited.done():
            with contextlib.suppress(ProcessLookupError):
                os.kill(sandbox.pid, signal.SIGKILL)
        if self.config.insecure:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(sandbox.pid, signal.SIGKILL)
        if sandbox.cgroup is not None:
            sandbox.cgroup.kill_all()

    async def _drain(self, out: OutputStream, err: OutputStream, sandbox: _Sandbox) -> None:
        """Wait for both pipes to reach EOF (the namespace is being torn down); kill whatever
        still holds them after a grace period."""
        pending = {out.eof, err.eof}
        _, pending = await asyncio.wait(pending, timeout=DRAIN_AFTER_EXIT_S)
        if pending:
            self._kill(sandbox)
            await asyncio.wait(pending, timeout=DRAIN_AFTER_EXIT_S)

    async def _sandbox_error(self, sandbox: _Sandbox, out: OutputStream, err: OutputStream, why: str) -> RunResult:
        self._kill(sandbox)  # set-up failed, so the sandbox has no cgroup
        status = await sandbox.exited
        await asyncio.wait({out.eof, err.eof}, timeout=DRAIN_AFTER_EXIT_S)
        message = err.data.decode(errors="replace").strip()[-500:]
        log.error("sandbox error: %s (exit %d): %s", why, status.exit_code, message)
        return RunResult(Status.SANDBOX_ERROR, status.exit_code, out.data, err.data, detail=f"{why}: {message}")

    async def close(self) -> None:
        self._closed = True
        for waiting in self._pools.values():
            await discard_all(waiting, self._discard)

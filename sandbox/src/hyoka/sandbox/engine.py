"""The isolation engine.

Every run gets fresh user*, mount, PID, network, IPC and UTS namespaces, no capabilities, a
seccomp deny-list, a read-only view of /usr and of its runtime's package prefix (runtimes.py) and
nothing else of the host, size-capped tmpfs for its scratch directory, /tmp and /dev/shm, and `/`
and `/dev` read-only; a per-run memory + pids cgroup where the host allows one, rlimits always.
When the run's first process ends, the kernel kills everything left in its PID namespace, and its
mount namespace with its tmpfs vanishes.

Two ways to get there (SandboxConfig.mode):
- "zygote" (default, zygote.py): one started interpreter per worker and runtime, in its own
  bubblewrap sandbox, forks each run into fresh namespaces (*the user namespace is the zygote's: runs of one
  zygote are sequential, so no two runs share it at once).
- "single-use" (here): one bubblewrap sandbox per run, its interpreter started ahead of time (a
  warm pool), each serving exactly one program.
Either way no state crosses from one run to another: nothing a run writes, starts or changes
outlives it.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import enum
import itertools
import logging
import math
import os
import shutil
import signal
import socket
import struct
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from hyoka.sandbox import seccomp_filter
from hyoka.sandbox.capabilities import Capabilities
from hyoka.sandbox.cgroups import NO_CGROUP, CgroupLayout, MemoryUsage, RunCgroup
from hyoka.sandbox.config import SandboxConfig
from hyoka.sandbox.policy import Limits
from hyoka.sandbox.reaper import ChildReaper, ExitStatus
from hyoka.sandbox.runtimes import SANDBOX_ROOT, SANDBOX_SITE, Runtime

if TYPE_CHECKING:
    from hyoka.sandbox.zygote import ZygotePool

log = logging.getLogger(__name__)

RUNNER_SOURCE = (Path(__file__).parent / "inside.py").read_text()
MEMORY_ERROR_EXIT = 250  # kept in step with inside.py
EARLY_EXIT = 252  # kept in step with inside.py
#: Environment of every run, beside HOME, PATH and LANG.
SANDBOX_ENV = (("OMP_NUM_THREADS", "1"), ("OPENBLAS_MAIN_FREE", "1"), ("GOTOBLAS_MAIN_FREE", "1"))
#: Check mode keeps at most this much of each stream (and never stops a run for its output).
CHECK_EXCERPT_BYTES = 16 * 1024
SCRATCH = "/work"
READ_CHUNK = 65536
DRAIN_AFTER_EXIT_S = 2.0  # how long pipes may stay open after the run's first process ended


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


def output_cap(limits: Limits, check_mode: bool) -> int:
    """Bytes kept of each stream: max_output_bytes, or in check mode a small excerpt."""
    return min(limits.max_output_bytes, CHECK_EXCERPT_BYTES) if check_mode else limits.max_output_bytes


class _Stream:
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


async def _fd_ready(loop: asyncio.AbstractEventLoop, fd: int, *, write: bool) -> None:
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


async def _write_all(loop: asyncio.AbstractEventLoop, fd: int, data: bytes) -> None:
    """Write then close a pipe without blocking the loop; a reader that went away is fine."""
    view = memoryview(data)
    try:
        os.set_blocking(fd, False)
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                await _fd_ready(loop, fd, write=True)
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        os.close(fd)


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
    # Filled in by Engine._prepare while the sandbox waits in the pool (off the request path).
    prepared: asyncio.Task[bool] | None = None
    cgroup: RunCgroup | None = None
    init_exited: asyncio.Future[ExitStatus] | None = None

    def close_unused(self) -> None:
        for fd in (self.ctrl_w, self.stdin_w, self.stdout_r, self.stderr_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.ready_sock.close()


class _Discardable(Protocol):
    """What a discarded sandbox or zygote offers its clean-up."""

    @property
    def exited(self) -> asyncio.Future[ExitStatus]: ...
    @property
    def prepared(self) -> asyncio.Task[bool] | None: ...
    @property
    def cgroup(self) -> RunCgroup | None: ...


_D = TypeVar("_D", bound=_Discardable)


class Engine:
    """Runs programs in single-use sandboxes. Create inside a running event loop."""

    def __init__(self, config: SandboxConfig, capabilities: Capabilities, runtimes: Mapping[str, Runtime]) -> None:
        self.config = config
        self.capabilities = capabilities
        self.runtimes = dict(runtimes)
        self._loop = asyncio.get_running_loop()
        self.reaper = ChildReaper(self._loop)
        self._seccomp_fd = seccomp_filter.bpf_memfd() if capabilities.seccomp and not config.insecure else -1
        self._run_ids = itertools.count()
        # single-use mode: pre-started sandboxes, one queue per runtime
        self._pools: dict[str, deque[_Sandbox]] = {name: deque() for name in self.runtimes}
        self._closed = False
        self._cleanups: set[asyncio.Task[None]] = set()
        _no_inheritable_fds()
        # zygote mode: one pool of zygotes per runtime (a runtime's prefix is mounted when its
        # zygote's sandbox is made, so runs of another runtime cannot share it)
        self._zygotes: dict[str, ZygotePool] = {}
        if config.mode == "zygote" and not config.insecure:
            from hyoka.sandbox.zygote import ZygotePool

            self._zygotes = {name: ZygotePool(self, runtime) for name, runtime in self.runtimes.items()}

    def start(self) -> None:
        """Start the zygotes, or the pre-started single-use sandboxes, of every runtime."""
        for pool in self._zygotes.values():
            pool.fill()
        if not self._zygotes:
            self._refill()

    # ----------------------------------------------------------------- spawning
    def bwrap_args(self, scratch_bytes: int, seccomp_fd: int, runtime: Runtime, zygote: bool = False) -> list[str]:
        """bubblewrap's command line. A zygote keeps CAP_SYS_ADMIN in its own user namespace (to
        give each run fresh namespaces) and installs the seccomp filter in each run itself."""
        size = str(scratch_bytes)
        caps = self.capabilities
        args = [self.config.bwrap, "--unshare-all", "--unshare-user", "--die-with-parent"]
        if caps.disable_userns:  # belt and braces: the seccomp filter denies namespace creation too
            args.append("--disable-userns")
        if zygote:
            args += ["--cap-add", "CAP_SYS_ADMIN"]
        args += ["--new-session", "--clearenv", "--uid", "65534", "--gid", "65534"]
        if caps.hostname:
            args += ["--hostname", "sandbox"]
        args += ["--ro-bind", "/usr", "/usr"]
        for link in ("bin", "lib", "lib64", "sbin"):
            host = Path(f"/{link}")
            if host.is_symlink() or not host.exists():
                args += ["--symlink", f"usr/{link}", f"/{link}"]
            else:  # a host without merged /usr
                args += ["--ro-bind", f"/{link}", f"/{link}"]
        # The dynamic loader's cache: python:*-slim's interpreter finds libpython in /usr/local/lib
        # only through it. A list of library paths, nothing secret.
        args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
        if runtime.root is not None:  # the runtime's packages, read-only like /usr
            args += ["--ro-bind", str(runtime.root), SANDBOX_ROOT]
        args += ["--dev", "/dev"]
        for mount in (SCRATCH, "/tmp", "/dev/shm"):
            args += ["--size", size, "--tmpfs", mount]
        args += ["--setenv", "HOME", SCRATCH, "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin"]
        args += ["--setenv", "LANG", "C.UTF-8", "--chdir", SCRATCH]
        # One thread for OpenMP/OpenBLAS pools (numpy would start one per host CPU at import,
        # each counted against max_processes); the harness's reliability_guard sets it too. And
        # what importing numpy puts in the environment: in the harness's process numpy was
        # imported before the guard, which makes setting os.environ fail (os.putenv is None).
        for name, value in SANDBOX_ENV:
            args += ["--setenv", name, value]
        if seccomp_fd >= 0:
            args += ["--seccomp", str(seccomp_fd)]
        # Last: everything but the tmpfs mounts becomes read-only (else / and /dev are writable).
        args += ["--remount-ro", "/dev", "--remount-ro", "/"]
        return args

    def python_argv(self, runtime: Runtime, mode: str) -> list[str]:
        """The runner's command line up to its mode-specific arguments (inside.py)."""
        site = "-"
        if runtime.site is not None:  # insecure mode has no mounts: the host's path
            site = str(runtime.site) if self.config.insecure else SANDBOX_SITE
        return [runtime.python, "-I", "-S", "-B", "-X", "utf8", "-c", RUNNER_SOURCE, mode, site]

    def launch(self, argv: list[str], passed: list[int], file_actions: list[tuple[Any, ...]]) -> int:
        """Start `argv` as the sandbox user in a new session; only `passed` fds (and those the
        file actions set up) reach it."""
        if os.geteuid() == 0:  # never leave sandboxes host root, even inside a user namespace
            ids = [f"--reuid={self.config.sandbox_uid}", f"--regid={self.config.sandbox_gid}", "--clear-groups"]
            argv = [self.config.setpriv, *ids, "--", *argv]
        # posix_spawn (vfork-like): no copy of the service's memory per run. Only the fds made
        # inheritable here reach the sandbox: every other fd of the service is close-on-exec.
        for fd in passed:
            os.set_inheritable(fd, True)
        try:
            return os.posix_spawn(
                argv[0],
                argv,
                {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **dict(SANDBOX_ENV)},  # bubblewrap clears it
                file_actions=file_actions,
                setsid=True,
            )
        finally:
            for fd in passed:
                with contextlib.suppress(OSError):
                    os.set_inheritable(fd, False)

    def _spawn(self, scratch_bytes: int, runtime: Runtime) -> _Sandbox:
        ctrl_r, ctrl_w = os.pipe()
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        seccomp_fd = seccomp_filter.reopen(self._seccomp_fd) if self._seccomp_fd >= 0 else -1
        scratch_dir = None
        python = self.python_argv(runtime, "once")
        if self.config.insecure:
            scratch_dir = tempfile.mkdtemp(prefix="hyoka-insecure-")
            if os.geteuid() == 0:
                os.chown(scratch_dir, self.config.sandbox_uid, self.config.sandbox_gid)
            argv = [*python, str(ctrl_r), str(theirs.fileno()), scratch_dir]
        else:
            argv = [*self.bwrap_args(scratch_bytes, seccomp_fd, runtime), *python, str(ctrl_r), str(theirs.fileno())]
            argv.append(SCRATCH)
        passed = [ctrl_r, theirs.fileno()] + ([seccomp_fd] if seccomp_fd >= 0 else [])
        try:
            pid = self.launch(
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
        exited = self.reaper.watch(pid)
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
        runner_pid = await self._announced_pid_on(sandbox.ready_sock, sandbox.exited)
        sandbox.ready_sock.close()
        if runner_pid is None:
            return False
        # "pool-" while it waits; renamed "run-" when it gets its program (outside observers and
        # tests tell waiting sandboxes from runs by the name).
        try:
            sandbox.cgroup = await self._confine(runner_pid, "pool", cgroup=not self.config.insecure)
        except OSError:
            log.exception("could not put a sandbox in its cgroup")
            return False
        # bubblewrap's PID 1 (the runner's parent) is re-parented to us and reaped here; its
        # rusage carries the CPU time of the whole run.
        with contextlib.suppress(OSError):
            sandbox.init_exited = self.reaper.watch(_parent_of(runner_pid))
        return True

    async def _confine(self, pid: int, kind: str, *, cgroup: bool = True) -> RunCgroup | None:
        """Put a just-announced process into a fresh cgroup named `kind-<our pid>-<n>` where the
        host gives us cgroups (a slow kernel operation, so in a thread), and make it the OOM
        killer's first choice. Raises OSError when the cgroup cannot be made."""
        layout = self.capabilities.cgroups if cgroup else None
        made = None
        if layout is not None:
            name = f"{kind}-{os.getpid()}-{next(self._run_ids)}"
            made = await self._loop.run_in_executor(None, _cgroup_with, layout, name, pid)
        _oom_first(pid)
        return made

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
        self._track(self._loop.create_task(self._cleanup_discarded(sandbox)))

    def _track(self, task: asyncio.Task[None]) -> None:
        """Keep a background clean-up alive until done; close() waits for them."""
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _cleanup_discarded(self, sandbox: _Discardable) -> None:
        """Once a discarded sandbox or zygote has finished its set-up, remove its cgroup."""
        if sandbox.prepared is not None:
            with contextlib.suppress(Exception):
                await sandbox.prepared
        if sandbox.cgroup is not None:
            await self._remove_cgroup(sandbox.cgroup)

    async def _announced_pid_on(self, sock: socket.socket, exited: asyncio.Future[ExitStatus]) -> int | None:
        """The runner's host pid, from the SCM_CREDENTIALS it sends once it has started."""
        recv = asyncio.ensure_future(self._recv_creds(sock))
        waits: set[asyncio.Future[Any]] = {recv, exited}
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if recv not in done:
            recv.cancel()
            return None
        return recv.result()

    async def _recv_creds(self, sock: socket.socket) -> int | None:
        fd = sock.fileno()
        while True:
            try:
                _, ancillary, _, _ = sock.recvmsg(1, socket.CMSG_SPACE(struct.calcsize("3i")))
                break
            except BlockingIOError:
                await _fd_ready(self._loop, fd, write=False)
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                return int(array.array("i", data[:4])[0])
        return None

    # ----------------------------------------------------------------- running
    async def run(
        self, program: bytes, limits: Limits, stdin: bytes = b"", check_mode: bool = False, runtime: str = ""
    ) -> RunResult:
        """Run one program under `limits` (fully resolved) on a runtime (a name the engine was
        given; "" for the first) and return how it ended, with the runtime's name and checksum."""
        chosen = self.runtimes[runtime] if runtime else next(iter(self.runtimes.values()))
        if self._zygotes:
            result = await self._zygotes[chosen.name].run(program, limits, stdin, check_mode)
        else:
            result = await self._run_single_use(program, limits, stdin, check_mode, chosen)
        return replace(result, runtime=chosen.name, runtime_sha256=chosen.sha256)

    async def _run_single_use(
        self, program: bytes, limits: Limits, stdin: bytes, check_mode: bool, runtime: Runtime
    ) -> RunResult:
        sandbox = self._take(limits.scratch_bytes, runtime)
        overflow = asyncio.Event()
        cap = output_cap(limits, check_mode)
        stop_on = None if check_mode else overflow  # check mode never stops a run for its output
        out = _Stream(self._loop, sandbox.stdout_r, cap, stop_on)
        err = _Stream(self._loop, sandbox.stderr_r, cap, stop_on)
        writers: list[asyncio.Task[None]] = []
        before = (0, 0)
        try:
            if sandbox.prepared is None or not await sandbox.prepared:
                return await self._sandbox_error(sandbox, out, err, "the sandbox could not be set up")
            if sandbox.cgroup is not None:
                sandbox.cgroup = sandbox.cgroup.renamed(sandbox.cgroup.memory.name.replace("pool-", "run-", 1))
                # +1: the runner's process counts too (bubblewrap's PID 1 stays outside the cgroup).
                sandbox.cgroup.limit(limits.memory_bytes, limits.max_processes + 1)
                before = sandbox.cgroup.counters()
            header = _run_header(limits, limits.max_processes + 1, cap if check_mode else 0)
            start = time.monotonic()
            writers = [
                asyncio.ensure_future(_write_all(self._loop, sandbox.ctrl_w, header + b"\n" + program)),
                asyncio.ensure_future(_write_all(self._loop, sandbox.stdin_w, stdin)),
            ]
            sandbox.ctrl_w = sandbox.stdin_w = -1
            timed_out, overflowed = await _wait_finished(sandbox.exited, overflow, limits.wall_time_ms / 1000)
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
            memory = NO_CGROUP if sandbox.cgroup is None else sandbox.cgroup.usage_since(before)
            return _classify(
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
                self._track(self._loop.create_task(self._remove_cgroup(sandbox.cgroup)))

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

    async def _drain(self, out: _Stream, err: _Stream, sandbox: _Sandbox) -> None:
        """Wait for both pipes to reach EOF (the namespace is being torn down); kill whatever
        still holds them after a grace period."""
        pending = {out.eof, err.eof}
        _, pending = await asyncio.wait(pending, timeout=DRAIN_AFTER_EXIT_S)
        if pending:
            self._kill(sandbox)
            await asyncio.wait(pending, timeout=DRAIN_AFTER_EXIT_S)

    async def _sandbox_error(self, sandbox: _Sandbox, out: _Stream, err: _Stream, why: str) -> RunResult:
        self._kill(sandbox)  # set-up failed, so the sandbox has no cgroup
        status = await sandbox.exited
        await asyncio.wait({out.eof, err.eof}, timeout=DRAIN_AFTER_EXIT_S)
        message = err.data.decode(errors="replace").strip()[-500:]
        log.error("sandbox error: %s (exit %d): %s", why, status.exit_code, message)
        return RunResult(Status.SANDBOX_ERROR, status.exit_code, out.data, err.data, detail=f"{why}: {message}")

    async def _remove_cgroup(self, cgroup: RunCgroup) -> None:
        for _ in range(100):
            cgroup.kill_all()
            if cgroup.remove():
                return
            await asyncio.sleep(0.05)
        log.warning("could not remove cgroup %s", cgroup.memory)

    async def close(self) -> None:
        self._closed = True
        for pool in self._zygotes.values():
            await pool.close()
        for waiting in self._pools.values():
            await _discard_all(waiting, self._discard)
        if self._cleanups:
            await asyncio.wait(set(self._cleanups), timeout=10)
        self.reaper.reap()
        self.reaper.close()
        if self._seccomp_fd >= 0:
            os.close(self._seccomp_fd)


async def _wait_finished(finished: asyncio.Future[Any], overflow: asyncio.Event, wall_s: float) -> tuple[bool, bool]:
    """Wait until `finished` is done, an output stream overflowed or `wall_s` passed:
    (timed out, overflowed)."""
    overflow_wait = asyncio.ensure_future(overflow.wait())
    waits: set[asyncio.Future[Any]] = {finished, overflow_wait}
    try:
        done, _ = await asyncio.wait(waits, timeout=wall_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        overflow_wait.cancel()
    return (not done, overflow.is_set())


async def _discard_all(queue: deque[_D], discard: Callable[[_D], None]) -> None:
    """Discard every waiting sandbox (or zygote), giving each up to 2 s to exit."""
    while queue:
        item = queue.popleft()
        discard(item)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(item.exited), 2)


def _cpu_limit_s(limits: Limits) -> int:
    """The CPU time limit in whole seconds (RLIMIT_CPU's unit), rounded up, at least 1."""
    return max(1, math.ceil(limits.cpu_time_ms / 1000))


def _cpu_detail(limits: Limits) -> str:
    seconds = _cpu_limit_s(limits)
    if seconds * 1000 == limits.cpu_time_ms:
        return f"CPU time limit of {seconds} s reached"
    return (
        f"CPU time limit of {limits.cpu_time_ms} ms reached (applied as {seconds} s: RLIMIT_CPU counts whole seconds)"
    )


def _run_header(limits: Limits, processes: int, check_excerpt: int, *extra: int) -> bytes:
    """The line that tells the runner its limits: CPU s, memory, processes, file size, and 0 for
    a script or, in check mode, the bytes of output to keep."""
    fields = (_cpu_limit_s(limits), limits.memory_bytes, processes, limits.max_file_bytes, check_excerpt, *extra)
    return " ".join(str(x) for x in fields).encode()


def _no_inheritable_fds() -> None:
    """Make every fd the service holds (beyond stdio) close-on-exec, inherited ones included,
    so that nothing but what a spawn passes on purpose can reach a sandbox."""
    for entry in list(Path("/proc/self/fd").iterdir()):
        fd = int(entry.name)
        if fd > 2:
            with contextlib.suppress(OSError):
                os.set_inheritable(fd, False)


def _cgroup_with(layout: CgroupLayout, name: str, pid: int) -> RunCgroup:
    cgroup = layout.create(name)
    cgroup.add(pid)
    return cgroup


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat[stat.rindex(b")") + 2 :].split(None, 2)[1])


def _oom_first(pid: int) -> None:
    """Point the OOM killer at the sandbox rather than the service (inherited by its children)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/oom_score_adj").write_text("1000")


def _classify(
    code: int,
    out: _Stream,
    err: _Stream,
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
    cpu_limit_s = _cpu_limit_s(limits)
    memory_detail = f"memory limit of {limits.memory_bytes} bytes reached"
    if memory.oom_kills:
        stopped = timed_out or overflowed  # then the service killed the program's process
        status, detail = Status.MEMORY_LIMIT, memory_detail + ": " + _oom_detail(memory.oom_kills, code, stopped)
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
    elif code == 128 + signal.SIGXCPU or (code == 128 + signal.SIGKILL and cpu >= cpu_limit_s):
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


def _oom_detail(kills: int, code: int, stopped: bool) -> str:
    """Which processes the OOM killer ended, as far as the exit code tells (nothing about the
    program's own process when the service killed it: a timeout, an output overflow)."""
    what = "1 process" if kills == 1 else f"{kills} processes"
    if stopped:
        return f"the cgroup's OOM killer ended {what} of the run"
    if code == 128 + signal.SIGKILL:
        whose = "the program's own process was killed (SIGKILL)"
    else:
        whose = f"not the program's own process, which exited with code {code}"
    return f"the cgroup's OOM killer ended {what} of the run ({whose})"

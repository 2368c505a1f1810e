"""Starting sandboxes, for either isolation mode: bubblewrap's command line, the runner's
(inside.py) command line, spawning as the sandbox user with only chosen fds, confining an
announced runner to a fresh cgroup, and the background clean-ups of discarded sandboxes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from pathlib import Path
from typing import Any

from hyoka.sandbox import seccomp_filter
from hyoka.sandbox.capabilities import Capabilities
from hyoka.sandbox.cgroups import CgroupLayout, RunCgroup
from hyoka.sandbox.config import SandboxConfig
from hyoka.sandbox.reaper import ChildReaper
from hyoka.sandbox.runs import Discardable
from hyoka.sandbox.runtimes import SANDBOX_ROOT, SANDBOX_SITE, Runtime

log = logging.getLogger(__name__)

#: The in-sandbox runner: bind-mounted read-only into every sandbox and run as a script, so that
#: no process's command line carries its source.
RUNNER = Path(__file__).with_name("inside.py")
SANDBOX_RUNNER = "/opt/hyoka-runner/inside.py"
#: Environment of every run, beside HOME, PATH and LANG.
SANDBOX_ENV = (("OMP_NUM_THREADS", "1"), ("OPENBLAS_MAIN_FREE", "1"), ("GOTOBLAS_MAIN_FREE", "1"))
SCRATCH = "/work"


class Launcher:
    """What both isolation modes use to start sandboxes. Create inside a running event loop."""

    def __init__(self, config: SandboxConfig, capabilities: Capabilities) -> None:
        self.config = config
        self.capabilities = capabilities
        self.loop = asyncio.get_running_loop()
        self.reaper = ChildReaper(self.loop)
        #: The seccomp filter as a memfd (reopen() it per sandbox); -1 without one.
        self.seccomp_fd = seccomp_filter.bpf_memfd() if capabilities.seccomp and not config.insecure else -1
        self._ids = itertools.count()
        self._cleanups: set[asyncio.Task[None]] = set()
        _no_inheritable_fds()

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
        args += ["--ro-bind", str(RUNNER), SANDBOX_RUNNER]  # the runner alone, read-only
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
        """The runner's command line up to its mode-specific arguments (inside.py): the script's
        path as the sandbox sees it (insecure mode has no mounts: the host's paths)."""
        insecure = self.config.insecure
        site = "-"
        if runtime.site is not None:
            site = str(runtime.site) if insecure else SANDBOX_SITE
        runner = str(RUNNER) if insecure else SANDBOX_RUNNER
        return [runtime.python, "-I", "-S", "-B", "-X", "utf8", runner, mode, site]

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

    async def confine(self, pid: int, kind: str, *, cgroup: bool = True) -> RunCgroup | None:
        """Put a just-announced process into a fresh cgroup named `kind-<our pid>-<n>` where the
        host gives us cgroups (a slow kernel operation, so in a thread), and make it the OOM
        killer's first choice. Raises OSError when the cgroup cannot be made."""
        layout = self.capabilities.cgroups if cgroup else None
        made = None
        if layout is not None:
            name = f"{kind}-{os.getpid()}-{next(self._ids)}"
            made = await self.loop.run_in_executor(None, _cgroup_with, layout, name, pid)
        _oom_first(pid)
        return made

    # ------------------------------------------------------------------ clean-ups
    def track(self, task: asyncio.Task[None]) -> None:
        """Keep a background clean-up alive until done; close() waits for them."""
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    def clean_up_discarded(self, sandbox: Discardable) -> None:
        """Once a discarded sandbox or zygote has finished its set-up, remove its cgroup."""
        self.track(self.loop.create_task(self._cleanup_discarded(sandbox)))

    def remove_cgroup_later(self, cgroup: RunCgroup) -> None:
        self.track(self.loop.create_task(self._remove_cgroup(cgroup)))

    async def _cleanup_discarded(self, sandbox: Discardable) -> None:
        if sandbox.prepared is not None:
            with contextlib.suppress(Exception):
                await sandbox.prepared
        if sandbox.cgroup is not None:
            await self._remove_cgroup(sandbox.cgroup)

    async def _remove_cgroup(self, cgroup: RunCgroup) -> None:
        for _ in range(100):
            cgroup.kill_all()
            if cgroup.remove():
                return
            await asyncio.sleep(0.05)
        log.warning("could not remove cgroup %s", cgroup.memory)

    async def close(self) -> None:
        """Wait for the clean-ups (the modes have discarded their sandboxes), then stop reaping."""
        if self._cleanups:
            await asyncio.wait(set(self._cleanups), timeout=10)
        self.reaper.reap()
        self.reaper.close()
        if self.seccomp_fd >= 0:
            os.close(self.seccomp_fd)


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat[stat.rindex(b")") + 2 :].split(None, 2)[1])


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


def _oom_first(pid: int) -> None:
    """Point the OOM killer at the sandbox rather than the service (inherited by its children)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/oom_score_adj").write_text("1000")

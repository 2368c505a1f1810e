"""What isolation the host allows, detected once at start by trying it for real."""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass, field

from hyoka.sandbox.cgroups import CgroupLayout

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 10


@dataclass(frozen=True)
class Capabilities:
    user_namespaces: bool
    seccomp: bool
    proc_mount: bool
    cgroups: CgroupLayout | None
    #: bubblewrap can set the sandbox's hostname (some container seccomp profiles deny sethostname).
    hostname: bool
    #: bubblewrap's --disable-userns works (it writes /proc/sys, read-only in many containers).
    disable_userns: bool
    bwrap_version: str
    python_version: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def cgroup_version(self) -> str:
        return self.cgroups.version if self.cgroups else "none"


def _bwrap_ok(bwrap: str, *extra: str, preexec_user: tuple[int, int] | None = None) -> bool:
    args = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent"]
    args += ["--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64"]
    args += [*extra, "/usr/bin/true"]
    kwargs: dict[str, object] = {}
    if preexec_user is not None:
        kwargs = {"user": preexec_user[0], "group": preexec_user[1], "extra_groups": []}
    try:
        done = subprocess.run(args, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False, **kwargs)  # type: ignore[call-overload]
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("bubblewrap probe failed: %s", error)
        return False
    if done.returncode != 0:
        log.warning("bubblewrap probe %s failed: %s", extra, done.stderr.decode(errors="replace").strip())
    return bool(done.returncode == 0)


def _seccomp_ok() -> bool:
    try:
        from hyoka.sandbox.seccomp_filter import build_filter

        build_filter()
    except Exception as error:  # libseccomp missing or unusable
        log.warning("seccomp unavailable: %s", error)
        return False
    return True


def _bwrap_version(bwrap: str) -> str:
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return "missing"
    return out.stdout.decode().strip().rpartition(" ")[2] or "unknown"


def _python_version(python: str) -> str:
    try:
        out = subprocess.run(
            [python, "-I", "-S", "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "missing"
    return out.stdout.decode().strip() or "unknown"


def detect(python: str, bwrap: str, sandbox_user: tuple[int, int] | None, cgroups_wanted: bool) -> Capabilities:
    """Probe the host. Must run before the service installs its child reaper (it waits on
    its own subprocesses)."""
    version = _bwrap_version(bwrap)
    userns = version != "missing" and _bwrap_ok(bwrap, preexec_user=sandbox_user)
    proc = userns and _bwrap_ok(bwrap, "--proc", "/proc", preexec_user=sandbox_user)
    hostname = userns and _bwrap_ok(bwrap, "--hostname", "sandbox", preexec_user=sandbox_user)
    disable_userns = userns and _bwrap_ok(bwrap, "--disable-userns", preexec_user=sandbox_user)
    # One parent shared by every service on the host (runs are named run-<service pid>-<n>); it
    # outlives the service, which may no longer be allowed to remove it after dropping root.
    layout = CgroupLayout.detect("hyoka-sandbox") if cgroups_wanted else None
    warnings: list[str] = []
    if layout is None:
        warnings.append(
            "no writable cgroups: a run's memory is bounded per process (RLIMIT_AS) only; "
            "sandboxed processes get oom_score_adj=1000 so the OOM killer takes them first"
        )
    if userns and not hostname:
        warnings.append("bubblewrap cannot set the hostname (sethostname denied): sandboxes see the host's hostname")
    if userns and not disable_userns:
        warnings.append(
            "bubblewrap's --disable-userns fails (/proc/sys read-only): only the seccomp filter keeps runs from "
            "creating namespaces"
        )
    return Capabilities(
        user_namespaces=userns,
        seccomp=_seccomp_ok(),
        proc_mount=proc,
        cgroups=layout,
        hostname=hostname,
        disable_userns=disable_userns,
        bwrap_version=version,
        python_version=_python_version(python),
        warnings=tuple(warnings),
    )

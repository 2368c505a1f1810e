"""The sandbox pod's Kubernetes seccomp profile (deploy/k8s/seccomp/hyoka-sandbox.json, the file
deploy/k8s's `localhostProfile: hyoka-sandbox.json` names) run for real: the sandbox image under
podman with exactly that profile (`--security-opt seccomp=FILE`; never unconfined, /proc/sys left
masked as a pod's is) isolates and runs programs; RuntimeDefault alone cannot run it; syscalls
RuntimeDefault denies stay denied.

The static checks (the committed profile is what deploy/k8s/seccomp/make_profile.py writes from the
vendored RuntimeDefault, plus exactly its documented additions) need no podman and are not slow."""

from __future__ import annotations

import gzip
import importlib.util
import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from hyoka.rpc.client import ChannelConfig, sync_channel
from hyoka.v1 import sandbox_pb2, sandbox_pb2_grpc

from .conftest import REPO, Container, host_uid, podman, run_container, run_once, wait_serving
from .test_containers import NESTING_PROGRAM

SECCOMP_DIR = REPO / "deploy" / "k8s" / "seccomp"
PROFILE = SECCOMP_DIR / "hyoka-sandbox.json"
TIMEOUT = 60.0
SERVICE_UID = 10001
#: What the sandbox needs beyond RuntimeDefault (see make_profile.py's docstring and the README).
EXPECTED_ADDITIONS = {"clone", "mount", "pivot_root", "sethostname", "umount2", "unshare"}
#: RuntimeDefault denies these to a container without capabilities; the profile must too.
MUST_STAY_DENIED = {
    "bpf", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "keyctl", "add_key",
    "request_key", "setns", "chroot", "open_by_handle_at", "perf_event_open", "userfaultfd", "fsopen", "fsmount",
    "move_mount", "open_tree", "mount_setattr", "setdomainname", "reboot", "swapon", "iopl", "ioperm", "acct",
    "settimeofday", "clock_settime", "syslog", "quotactl", "lookup_dcookie", "umount", "kcmp", "pidfd_getfd",
}  # fmt: skip


def _make_profile() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hyoka_make_profile", SECCOMP_DIR / "make_profile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _unconditionally_allowed(profile: dict[str, object]) -> set[str]:
    rules = profile["syscalls"]
    assert isinstance(rules, list)
    return {n for r in rules if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") for n in r["names"]}


def test_profile_is_runtime_default_plus_the_documented_additions() -> None:
    make_profile = _make_profile()
    assert PROFILE.read_text() == make_profile.render(), "run python3 deploy/k8s/seccomp/make_profile.py"
    profile = json.loads(PROFILE.read_text())
    upstream = json.loads(make_profile.UPSTREAM.read_text())
    runtime_default = make_profile.build(upstream, added=())
    # The OCI runtime-spec format containerd reads: no moby-only conditional keys it would ignore.
    assert set(profile) == {"defaultAction", "defaultErrnoRet", "architectures", "syscalls"}
    assert all(set(rule) <= {"names", "action", "errnoRet", "args"} for rule in profile["syscalls"])
    assert (profile["defaultAction"], profile["defaultErrnoRet"]) == ("SCMP_ACT_ERRNO", 1)
    assert _unconditionally_allowed(profile) - _unconditionally_allowed(runtime_default) == EXPECTED_ADDITIONS
    assert _unconditionally_allowed(runtime_default) <= _unconditionally_allowed(profile)
    assert not MUST_STAY_DENIED & {n for rule in profile["syscalls"] for n in rule["names"]}
    # clone3 keeps RuntimeDefault's ENOSYS (so nothing can pass namespace flags through it).
    assert {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38} in profile["syscalls"]


@pytest.fixture(scope="module")
def sandbox_image(build_image: Callable[[str], str]) -> str:
    return build_image("sandbox")


def _pod_options(profile: Path, token: str, data_dir: Path) -> list[str]:
    """deploy/k8s/base/sandbox.yaml's container in podman flags (/proc/sys stays masked)."""
    return [
        "--user", f"{SERVICE_UID}:{SERVICE_UID}",
        "--cap-drop=ALL",
        "--security-opt", "no-new-privileges",
        "--security-opt", f"seccomp={profile}",
        "--read-only",
        "--tmpfs", "/tmp:size=256m",
        "--memory", "4g",
        "--pids-limit", "512",
        "-e", f"HYOKA_SANDBOX_TOKEN={token}",
        "-v", f"{data_dir}:/data:ro",
    ]  # fmt: skip


SERVE = ["hyoka-sandbox", "serve", "--host", "0.0.0.0", "--port", "50052", "--workers", "2"]


@pytest.fixture(scope="module")
def k8s_sandbox(sandbox_image: str, data_dir: Path) -> Iterator[tuple[Container, str]]:
    token = secrets.token_hex(16)
    with run_container(sandbox_image, 50052, _pod_options(PROFILE, token, data_dir), SERVE) as box:
        wait_serving(box, "hyoka.v1.SandboxService")
        yield box, token


@pytest.mark.slow
def test_sandbox_isolates_and_runs_under_the_k8s_profile(k8s_sandbox: tuple[Container, str], data_dir: Path) -> None:
    box, token = k8s_sandbox
    assert host_uid(box.host_pid()) == SERVICE_UID
    with sync_channel(ChannelConfig(box.target, auth_token=token)) as channel:
        stub = sandbox_pb2_grpc.SandboxServiceStub(channel)  # type: ignore[no-untyped-call]
        info = stub.GetSandboxInfo(sandbox_pb2.GetSandboxInfoRequest(), timeout=TIMEOUT)
        assert not info.insecure
        assert info.isolation.startswith("bubblewrap-zygote+seccomp"), info.isolation
        assert info.capabilities.user_namespaces and info.capabilities.seccomp
        assert info.capabilities.hostname, info.warnings  # sethostname is in the profile

        def run(program: str) -> sandbox_pb2.ExecutionResult:
            request = sandbox_pb2.ExecuteRequest(program=program.encode())
            result: sandbox_pb2.ExecutionResult = stub.Execute(request, timeout=TIMEOUT).result
            return result

        ok = run("import socket, numpy; print(int(numpy.arange(7).sum()) * 2, socket.gethostname())")
        assert ok.status == sandbox_pb2.EXECUTION_STATUS_PASSED, ok
        assert ok.stdout == b"42 sandbox\n"
        with gzip.open(data_dir / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as lines:
            problem = json.loads(next(lines))
        check = sandbox_pb2.CheckCompletionsRequest(
            problem_id=problem["task_id"], completions=[problem["canonical_solution"], "    return None\n"], k=[1]
        )
        response = stub.CheckCompletions(check, timeout=TIMEOUT)
        assert [r.passed for r in response.results] == [True, False], response
        # Still no network for a program (the container's own port answers from the container)...
        probe = "import socket; socket.create_connection(('127.0.0.1', 50052), timeout=3).close(); print('connected')"
        control = box.exec("python3", "-c", probe)
        assert control.returncode == 0 and "connected" in control.stdout, control.stderr
        connect = run(probe)
        assert connect.status == sandbox_pb2.EXECUTION_STATUS_FAILED, connect
        assert b"connected" not in connect.stdout and b"OSError" in connect.stderr, connect.stderr
        # ...and no new namespaces from inside a run, although the pod's profile allows them.
        nest = run(NESTING_PROGRAM)
        assert nest.status == sandbox_pb2.EXECUTION_STATUS_PASSED, nest
        assert nest.stdout.decode().split() == ["unshare:-1", "clone:-1", "clone3:-1"], nest.stdout


DENIED_PROGRAM = """
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
calls = {  # x86_64 numbers: what an unprivileged process may do without seccomp, and two it may not
    "keyctl": (250, 0, -3, 0),            # KEYCTL_GET_KEYRING_ID of the session keyring
    "personality": (135, 0x0040000),      # ADDR_NO_RANDOMIZE, a value RuntimeDefault does not allow
    "socket_vsock": (41, 40, 1, 0),       # AF_VSOCK
    "bpf": (321, 0, 0, 0),
    "kexec_load": (246, 0, 0, 0, 0),
}
for name, (nr, *args) in calls.items():
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
    print(name, "EPERM" if result == -1 and ctypes.get_errno() == errno.EPERM else "other:%d" % ctypes.get_errno())
"""


@pytest.mark.slow
def test_the_profile_denies_what_runtime_default_denies(sandbox_image: str) -> None:
    if podman("info", "--format", "{{.Host.Arch}}").stdout.strip() != "amd64":
        pytest.skip("the probe program uses x86_64 syscall numbers")
    base = ["--user", f"{SERVICE_UID}:{SERVICE_UID}", "--cap-drop=ALL", "--security-opt", "no-new-privileges"]
    command = ["python3", "-c", DENIED_PROGRAM]
    confined = dict(
        line.split()
        for line in run_once(sandbox_image, [*base, "--security-opt", f"seccomp={PROFILE}"], command).splitlines()
    )
    assert confined == dict.fromkeys(["keyctl", "personality", "socket_vsock", "bpf", "kexec_load"], "EPERM")
    # The control: without seccomp the kernel allows the first three, so the profile is what denies them.
    unconfined = dict(
        line.split()
        for line in run_once(sandbox_image, [*base, "--security-opt", "seccomp=unconfined"], command).splitlines()
    )
    assert unconfined["keyctl"] != "EPERM" and unconfined["personality"] != "EPERM", unconfined


@pytest.mark.slow
def test_runtime_default_alone_cannot_run_the_sandbox(sandbox_image: str, data_dir: Path, tmp_path: Path) -> None:
    """Why the pod needs a Localhost profile: under RuntimeDefault the service refuses to start."""
    make_profile = _make_profile()
    runtime_default = tmp_path / "runtime-default.json"
    runtime_default.write_text(json.dumps(make_profile.build(json.loads(make_profile.UPSTREAM.read_text()), added=())))
    name = f"hyoka-test-{secrets.token_hex(6)}"
    try:
        result = podman(
            "run", "--name", name, "--network", "none", *_pod_options(runtime_default, "x", data_dir),
            sandbox_image, *SERVE, timeout=120, check=False,
        )  # fmt: skip
    finally:
        podman("rm", "--force", "--time", "5", name, check=False)
    assert result.returncode != 0
    assert "refusing to start: the host lacks user namespaces" in result.stderr, result.stderr[-2000:]


@pytest.mark.slow
def test_the_installer_daemonset_installs_the_profile(sandbox_image: str, tmp_path: Path) -> None:
    """deploy/k8s/seccomp/installer.yaml's own commands, as its pod runs them: the init container
    (uid 0, no capabilities, read-only root) writes the profile into a root-owned 0755 directory
    standing in for /var/lib/kubelet/seccomp; the readiness probe (uid 10001) then passes."""
    documents = list(yaml.safe_load_all((SECCOMP_DIR / "installer.yaml").read_text()))
    pod = next(d for d in documents if d["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    (init,), (main,) = pod["initContainers"], pod["containers"]
    host = tmp_path / "kubelet-seccomp"
    host.mkdir(mode=0o755)
    (host / "hyoka-sandbox.json").write_text("{}")  # an older profile, replaced
    mounts = ["-v", f"{SECCOMP_DIR}:/profile:ro"]
    locked = ["--cap-drop=ALL", "--security-opt", "no-new-privileges", "--read-only"]
    user = init["securityContext"]
    run_once(
        sandbox_image,
        [*locked, *mounts, "-v", f"{host}:/host", "--user", f"{user['runAsUser']}:{user['runAsGroup']}"],
        init["command"],
    )
    assert (host / "hyoka-sandbox.json").read_bytes() == PROFILE.read_bytes()
    assert sorted(p.name for p in host.iterdir()) == ["hyoka-sandbox.json"]  # no temporary file left
    user = main["securityContext"]
    probe = main["readinessProbe"]["exec"]["command"]
    run_once(
        sandbox_image,
        [*locked, *mounts, "-v", f"{host}:/host:ro", "--user", f"{user['runAsUser']}:{user['runAsGroup']}"],
        probe,
    )

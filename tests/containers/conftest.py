"""Fixtures for the container tests: hyoka's images built with podman by scripts/containers.sh
(from a local debootstrap base, reusing cached layers) and run as real containers whose gRPC
port is published on 127.0.0.1 only.

Without podman (or without root, which rootful podman and the build script need) the tests skip
on a developer machine and FAIL in CI (CI=true), so CI cannot pass without running them."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyoka.rpc.client import ChannelConfig, sync_channel

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "containers.sh"
IMAGE_TAG = "dev"
BUILD_TIMEOUT_S = 1200  # a cold build of the base and all three images takes about 3 minutes here
HEALTH_WAIT_S = 60.0
# podman's own default profile; the sandbox's profile is derived from it (see sandbox/POD.md).
PODMAN_DEFAULT_SECCOMP = Path("/usr/share/containers/seccomp.json")


def image_name(name: str) -> str:
    return f"localhost/hyoka/{name}:{IMAGE_TAG}"


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs `podman ARGS`; with `check`, a non-zero exit fails the test with podman's stderr."""
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
    return result


@pytest.fixture(scope="session")
def podman_ready() -> None:
    """podman is installed and we are root; else skip (developer machine) or fail (CI)."""
    problem = None
    if shutil.which("podman") is None:
        problem = "podman is not installed (scripts/containers.sh setup installs it, as root)"
    elif os.geteuid() != 0:
        problem = "the container tests need root (rootful podman; scripts/containers.sh installs and configures it)"
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def build_image(podman_ready: None) -> Callable[[str], str]:
    """Builds one image with scripts/containers.sh (the base image first if missing; podman's
    layer cache makes a rebuild of unchanged sources take about a second) and returns its name."""
    built: dict[str, str] = {}

    def build(name: str) -> str:
        if name not in built:
            result = subprocess.run(
                ["bash", str(BUILD_SCRIPT), "build", name],
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
            if result.returncode != 0:
                pytest.fail(f"scripts/containers.sh build {name} failed:\n{result.stderr[-6000:]}")
            built[name] = image_name(name)
        return built[name]

    return build


@dataclass
class Container:
    """A running container; `target` is its published gRPC port on the host's loopback."""

    name: str
    target: str

    def host_pid(self) -> int:
        """The host pid of the container's first process (PID 1 inside)."""
        return int(podman("inspect", "--format", "{{.State.Pid}}", self.name).stdout.strip())

    def running(self) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return (result.stdout + result.stderr)[-6000:]

    def exec(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name, *command, timeout=timeout, check=False)


def host_uid(pid: int) -> int:
    """The real uid of a host process, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


def wait_serving(container: Container, service: str, auth_token: str | None = None) -> None:
    """Polls the gRPC health service for up to HEALTH_WAIT_S; fails with the container's log if
    the container exits or never reports SERVING."""
    deadline = time.monotonic() + HEALTH_WAIT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if not container.running():
            pytest.fail(f"container {container.name} exited:\n{container.logs()}")
        with contextlib.suppress(grpc.RpcError), sync_channel(ChannelConfig(container.target, auth_token)) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
            last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        time.sleep(0.5)
    pytest.fail(f"{service} in {container.name} not SERVING after {HEALTH_WAIT_S:.0f} s ({last}):\n{container.logs()}")


@contextlib.contextmanager
def run_container(
    image: str, port: int, options: Sequence[str] = (), command: Sequence[str] = ()
) -> Iterator[Container]:
    """`podman run -d` with `port` published on a free port of 127.0.0.1 only; the container is
    removed at the end, whatever happens."""
    name = f"hyoka-test-{uuid.uuid4().hex[:12]}"
    try:
        podman("run", "-d", "--name", name, "-p", f"127.0.0.1::{port}", *options, image, *command)
        published = podman("port", name, str(port)).stdout.strip().splitlines()[0]
        host, _, host_port = published.rpartition(":")
        assert host == "127.0.0.1", published  # never on a public interface
        yield Container(name, f"127.0.0.1:{host_port}")
    finally:
        podman("rm", "--force", "--time", "5", name, check=False)


def run_once(image: str, options: Sequence[str], command: Sequence[str], timeout: float = 300) -> str:
    """`podman run --rm` to completion (no network); fails the test on a non-zero exit."""
    name = f"hyoka-test-{uuid.uuid4().hex[:12]}"
    try:
        result = podman("run", "--rm", "--name", name, "--network", "none", *options, image, *command, timeout=timeout)
    finally:
        podman("rm", "--force", "--time", "5", name, check=False)
    return result.stdout


@contextlib.contextmanager
def podman_docker_api(socket_path: Path) -> Iterator[str]:
    """podman's Docker-compatible API on a unix socket of our own (`podman system service`),
    stopped at the end; yields its DOCKER_HOST."""
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket_path.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                pytest.fail("podman system service did not open its socket")
            time.sleep(0.1)
        yield f"unix://{socket_path}"
    finally:
        service.terminate()
        service.wait(timeout=30)


def sandbox_seccomp_profile(path: Path) -> Path:
    """Writes the sandbox's seccomp profile: podman's default profile, plus `sethostname` and
    `setdomainname` allowed without CAP_SYS_ADMIN (bubblewrap sets the hostname of the UTS
    namespace it creates; podman's default already allows unshare, clone, mount, pivot_root and
    setns). See sandbox/POD.md."""
    if not PODMAN_DEFAULT_SECCOMP.is_file():
        pytest.fail(f"podman's default seccomp profile is missing: {PODMAN_DEFAULT_SECCOMP}")
    profile = json.loads(PODMAN_DEFAULT_SECCOMP.read_text())
    extra = {"sethostname", "setdomainname"}
    rules = []
    for rule in profile["syscalls"]:
        if rule["action"] != "SCMP_ACT_ALLOW":  # the deny rules for callers without CAP_SYS_ADMIN
            rule = {**rule, "names": [n for n in rule["names"] if n not in extra]}
        if rule["names"]:
            rules.append(rule)
    rules.append({"names": sorted(extra), "action": "SCMP_ACT_ALLOW"})
    path.write_text(json.dumps({**profile, "syscalls": rules}, indent=1))
    return path

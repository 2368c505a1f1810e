"""Fixtures: a real `hyoka-sandbox serve` process on a free port, a real gRPC client, and
outside-the-sandbox observers (process scans, cgroup membership, canaries)."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyoka.rpc.client import ChannelConfig, sync_channel
from hyoka.v1 import sandbox_pb2, sandbox_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("HYOKA_DATA_DIR", REPO.parent / "shared" / "datasets"))
SERVICE_SECRET = "HYOKA_TEST_SERVICE_SECRET_" + secrets.token_hex(8)
pb = sandbox_pb2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    port: int
    token: str
    log_path: Path
    #: The runtime `execute` asks for ("": the server's default).
    runtime: str = ""

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def channel(self, token: str | None = None) -> grpc.Channel:
        return sync_channel(ChannelConfig(self.target, auth_token=self.token if token is None else token or None))

    def stub(self) -> sandbox_pb2_grpc.SandboxServiceStub:
        return sandbox_pb2_grpc.SandboxServiceStub(self.channel())

    def healthy(self) -> bool:
        if self.proc.poll() is not None:
            return False
        with self.channel(token="") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def run_pids(self) -> list[int]:
        """Processes of programs running now, seen from the host: those in this service's per-run
        cgroups (single-use mode), and those in its zygotes' cgroups that live in a per-run PID
        namespace, below the zygote's (zygote mode)."""
        parent = Path("/sys/fs/cgroup/pids/hyoka-sandbox")
        if not parent.is_dir():
            return []
        pids: list[int] = []
        for group in parent.glob(f"run-{self.proc.pid}-*"):
            with contextlib.suppress(OSError):
                pids += [int(x) for x in (group / "cgroup.procs").read_text().split()]
        for group in parent.glob(f"zygote-{self.proc.pid}-*"):
            with contextlib.suppress(OSError):
                for pid in (int(x) for x in (group / "cgroup.procs").read_text().split()):
                    status = Path(f"/proc/{pid}/status").read_text()
                    nspid = next(line for line in status.splitlines() if line.startswith("NSpid:"))
                    if len(nspid.split()) >= 4:  # "NSpid:", host, zygote's namespace, the run's
                        pids.append(pid)
        return pids

    def execute(
        self, program: str | bytes, timeout: float = 60, runtime: str | None = None, **limits: int
    ) -> sandbox_pb2.ExecutionResult:
        source = program.encode() if isinstance(program, str) else program
        chosen = self.runtime if runtime is None else runtime
        request = pb.ExecuteRequest(program=source, limits=pb.ResourceLimits(**limits), runtime=chosen)
        with self.channel() as channel:
            stub = sandbox_pb2_grpc.SandboxServiceStub(channel)
            return stub.Execute(request, timeout=timeout).result

    def assert_healthy(self) -> None:
        """Serving, and still running programs correctly."""
        assert self.healthy()
        result = self.execute("print(6 * 7)", timeout=30)
        assert result.status == pb.EXECUTION_STATUS_PASSED, result
        assert result.stdout == b"42\n"

    @staticmethod
    def processes_with(marker: str) -> list[int]:
        """Host pids whose command line contains `marker` (the test process itself excluded)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
        return found

    def rss_bytes(self) -> int:
        return vm_rss(self.proc.pid)


def vm_rss(pid: int) -> int:
    """Resident memory of `pid` in bytes (0 if it has none, e.g. a zombie); OSError if gone."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def wait_gone(service: Service, mark: str, seconds: float = 3.0) -> list[int]:
    """Wait up to `seconds` for every process whose command line holds `mark` to end; the
    ones still there then."""
    deadline = time.monotonic() + seconds
    while True:
        left = service.processes_with(mark)
        if not left or time.monotonic() > deadline:
            return list(left)
        time.sleep(0.05)


def start_service(tmp_path: Path, *args: str) -> Service:
    port = free_port()
    token = secrets.token_hex(16)
    env = {
        **os.environ,
        "HYOKA_SANDBOX_TOKEN": token,
        "HYOKA_DATA_DIR": str(DATA_DIR),
        "HYOKA_CANARY": SERVICE_SECRET,  # a secret in the service's own environment
    }
    log_path = tmp_path / f"sandbox-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hyoka.sandbox", "serve", "--port", str(port), *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    service = Service(proc, port, token, log_path)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"sandbox service exited: {log_path.read_text()}")
        with contextlib.suppress(grpc.RpcError):
            if service.healthy():
                break
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"sandbox service did not become healthy: {log_path.read_text()}")
        time.sleep(0.2)
    return service


def stop_service(service: Service) -> None:
    if service.proc.poll() is None:
        service.proc.terminate()
        try:
            service.proc.wait(15)
        except subprocess.TimeoutExpired:
            service.proc.kill()
            service.proc.wait()


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    # HYOKA_SANDBOX_TEST_ARGS=--insecure shows that the threat tests do catch escapes (they must fail
    # then). Select the harmless ones with -k: without isolation the kill and filesystem tests really
    # kill processes of the sandbox uid and fill the host's /tmp.
    extra = os.environ.get("HYOKA_SANDBOX_TEST_ARGS", "").split()
    # Room for a whole HumanEval set checked at once (164 CheckCompletions; large calls may take
    # half the waiting places): the tests send it through a bare stub, which does not retry.
    svc = start_service(tmp_path_factory.mktemp("sandbox"), "--workers", "2", "--max-queued-calls", "512", *extra)
    yield svc
    stop_service(svc)


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Start extra services with their own flags; all are stopped after the test."""
    started: list[Service] = []

    def start(*args: str) -> Service:
        started.append(start_service(tmp_path, *args))
        return started[-1]

    yield start
    for svc in started:
        stop_service(svc)


@pytest.fixture(scope="session")
def stub(service: Service) -> sandbox_pb2_grpc.SandboxServiceStub:
    return service.stub()

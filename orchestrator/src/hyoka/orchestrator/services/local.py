"""Start the metrics and sandbox servers as local subprocesses (`hyoka-metrics serve --port P`,
`hyoka-sandbox serve --port P`) on free loopback ports, wait until they report SERVING, and stop
them at the end. This is what `hyoka eval` does when no service URLs are given, and what the
end-to-end tests use."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from hyoka.orchestrator.services._common import ServiceClient, ServiceUnavailableError
from hyoka.rpc.server import free_port
from hyoka.rpc.tls import SERVER_ENV


@dataclass(frozen=True)
class LocalServiceSpec:
    executable: str  # console script name, e.g. "hyoka-metrics"
    service_name: str  # gRPC service whose health is awaited
    extra_args: tuple[str, ...] = ()


# Loopback only, and no bearer token: the servers live as long as this process and nothing else
# can reach them.
METRICS = LocalServiceSpec("hyoka-metrics", "hyoka.v1.MetricsService", ("--host", "127.0.0.1"))
SANDBOX = LocalServiceSpec("hyoka-sandbox", "hyoka.v1.SandboxService", ("--host", "127.0.0.1"))
# Local servers run on loopback without auth or TLS: strip every variable a server reads its
# token or TLS settings from, or a user's exported settings would make them unreachable here.
_SERVER_ONLY_VARIABLES = (
    "HYOKA_AUTH_TOKEN",
    "HYOKA_METRICS_AUTH_TOKEN",
    "HYOKA_SANDBOX_TOKEN",
    *SERVER_ENV.values(),
)


def find_executable(name: str) -> str:
    """The console script next to this interpreter (the project's venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ServiceUnavailableError(f"cannot start {name}: not installed (no {beside}, not on PATH)")
    return found


@dataclass
class LocalService:
    spec: LocalServiceSpec
    process: subprocess.Popen[bytes]
    target: str
    log_path: Path | None

    def log_tail(self, n: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def stop(self, grace: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _spawn(argv: list[str], log: IO[bytes] | int) -> subprocess.Popen[bytes]:
    # Popen returns at once (fork + exec); nothing here waits on the child.
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**{k: v for k, v in os.environ.items() if k not in _SERVER_ONLY_VARIABLES}, "PYTHONUNBUFFERED": "1"},
    )


async def start_local_service(
    spec: LocalServiceSpec, *, log_dir: Path | None = None, startup_timeout: float = 60.0
) -> LocalService:
    """Spawn the server on a free port and wait until its health service says SERVING."""
    exe = find_executable(spec.executable)
    port = free_port()
    log_path = log_dir / f"{spec.executable}.log" if log_dir is not None else None
    log: IO[bytes] | int = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = log_path.open("ab")
    try:
        process = _spawn([exe, "serve", "--port", str(port), *spec.extra_args], log)
    finally:
        if not isinstance(log, int):
            log.close()
    service = LocalService(spec, process, f"127.0.0.1:{port}", log_path)
    client = ServiceClient(service.target)
    client.service_name = spec.service_name
    deadline = time.monotonic() + startup_timeout
    try:
        while True:
            if process.poll() is not None:
                tail = service.log_tail()
                raise ServiceUnavailableError(
                    f"{spec.executable} exited with code {process.returncode} while starting"
                    + (f"; last log lines:\n{tail}" if tail else "")
                )
            try:
                await client.health(deadline=1.0)
                return service
            except ServiceUnavailableError:
                if time.monotonic() > deadline:
                    raise ServiceUnavailableError(
                        f"{spec.executable} did not become healthy on {service.target} in {startup_timeout:.0f} s"
                    ) from None
                await asyncio.sleep(0.2)
    except BaseException:
        service.stop()
        raise
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def local_services(
    specs: Sequence[LocalServiceSpec], *, log_dir: Path | None = None
) -> AsyncIterator[list[LocalService]]:
    """Start every spec (concurrently), yield them, stop them all whatever happens."""
    started: list[LocalService] = []
    try:
        results = await asyncio.gather(
            *(start_local_service(s, log_dir=log_dir) for s in specs), return_exceptions=True
        )
        for r in results:
            if isinstance(r, LocalService):
                started.append(r)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        yield started
    finally:
        for s in started:
            s.stop()

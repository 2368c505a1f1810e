"""Starting the sandbox service: detect the host's isolation, refuse to run without it (unless
the insecure mode was chosen explicitly), then serve SandboxService over grpc.aio."""

from __future__ import annotations

import logging
import os

from hyoka.rpc.server import RunningServer, ServerConfig, ServiceRegistration, serve_forever
from hyoka.sandbox.capabilities import Capabilities, detect
from hyoka.sandbox.config import SandboxConfig
from hyoka.sandbox.engine import Status
from hyoka.sandbox.runtimes import Runtime, RuntimeUnavailable, load_runtimes
from hyoka.sandbox.service import ProgramSpec, SandboxService
from hyoka.sandbox.servicer import SandboxServicer
from hyoka.v1 import sandbox_pb2_grpc

log = logging.getLogger(__name__)

INSECURE_BANNER = (
    "\n" + "!" * 78 + "\n"
    "!!  INSECURE MODE: programs run WITHOUT ANY ISOLATION (no namespaces, no seccomp).\n"
    "!!  They can read, write and kill anything this user can. Local development only.\n" + "!" * 78
)


class IsolationUnavailable(RuntimeError):
    """The host does not allow the isolation the sandbox requires."""


def check_host(config: SandboxConfig) -> Capabilities:
    """Detect capabilities; raise IsolationUnavailable where required isolation is missing."""
    user = (config.sandbox_uid, config.sandbox_gid) if os.geteuid() == 0 else None
    caps = detect(config.python, config.bwrap, user, cgroups_wanted=config.cgroups != "off")
    log.info(
        "host: user namespaces %s, seccomp %s, cgroups %s, /proc mount %s, bubblewrap %s, python %s",
        caps.user_namespaces,
        caps.seccomp,
        caps.cgroup_version,
        caps.proc_mount,
        caps.bwrap_version,
        caps.python_version,
    )
    if config.insecure:
        log.critical(INSECURE_BANNER)
        return caps
    missing = []
    if not caps.user_namespaces:
        missing.append("user namespaces (bubblewrap --unshare-user failed; is bubblewrap installed?)")
    if not caps.seccomp:
        missing.append("seccomp (libseccomp via pyseccomp)")
    if config.cgroups == "required" and caps.cgroups is None:
        missing.append("writable cgroups (--cgroups required)")
    if missing:
        raise IsolationUnavailable(
            "refusing to start: the host lacks " + "; ".join(missing) + ". Use --insecure only for local development."
        )
    for warning in caps.warnings:
        log.warning(warning)
    return caps


def load_service_runtimes(config: SandboxConfig) -> dict[str, Runtime]:
    """The runtimes the service offers (`minimal` and those built in config.runtimes_dir); raises
    RuntimeUnavailable when one is broken or the default is missing."""
    runtimes = load_runtimes(config.runtimes_dir, config.python)
    if config.default_runtime not in runtimes:
        raise RuntimeUnavailable(
            f"the default runtime {config.default_runtime!r} is not built in {config.runtimes_dir} "
            f"(found: {', '.join(sorted(runtimes))}). Build it with `hyoka-sandbox build-runtime "
            "requirements/sandbox-runtime-bigcode.txt` (scripts/setup.sh all does), point --runtimes-dir or "
            "$HYOKA_SANDBOX_RUNTIMES at where it is, or choose another with --default-runtime"
        )
    for runtime in runtimes.values():
        log.info(
            "runtime %s: python %s (%s), %d packages, sha256 %s%s",
            runtime.name,
            runtime.python_version,
            runtime.python,
            len(runtime.packages),
            runtime.sha256,
            " (default)" if runtime.name == config.default_runtime else "",
        )
        for warning in runtime.warnings:
            log.warning(warning)
    return runtimes


SELF_TEST_PROGRAM = b"import sys\nassert sys.version_info >= (3, 8)\nprint('sandbox ok')\n"


async def self_test(service: SandboxService) -> None:
    """Run one trivial program on every runtime: the host checks above can pass while the
    container runtime still refuses something bubblewrap needs (a seccomp profile or masked
    /proc), or a runtime's prefix cannot be mounted, and a service that reports SERVING but fails
    every run is worse than one that does not start."""
    for name in service.runtimes:
        result = await service.execute(ProgramSpec(SELF_TEST_PROGRAM, runtime=name))
        if result.status is not Status.PASSED or result.stdout.strip() != b"sandbox ok":
            why = (result.detail or result.stderr.decode(errors="replace")).strip()[-2000:]
            raise IsolationUnavailable(
                f"refusing to start: a trivial program did not run in the sandbox (runtime {name}, "
                f"{result.status.value}): {why}"
            )
        log.info("self-test passed: a program ran on runtime %s in %.0f ms", name, result.duration_seconds * 1000)


async def serve(server_config: ServerConfig, config: SandboxConfig) -> None:
    caps = check_host(config)
    runtimes = load_service_runtimes(config)
    service = SandboxService(config, caps, runtimes)
    service.start()
    try:
        await self_test(service)
    except BaseException:
        await service.close()
        raise
    registration = ServiceRegistration(
        name="hyoka.v1.SandboxService",
        add_to_server=sandbox_pb2_grpc.add_SandboxServiceServicer_to_server,
        servicer=SandboxServicer(service),
    )

    def started(running: RunningServer) -> None:
        # One parseable line for whoever started us with --port 0.
        health = f" (plaintext health on port {running.health_port})" if running.health_port is not None else ""
        print(f"hyoka-sandbox listening on {server_config.host}:{running.port}{health}", flush=True)

    try:
        await serve_forever(server_config, [registration], on_started=started)
    finally:
        await service.close()

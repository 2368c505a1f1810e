"""Status truth (issue 14, item 6): how a run ended is reported as it happened, in zygote and in
single-use mode: an OOM kill anywhere in the run is EXECUTION_STATUS_MEMORY_LIMIT, and signals a
program sends itself end it as they would outside a sandbox."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from hyoka.v1 import sandbox_pb2 as pb

from .conftest import Service

MIB = 1024 * 1024


@pytest.fixture(scope="module", params=["zygote", "single-use"])
def mode_service(
    request: pytest.FixtureRequest, service: Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """The session's (zygote) service, and one in single-use mode."""
    if request.param == "zygote":
        yield service
        return
    from .conftest import start_service, stop_service

    svc = start_service(tmp_path_factory.mktemp("single-use"), "--workers", "2", "--mode", "single-use")
    try:
        yield svc
    finally:
        stop_service(svc)


def _has_cgroups(svc: Service) -> bool:
    info = svc.stub().GetSandboxInfo(pb.GetSandboxInfoRequest(), timeout=10)
    return bool(info.capabilities.cgroup_memory)


@pytest.fixture
def cgroup_service(mode_service: Service) -> Service:
    if not _has_cgroups(mode_service):
        pytest.skip("the host gives no per-run cgroups: no run-wide OOM kill to report")
    return mode_service


# --------------------------------------------------------------------------- OOM kills
OOM_CHILD_THEN_EXIT_0 = """
import os, time
kids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        block = bytearray(160 * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(1)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
print("parent done")
"""

SIXTEEN_CHILDREN = """
import os
kids = []
for _ in range(16):
    pid = os.fork()
    if pid == 0:
        block = bytearray(256 * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.waitpid(pid, 0)
"""


def test_oom_killed_child_with_parent_exiting_0_is_memory_limit(cgroup_service: Service) -> None:
    # Each child stays under RLIMIT_AS (256 MiB) but both do not fit in the run's cgroup (also
    # 256 MiB): the cgroup's OOM killer ends one, and the parent, which ignores how they ended,
    # exits 0.
    result = cgroup_service.execute(OOM_CHILD_THEN_EXIT_0, memory_bytes=256 * MIB, wall_time_ms=20_000)
    assert result.status == pb.EXECUTION_STATUS_MEMORY_LIMIT, (result.status, result.detail, result.stderr[-2000:])
    assert "OOM" in result.detail
    assert result.stdout == b"parent done\n"


def test_sixteen_children_of_256_mib_under_512_mib_is_memory_limit(cgroup_service: Service) -> None:
    result = cgroup_service.execute(SIXTEEN_CHILDREN, memory_bytes=512 * MIB, wall_time_ms=5_000, max_processes=32)
    assert result.status == pb.EXECUTION_STATUS_MEMORY_LIMIT, (result.status, result.detail, result.stderr[-2000:])
    assert "OOM" in result.detail


def test_oom_kill_then_timeout_is_memory_limit(cgroup_service: Service) -> None:
    program = OOM_CHILD_THEN_EXIT_0 + "import time\ntime.sleep(600)\n"
    result = cgroup_service.execute(program, memory_bytes=256 * MIB, wall_time_ms=3_000)
    assert result.status == pb.EXECUTION_STATUS_MEMORY_LIMIT, (result.status, result.detail)
    assert "OOM" in result.detail and "wall time limit of 3000 ms" in result.detail


OOM_CHILD_REPORTED = """
import os, time
kids = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        time.sleep(0.2)  # so that the service's watch (every 10 ms) sees it alive, on a busy machine too
        block = bytearray(160 * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(1)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        print("killed", pid, os.WTERMSIG(status))
"""


def test_oom_detail_names_the_killed_process_and_when(cgroup_service: Service) -> None:
    """The detail says which process the OOM killer ended (its pid as the program sees it, and
    its name) and when, in ms since the run started; the program's parent confirms which."""
    result = cgroup_service.execute(OOM_CHILD_REPORTED, memory_bytes=256 * MIB, wall_time_ms=20_000)
    assert result.status == pb.EXECUTION_STATUS_MEMORY_LIMIT, (result.status, result.detail, result.stderr[-2000:])
    killed = [line.split() for line in result.stdout.decode().splitlines() if line.startswith("killed")]
    assert [signal for _, _, signal in killed] == ["9"], result.stdout
    pid = killed[0][1]
    assert re.search(rf"pid {pid} \(python[0-9.]*\) killed \d+ ms after the run started", result.detail), result.detail
    after_ms = int(re.findall(r"killed (\d+) ms after", result.detail)[0])
    assert 0 <= after_ms <= result.duration_seconds * 1000 + 50, (after_ms, result.duration_seconds)
    assert "not the program's own process, which exited with code 0" in result.detail


def test_oom_detail_of_sixteen_children_says_when(cgroup_service: Service) -> None:
    result = cgroup_service.execute(SIXTEEN_CHILDREN, memory_bytes=512 * MIB, wall_time_ms=5_000, max_processes=32)
    assert result.status == pb.EXECUTION_STATUS_MEMORY_LIMIT, (result.status, result.detail, result.stderr[-2000:])
    assert re.search(r"pid \d+ \(python[0-9.]*\)", result.detail), result.detail
    assert re.search(r"killed \d+ ms after the run started", result.detail), result.detail


def test_a_run_after_an_oom_kill_passes(cgroup_service: Service) -> None:
    """The OOM count of a zygote's cgroup is cumulative: the next run there must not inherit it."""
    for _ in range(3):
        result = cgroup_service.execute(OOM_CHILD_THEN_EXIT_0, memory_bytes=256 * MIB, wall_time_ms=20_000)
        assert result.status == pb.EXECUTION_STATUS_MEMORY_LIMIT
    for _ in range(4):
        result = cgroup_service.execute("print(1)")
        assert result.status == pb.EXECUTION_STATUS_PASSED, result.detail


# --------------------------------------------------------------------------- signals
@pytest.mark.parametrize(
    ("program", "code"),
    [
        ("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\nprint('survived')", 128 + 15),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\nprint('survived')", 128 + 9),
        ("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\nprint('survived')", 128 + 11),
        ("import signal\nsignal.raise_signal(signal.SIGINT)\nprint('survived')", 128 + 2),
        ("import os\nos.abort()\nprint('survived')", 128 + 6),
    ],
    ids=["sigterm", "sigkill", "sigsegv", "raise-sigint", "abort"],
)
def test_signals_a_program_sends_itself_end_it_as_outside(mode_service: Service, program: str, code: int) -> None:
    result = mode_service.execute(program)
    assert (result.status, result.exit_code) == (pb.EXECUTION_STATUS_FAILED, code), (result.detail, result.stderr)
    assert b"survived" not in result.stdout
    if code == 128 + 2:  # SIGINT's default Python handler: KeyboardInterrupt, then exit by the signal
        assert b"KeyboardInterrupt" in result.stderr


def test_the_program_is_not_pid_1(mode_service: Service) -> None:
    result = mode_service.execute("import os\nprint(os.getpid(), os.getppid())")
    assert result.status == pb.EXECUTION_STATUS_PASSED
    pid, ppid = (int(x) for x in result.stdout.split())
    assert pid != 1 and ppid == 1


# --------------------------------------------------------------------------- tracebacks
def test_tracebacks_show_the_program_only(mode_service: Service) -> None:
    result = mode_service.execute("def f(:\n    pass\n")
    assert result.status == pb.EXECUTION_STATUS_FAILED
    assert result.stderr.startswith(b'  File "/work/main.py", line 1\n'), result.stderr
    assert b"SyntaxError" in result.stderr
    assert b"<string>" not in result.stderr and b"Traceback" not in result.stderr
    result = mode_service.execute("def f():\n    raise ValueError('boom')\nf()\n")
    assert result.status == pb.EXECUTION_STATUS_FAILED and result.exit_code == 1
    lines = result.stderr.decode().splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1] == '  File "/work/main.py", line 3, in <module>', lines
    assert lines[-1] == "ValueError: boom"
    assert "<string>" not in result.stderr.decode()


# --------------------------------------------------------------------------- zygote pool
def _zygotes(svc: Service) -> int:
    """Live zygote sandboxes of `svc`: its children (bubblewrap) started for a zygote."""
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
            if int(ppid) == svc.proc.pid and state != "Z" and b"\0zygote\0" in (entry / "cmdline").read_bytes():
                count += 1
    return count


def _wait_for_zygotes(svc: Service, expected: int, seconds: float = 10.0) -> int:
    deadline = time.monotonic() + seconds
    while (count := _zygotes(svc)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def test_zygote_pool_is_refilled_after_timeout_overflow_and_cancel(
    service_factory: Callable[..., Service],
) -> None:
    svc = service_factory("--workers", "1")
    full = _wait_for_zygotes(svc, 2)
    assert full == 2, "one zygote per runtime and worker"
    result = svc.execute("import time\ntime.sleep(60)", wall_time_ms=500)
    assert result.status == pb.EXECUTION_STATUS_TIMEOUT
    assert _wait_for_zygotes(svc, full) == full, "the pool stayed short after a timeout"
    result = svc.execute("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", max_output_bytes=1024)
    assert result.status == pb.EXECUTION_STATUS_OUTPUT_LIMIT
    assert _wait_for_zygotes(svc, full) == full, "the pool stayed short after an output overflow"
    with pytest.raises(grpc.RpcError) as info:
        svc.execute("import time\ntime.sleep(60)", timeout=1, wall_time_ms=30_000)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(0.5)  # the cancellation reaches the service
    assert _wait_for_zygotes(svc, full) == full, "the pool stayed short after a cancelled call"
    svc.assert_healthy()


# --------------------------------------------------------------------------- small ones
def test_cpu_time_limit_is_applied_in_whole_seconds_rounded_up(mode_service: Service) -> None:
    result = mode_service.execute("while True:\n    pass\n", cpu_time_ms=1500, wall_time_ms=20_000)
    assert result.status == pb.EXECUTION_STATUS_TIMEOUT
    assert result.detail == "CPU time limit of 1500 ms reached (applied as 2 s: RLIMIT_CPU counts whole seconds)"
    # The soft limit (2 s) sends SIGXCPU: past 1.5 s, so the limit was not truncated to 1 s.
    # cpu_seconds is the kernel's measure (rusage), not rounded.
    assert 1.6 <= result.cpu_seconds < 3.5, result.cpu_seconds


def test_scratch_tmpfs_has_an_inode_cap(service: Service) -> None:
    """Zygote mode mounts each run's tmpfs itself, with nr_inodes (bubblewrap, which mounts them
    in single-use mode, has no option for it)."""
    program = """
import os
made = 0
try:
    for n in range(200_000):
        os.mkdir(f"/tmp/d{n}")
        made += 1
except OSError as error:
    print(made, error.errno)
"""
    result = service.execute(program, scratch_bytes=1 * MIB, wall_time_ms=30_000)
    assert result.status == pb.EXECUTION_STATUS_PASSED, result.stderr[-2000:]
    made, errno = (int(x) for x in result.stdout.split())
    assert errno == 28  # ENOSPC
    assert made < 256  # max(256, 1 MiB / 4 KiB) inodes, the tmpfs's root directory among them

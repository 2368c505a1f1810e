"""The threat model, each attack against the RUNNING gRPC service, judged from outside the sandbox
(host process scans, cgroup membership, canary files and processes, listeners, disk usage) —
never from what the program says about itself. The service must be healthy after each."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hyoka.v1 import sandbox_pb2 as pb

from .conftest import vm_rss, wait_gone

MIB = 1024 * 1024


def marker() -> str:
    return "hyokamark" + secrets.token_hex(6)


class Sampler:
    """Samples something about the host in a thread while a run is in flight."""

    def __init__(self, probe: Callable[[], object], interval: float = 0.02) -> None:
        self.samples: list[object] = []
        self._probe, self._interval = probe, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.samples.append(self._probe())
            time.sleep(self._interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(autouse=True, params=["default", "minimal"])
def _on_runtime(request: pytest.FixtureRequest, service) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Every attack runs on the server's default runtime (its package prefix mounted) and on
    `minimal` (the standard library only): each runtime has zygotes of its own."""
    service.runtime = "" if request.param == "default" else request.param
    try:
        yield
    finally:
        service.runtime = ""


@pytest.fixture(autouse=True)
def _healthy_after(_on_runtime: None, service) -> Iterator[None]:  # type: ignore[no-untyped-def]
    yield
    service.assert_healthy()
    assert not service.run_pids(), "processes left in per-run cgroups"


def _has_cgroups(stub) -> bool:  # type: ignore[no-untyped-def]
    return bool(stub.GetSandboxInfo(pb.GetSandboxInfoRequest(), timeout=10).capabilities.cgroup_pids)


# --------------------------------------------------------------------------- processes
@pytest.mark.slow
def test_fork_bomb_is_bounded_and_leaves_nothing(service, stub) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    program = f"""
import os, random
while True:
    try:
        pid = os.fork()
    except OSError:
        continue
    if pid == 0 and random.random() < 0.5:
        os.execv("/usr/bin/python3", ["python3", "-c", "import time; time.sleep(600)", "{mark}"])
"""
    with Sampler(lambda: len(service.processes_with(mark))) as sampler:
        result = service.execute(program, wall_time_ms=3000, max_processes=16)
    assert result.status == pb.EXECUTION_STATUS_TIMEOUT
    assert max(sampler.samples) > 0, "the bomb never ran: this test would not catch anything"
    assert max(sampler.samples) <= 16
    assert wait_gone(service, mark) == []


@pytest.mark.slow
def test_double_forked_daemon_does_not_outlive_its_run(service) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    program = f"""
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/usr/bin/python3", ["python3", "-c", "import time; time.sleep(600)", "{mark}"])
    os._exit(0)
time.sleep(1.0)  # long enough for the outside observer to see the daemon alive
"""
    with Sampler(lambda: len(service.processes_with(mark))) as sampler:
        result = service.execute(program)
    assert result.status == pb.EXECUTION_STATUS_PASSED
    assert max(sampler.samples) == 1, "the daemon never started: this test would not catch anything"
    assert wait_gone(service, mark) == []


def test_sleeping_forever_times_out(service) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    program = f"""
import subprocess, time
subprocess.Popen(["/usr/bin/python3", "-c", "import time; time.sleep(600)", "{mark}"])
time.sleep(10**6)
"""
    start = time.monotonic()
    result = service.execute(program, wall_time_ms=1000)
    assert time.monotonic() - start < 5
    assert result.status == pb.EXECUTION_STATUS_TIMEOUT
    assert 0.9 < result.duration_seconds < 3
    assert wait_gone(service, mark) == []


def test_cpu_spin_in_threads_hits_the_cpu_limit(service) -> None:  # type: ignore[no-untyped-def]
    program = """
import threading
def spin():
    while True:
        pass
for _ in range(3):
    threading.Thread(target=spin, daemon=True).start()
spin()
"""
    start = time.monotonic()
    result = service.execute(program, wall_time_ms=20_000, cpu_time_ms=1000)
    assert time.monotonic() - start < 10, "the CPU limit did not stop the spin before the wall limit"
    assert result.status == pb.EXECUTION_STATUS_TIMEOUT
    assert "CPU" in result.detail


# --------------------------------------------------------------------------- memory
def test_memory_bomb_in_one_process(service) -> None:  # type: ignore[no-untyped-def]
    result = service.execute("b = bytearray(4 * 1024**3)\nprint(len(b))", memory_bytes=256 * MIB)
    assert result.status == pb.EXECUTION_STATUS_MEMORY_LIMIT
    assert result.stdout == b""


@pytest.mark.slow
def test_many_children_each_under_the_limit_are_bounded_as_a_whole(service, stub) -> None:  # type: ignore[no-untyped-def]
    if not _has_cgroups(stub):
        pytest.skip("the host gives no per-run cgroups; only RLIMIT_AS bounds memory, per process")
    program = """
import os, time
kids = []
for _ in range(8):
    pid = os.fork()
    if pid == 0:
        block = bytearray(160 * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(3)
        os._exit(0)
    kids.append(pid)
failed = 0
for pid in kids:
    _, status = os.waitpid(pid, 0)
    failed += status != 0
raise SystemExit(1 if failed else 0)
"""

    def run_rss() -> int:
        total = 0
        for pid in service.run_pids():
            with contextlib.suppress(OSError):
                total += vm_rss(pid)
        return total

    with Sampler(run_rss, interval=0.01) as sampler:
        result = service.execute(program, memory_bytes=256 * MIB, wall_time_ms=20_000)
    assert result.status == pb.EXECUTION_STATUS_MEMORY_LIMIT
    peak = max(sampler.samples)
    assert peak > 100 * MIB, "the children never allocated: this test would not catch anything"
    # 8 x 160 MiB would be 1280 MiB; forked interpreters share pages that RSS counts per process.
    assert peak < (256 + 128) * MIB


# --------------------------------------------------------------------------- output
def test_hundred_megabytes_of_output_is_capped(service) -> None:  # type: ignore[no-untyped-def]
    rss_before = service.rss_bytes()
    program = "import sys\nchunk = b'x' * (1 << 20)\nfor _ in range(100):\n    sys.stdout.buffer.write(chunk)\n"
    result = service.execute(program, max_output_bytes=1 * MIB)
    assert result.status == pb.EXECUTION_STATUS_OUTPUT_LIMIT
    assert result.stdout_truncated
    assert len(result.stdout) == 1 * MIB
    assert service.rss_bytes() - rss_before < 64 * MIB


# --------------------------------------------------------------------------- filesystem
@pytest.mark.slow
def test_writes_outside_the_scratch_and_filling_every_writable_place(service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mark = marker()
    program = f"""
import os
MARK = "{mark}"
for root in ["/", "/usr", "/usr/local", "/bin", "/lib", "/dev", "/etc", "/root", "/home", "/var", "/run",
             "/proc", "/sys", "/work", "/tmp", "/dev/shm", {str(tmp_path)!r}, "/work/../..", "/opt",
             "/opt/hyoka-runtime", "/opt/hyoka-runtime/site-packages", "/opt/hyoka-runtime/site-packages/numpy"]:
    try:
        with open(os.path.join(root, MARK), "w") as f:
            f.write("x")
    except OSError:
        pass
for dirpath, dirnames, filenames in os.walk("/"):
    try:
        with open(os.path.join(dirpath, MARK + ".walk"), "w") as f:
            f.write("x")
    except OSError:
        pass
block = b"\\0" * (1 << 20)
for root in ["/work", "/tmp", "/dev/shm"]:
    for n in range(512):  # 512 MiB per place, far more than any scratch may hold
        try:
            with open(f"{{root}}/fill-{{n}}-{mark}", "wb") as f:
                for _ in range(8):
                    f.write(block)
        except OSError:
            break
"""
    used_before = shutil.disk_usage("/").used
    shm_before = shutil.disk_usage("/dev/shm").used
    result = service.execute(program, wall_time_ms=60_000, scratch_bytes=16 * MIB)
    assert result.status == pb.EXECUTION_STATUS_PASSED, result.stderr[-2000:]
    found = subprocess.run(
        ["find", "/", "-xdev", "-name", f"*{mark}*", "-not", "-path", "/proc/*"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    ).stdout.split()
    found += subprocess.run(
        ["find", "/dev/shm", "/tmp", "/run", "-name", f"*{mark}*"], capture_output=True, text=True, check=False
    ).stdout.split()
    assert found == []
    assert shutil.disk_usage("/").used - used_before < 256 * MIB
    assert shutil.disk_usage("/dev/shm").used - shm_before < 16 * MIB


# --------------------------------------------------------------------------- secrets
@pytest.fixture
def canaries(tmp_path: Path) -> Iterator[dict[str, object]]:
    """A world-readable secret file and two long-lived processes with secrets in their
    environment: one as the service's uid, one as the sandbox's host uid (65534)."""
    file_secret = "FILESECRET" + secrets.token_hex(8)
    env_secret = "ENVSECRET" + secrets.token_hex(8)
    canary_dir = tmp_path / "canary"
    canary_dir.mkdir(mode=0o755)
    tmp_path.chmod(0o755)
    (canary_dir / "secret.txt").write_text(file_secret)
    (canary_dir / "secret.txt").chmod(0o644)
    env = {"PATH": "/usr/bin:/bin", "CANARY": env_secret}
    same_uid = subprocess.Popen(["/usr/bin/sleep", "300"], env=env)
    extra = {"user": 65534, "group": 65534, "extra_groups": []} if os.geteuid() == 0 else {}
    sandbox_uid = subprocess.Popen(["/usr/bin/sleep", "300"], env=env, **extra)  # type: ignore[call-overload]
    yield {
        "file": str(canary_dir / "secret.txt"),
        "file_secret": file_secret,
        "env_secret": env_secret,
        "procs": [same_uid, sandbox_uid],
    }
    for proc in (same_uid, sandbox_uid):
        proc.kill()
        proc.wait()


def test_host_files_environment_and_other_processes_are_unreadable(service, canaries) -> None:  # type: ignore[no-untyped-def]
    pids = [p.pid for p in canaries["procs"]] + [service.proc.pid, 1, os.getpid()]
    program = f"""
import os
print(dict(os.environ))
paths = [{canaries["file"]!r}, "/etc/shadow", "/etc/passwd", "/root/.bash_history", "/proc/self/environ"]
paths += [f"/proc/{{pid}}/{{name}}" for pid in {pids!r} for name in ("environ", "cmdline", "mem", "maps")]
for path in paths:
    try:
        with open(path, "rb") as f:
            print(path, f.read(100000))
    except OSError as error:
        print(path, "->", error)
for dirpath, dirnames, filenames in os.walk("/"):
    if dirpath.startswith(("/usr", "/opt/hyoka-runtime")):  # public read-only trees: the image's, the runtime's
        continue
    for name in filenames:
        try:  # non-blocking: /dev/ptmx and the like would block a plain read forever
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY | os.O_NONBLOCK)
            print(dirpath, name, os.read(fd, 10000))
            os.close(fd)
        except OSError:
            pass
"""
    result = service.execute(program, max_output_bytes=8 * MIB, wall_time_ms=30_000)  # a busy machine walks slowly
    leaked = result.stdout + result.stderr
    for secret in (canaries["file_secret"], canaries["env_secret"], "HYOKA_TEST_SERVICE_SECRET", service.token):
        assert secret.encode() not in leaked, f"{secret} leaked"
    assert result.status == pb.EXECUTION_STATUS_PASSED, (result.status, result.detail, result.stderr[-2000:])
    assert all(p.poll() is None for p in canaries["procs"])


def test_killing_and_ptracing_other_processes_fails(service, canaries) -> None:  # type: ignore[no-untyped-def]
    pids = [p.pid for p in canaries["procs"]] + [service.proc.pid, os.getpid()]
    program = f"""
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
for pid in {pids!r} + list(range(1, 400)):
    libc.ptrace(16, pid, None, None)  # PTRACE_ATTACH
    for sig in (signal.SIGKILL, signal.SIGSTOP):
        try:
            os.kill(pid, sig)
        except OSError:
            pass
try:
    os.kill(-1, signal.SIGKILL)
except OSError:
    pass
"""
    service.execute(program)
    time.sleep(0.2)
    for proc in canaries["procs"]:
        assert proc.poll() is None, "a canary process was killed"
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state in ("S", "R"), f"canary state {state}"
        tracer = [x for x in Path(f"/proc/{proc.pid}/status").read_text().splitlines() if x.startswith("TracerPid")]
        assert tracer == ["TracerPid:\t0"]


# --------------------------------------------------------------------------- network
def _host_addresses() -> list[str]:
    addresses = []
    for _, name in socket.if_nameindex():
        if name == "lo":
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, contextlib.suppress(OSError):
            packed = fcntl.ioctl(sock.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
            addresses.append(socket.inet_ntoa(packed[20:24]))
    return addresses


def test_network_loopback_host_and_unix_sockets_are_unreachable(service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tcp = socket.socket()
    tcp.bind(("0.0.0.0", 0))
    tcp.listen()
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", 0))
    udp.setblocking(False)
    tmp_path.chmod(0o755)
    unix_path = str(tmp_path / "canary.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    Path(unix_path).chmod(0o777)
    unix.listen()
    unix.setblocking(False)
    abstract_name = "\0hyoka-canary-" + secrets.token_hex(4)
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(abstract_name)
    abstract.listen()
    abstract.setblocking(False)
    tcp_port, udp_port = tcp.getsockname()[1], udp.getsockname()[1]
    hosts = ["127.0.0.1", *_host_addresses()]
    program = f"""
import socket
for host in {hosts!r}:
    for port in ({tcp_port}, {service.port}):
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect((host, port))
            s.sendall(b"escaped")
        except OSError:
            pass
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.sendto(b"escaped", (host, {udp_port}))
    except OSError:
        pass
for address in ({unix_path!r}, {abstract_name!r}):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(address)
        s.sendall(b"escaped")
    except OSError:
        pass
for family in (socket.AF_PACKET, socket.AF_NETLINK):
    try:
        socket.socket(family, socket.SOCK_RAW)
    except OSError:
        pass
"""
    try:
        result = service.execute(program, wall_time_ms=20_000)
        assert result.status == pb.EXECUTION_STATUS_PASSED, result.stderr[-2000:]
        time.sleep(0.3)
        for listener in (tcp, unix, abstract):
            with pytest.raises(BlockingIOError):
                listener.accept()
        with pytest.raises(BlockingIOError):
            udp.recvfrom(100)
    finally:
        for sock in (tcp, udp, unix, abstract):
            sock.close()


# --------------------------------------------------------------------------- namespaces
def _namespaces(pid: int) -> tuple[str, str, int]:
    user = str(Path(f"/proc/{pid}/ns/user").readlink())
    mnt = str(Path(f"/proc/{pid}/ns/mnt").readlink())
    mounts = len(Path(f"/proc/{pid}/mountinfo").read_text().splitlines())
    return user, mnt, mounts


@pytest.mark.slow
def test_nested_user_namespaces_and_mounts_are_refused(service, stub) -> None:  # type: ignore[no-untyped-def]
    if not _has_cgroups(stub):
        pytest.skip("judging needs the run's cgroup to find its processes from outside")
    mark = marker()
    sleeper = ["/usr/bin/python3", "-c", "import time; time.sleep(2)", mark]
    program = f"""
import ctypes, subprocess, time
libc = ctypes.CDLL(None, use_errno=True)
libc.unshare(0x10000000)  # CLONE_NEWUSER
libc.unshare(0x00020000)  # CLONE_NEWNS
# clone(CLONE_NEWUSER | SIGCHLD) with no new stack: a fork whose child would sit in a new user
# namespace (x86_64 syscall 56), and clone3 (435), whose flags a seccomp filter cannot read.
args = (ctypes.c_long(0x10000000 | 17), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))
if libc.syscall(ctypes.c_long(56), *args) == 0:
    time.sleep(2)
clone3_args = (ctypes.c_uint64 * 11)(0x10000000, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0)
if libc.syscall(ctypes.c_long(435), clone3_args, ctypes.c_size_t(88)) == 0:
    time.sleep(2)
libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
libc.mount(b"none", b"/work", b"tmpfs", 0, None)
for prefix in (["/usr/bin/unshare", "-Urm"], ["/usr/bin/bwrap", "--unshare-user", "--bind", "/", "/"], []):
    try:
        subprocess.Popen(prefix + {sleeper!r})
    except OSError:
        pass
time.sleep(2)
"""

    def observe() -> list[tuple[str, str, int]]:
        seen = []
        for pid in service.run_pids():
            with contextlib.suppress(OSError):
                seen.append(_namespaces(pid))
        return seen

    baseline: list[list[tuple[str, str, int]]] = []
    with Sampler(lambda: baseline.append(observe())):
        service.execute("import time\ntime.sleep(1)")
    with Sampler(observe) as sampler:
        service.execute(program)
    quiet = {entry[2] for sample in baseline for entry in sample}
    seen = [entry for sample in sampler.samples for entry in sample]  # type: ignore[attr-defined]
    assert seen, "no run process observed: this test would not catch anything"
    assert len({(user, mnt) for user, mnt, _ in seen}) == 1, "a process of the run is in another namespace"
    assert {mounts for _, _, mounts in seen} <= quiet, "a mount was added inside the run"


def test_no_descriptor_of_the_service_reaches_the_sandbox(service, stub) -> None:  # type: ignore[no-untyped-def]
    if not _has_cgroups(stub):
        pytest.skip("judging needs the run's cgroup to find its processes from outside")

    def open_fds() -> dict[int, list[str]]:
        seen = {}
        for pid in service.run_pids():
            with contextlib.suppress(OSError):
                fd_dir = Path(f"/proc/{pid}/fd")
                seen[pid] = sorted(f"{e.name}->{e.readlink()}" for e in fd_dir.iterdir())
        return seen

    with Sampler(open_fds) as sampler:
        result = service.execute("import time\ntime.sleep(1.5)")
    assert result.status == pb.EXECUTION_STATUS_PASSED
    snapshots = [s for s in sampler.samples if s]
    assert snapshots, "no run process observed: this test would not catch anything"
    for snapshot in snapshots:
        for pid, fds in snapshot.items():  # type: ignore[attr-defined]
            numbers = {int(fd.split("->")[0]) for fd in fds}
            assert numbers <= {0, 1, 2}, f"pid {pid} holds {fds}"


def test_run_processes_have_no_capabilities_and_a_seccomp_filter(service, stub) -> None:  # type: ignore[no-untyped-def]
    if not _has_cgroups(stub):
        pytest.skip("judging needs the run's cgroup to find its processes from outside")

    def credentials() -> dict[int, dict[str, str]]:
        seen = {}
        for pid in service.run_pids():
            with contextlib.suppress(OSError, StopIteration):
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
                fields = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
                seen[pid] = {k: fields[k].strip() for k in ("Uid", "CapEff", "CapPrm", "NoNewPrivs", "Seccomp")}
        return seen

    with Sampler(credentials) as sampler:
        service.execute("import subprocess, time\nsubprocess.Popen(['/usr/bin/sleep', '1'])\ntime.sleep(1.2)")
    observed = [entry for sample in sampler.samples for entry in sample.values()]  # type: ignore[attr-defined]
    assert observed, "no run process observed: this test would not catch anything"
    for entry in observed:
        assert entry["CapEff"] == entry["CapPrm"] == "0000000000000000", entry
        assert entry["NoNewPrivs"] == "1" and entry["Seccomp"] == "2", entry
        assert entry["Uid"].split()[0] != "0", entry

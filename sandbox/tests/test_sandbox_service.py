"""The running service: programs that must work, every RPC, bad input, auth, queue, deadlines,
and the refusal to start without isolation."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from hyoka.rpc.errors import field_violations
from hyoka.v1 import sandbox_pb2 as pb
from hyoka.v1 import sandbox_pb2_grpc

from .conftest import wait_gone

MIB = 1024 * 1024


def _invalid(call, request, field: str) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        response = call(request, timeout=30)
        if not isinstance(response, pb.ExecuteResponse | pb.CheckCompletionsResponse | pb.GetSandboxInfoResponse):
            list(response)  # a stream fails on its first read
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value
    violations = field_violations(info.value)
    assert field in violations, violations
    return violations[field]


# --------------------------------------------------------------------------- programs that must work
def test_typical_humaneval_check_passes_and_a_wrong_one_fails(stub) -> None:  # type: ignore[no-untyped-def]
    reply = stub.CheckCompletions(
        pb.CheckCompletionsRequest(
            problem_id="HumanEval/2",
            completions=["    return number % 1.0\n", "    return number\n", "    import sys; sys.exit(0)\n"],
            k=[1, 2],
        ),
        timeout=60,
    )
    assert [r.passed for r in reply.results] == [True, False, False]  # SystemExit fails, as in bigcode
    assert reply.num_samples == 3 and reply.num_correct == 1
    assert [(p.k, round(p.value, 6)) for p in reply.pass_at_k] == [(1, round(1 / 3, 6)), (2, round(2 / 3, 6))]
    assert reply.signature.fields["timeout_s"] == "3"
    assert reply.results[1].execution.status == pb.EXECUTION_STATUS_FAILED
    assert b"AssertionError" in reply.results[1].execution.stderr


def test_japanese_utf8_program_and_jhumaneval_problem(stub, service) -> None:  # type: ignore[no-untyped-def]
    result = service.execute('s = "こんにちは、世界"\nprint(s, len(s))\nimport sys\nprint("日本語", file=sys.stderr)')
    assert result.status == pb.EXECUTION_STATUS_PASSED
    assert result.stdout.decode("utf-8") == "こんにちは、世界 8\n"
    assert result.stderr.decode("utf-8") == "日本語\n"
    problem = pb.CodeProblem(
        prompt=(
            'def 挨拶(名前: str) -> str:\n    """名前に「さん」を付けて返す。\n'
            '    >>> 挨拶("田中")\n    \'田中さん\'\n    """\n'
        ),
        test='def check(candidate):\n    assert candidate("田中") == "田中さん"\n    assert candidate("") == "さん"\n',
        entry_point="挨拶",
    )
    reply = stub.CheckCompletions(
        pb.CheckCompletionsRequest(problem=problem, completions=['    return 名前 + "さん"\n', "    return 名前\n"]),
        timeout=60,
    )
    assert [r.passed for r in reply.results] == [True, False]
    assert reply.problem_id == ""


def test_multiprocessing_pool_with_two_workers(service) -> None:  # type: ignore[no-untyped-def]
    program = """
from multiprocessing import Pool

def square(x):
    return x * x

if __name__ == "__main__":
    with Pool(2) as pool:
        print(sum(pool.map(square, range(100))))
"""
    result = service.execute(program)
    assert result.status == pb.EXECUTION_STATUS_PASSED, result.stderr.decode()
    assert result.stdout == b"328350\n"


def test_nothing_of_a_run_reaches_a_later_run(service) -> None:  # type: ignore[no-untyped-def]
    # Two writers then two readers: with two workers (zygotes) each reader follows a writer on
    # the same one.
    for n in range(2):
        writer = service.execute(
            f"for d in ('/work', '/tmp', '/dev/shm'):\n    open(d + '/left-{n}.txt', 'w').write('x')\n"
            "import os\nos.environ['LEFT'] = 'x'\nimport sys\nsys.modules['json'] = None\n"
        )
        assert writer.status == pb.EXECUTION_STATUS_PASSED, writer.stderr
    for _ in range(2):
        reader = service.execute(
            "import os, json\nprint(sorted(os.listdir('/work')), os.listdir('/tmp'), os.listdir('/dev/shm'),"
            " 'LEFT' in os.environ)"
        )
        assert reader.stdout == b"['main.py'] [] [] False\n", reader.stderr


def test_statuses_exit_codes_stdin_and_file_size(service, stub) -> None:  # type: ignore[no-untyped-def]
    assert service.execute("raise SystemExit(3)").exit_code == 3
    failed = service.execute("1/0")
    assert failed.status == pb.EXECUTION_STATUS_FAILED and b"ZeroDivisionError" in failed.stderr
    syntax = service.execute("def (:")
    assert syntax.status == pb.EXECUTION_STATUS_FAILED and b"SyntaxError" in syntax.stderr
    echoed = stub.Execute(
        pb.ExecuteRequest(program=b"import sys; print(sys.stdin.read()[::-1])", stdin=b"abc"), timeout=30
    )
    assert echoed.result.stdout == b"cba\n"
    big = service.execute("open('f','wb').write(b'x' * (2 << 20))", max_file_bytes=1 * MIB)
    assert big.status == pb.EXECUTION_STATUS_FAILED and b"File too large" in big.stderr


def test_execute_batch_streams_results_as_they_finish(stub) -> None:  # type: ignore[no-untyped-def]
    programs = [pb.ExecuteRequest(program=b"import time; time.sleep(1.5); print('slow')")]
    programs += [pb.ExecuteRequest(program=f"print({i})".encode()) for i in range(1, 5)]
    start = time.monotonic()
    arrivals = []
    for reply in stub.ExecuteBatch(pb.ExecuteBatchRequest(programs=programs), timeout=60):
        arrivals.append((reply.index, time.monotonic() - start))
        expected = b"slow\n" if reply.index == 0 else f"{reply.index}\n".encode()
        assert reply.result.stdout == expected
    assert sorted(i for i, _ in arrivals) == [0, 1, 2, 3, 4]
    assert arrivals[-1][0] == 0, "the slow program should arrive last"
    assert arrivals[0][1] < 1.0, "fast results must not wait for the slow one"


def test_sandbox_info(stub) -> None:  # type: ignore[no-untyped-def]
    info = stub.GetSandboxInfo(pb.GetSandboxInfoRequest(), timeout=10)
    assert info.capabilities.user_namespaces and info.capabilities.seccomp
    assert info.isolation.startswith("bubblewrap-") and "+seccomp" in info.isolation
    assert not info.insecure
    assert info.workers == 2
    assert {s.name: s.num_problems for s in info.problem_sets} == {"HumanEval": 164, "JHumanEval": 164}
    assert {v.name for v in info.versions} >= {"hyoka-sandbox", "python-sandboxed", "bubblewrap", "grpcio"}
    assert info.default_limits.wall_time_ms > 0 and info.max_limits.memory_bytes >= info.default_limits.memory_bytes


# --------------------------------------------------------------------------- bad input
def test_bad_input_names_the_field(stub) -> None:  # type: ignore[no-untyped-def]
    assert "empty" in _invalid(stub.Execute, pb.ExecuteRequest(program=b""), "program")
    assert "maximum" in _invalid(stub.Execute, pb.ExecuteRequest(program=b"#" * (2 * MIB)), "program")
    assert "UTF-8" in _invalid(stub.Execute, pb.ExecuteRequest(program=b"print('\xff\xfe')"), "program")
    negative = pb.ExecuteRequest(program=b"pass", limits=pb.ResourceLimits(wall_time_ms=-1))
    assert "negative" in _invalid(stub.Execute, negative, "limits.wall_time_ms")
    above = pb.ExecuteRequest(program=b"pass", limits=pb.ResourceLimits(memory_bytes=1 << 40))
    assert "maximum" in _invalid(stub.Execute, above, "limits.memory_bytes")
    batch = pb.ExecuteBatchRequest(programs=[pb.ExecuteRequest(program=b"pass"), pb.ExecuteRequest(program=b"")])
    _invalid(stub.ExecuteBatch, batch, "programs[1].program")
    _invalid(stub.ExecuteBatch, pb.ExecuteBatchRequest(), "programs")
    shared = pb.ExecuteBatchRequest(
        programs=[pb.ExecuteRequest(program=b"pass")], limits=pb.ResourceLimits(max_processes=-5)
    )
    _invalid(stub.ExecuteBatch, shared, "limits.max_processes")


def test_bad_check_completions_input_names_the_field(stub) -> None:  # type: ignore[no-untyped-def]
    check = stub.CheckCompletions
    assert "unknown" in _invalid(
        check, pb.CheckCompletionsRequest(problem_id="HumanEval/999", completions=[""]), "problem_id"
    )
    assert "n=2" in _invalid(
        check, pb.CheckCompletionsRequest(problem_id="HumanEval/0", completions=["", ""], k=[1, 5]), "k[1]"
    )
    _invalid(check, pb.CheckCompletionsRequest(problem_id="HumanEval/0", completions=[]), "completions")
    _invalid(check, pb.CheckCompletionsRequest(completions=["x"]), "problem")
    _invalid(
        check,
        pb.CheckCompletionsRequest(problem=pb.CodeProblem(prompt="x", test="y"), completions=[""]),
        "problem.entry_point",
    )
    limits = pb.ResourceLimits(cpu_time_ms=10**9)
    _invalid(
        check,
        pb.CheckCompletionsRequest(problem_id="HumanEval/0", completions=[""], limits=limits),
        "limits.cpu_time_ms",
    )


def test_the_runner_is_a_read_only_file_not_a_command_line(service) -> None:  # type: ignore[no-untyped-def]
    """The in-sandbox runner (inside.py) is bind-mounted read-only and run as a script: no
    process's command line carries its source."""
    runners = service.processes_with("/opt/hyoka-runner/inside.py")
    assert runners, "no zygote runs the mounted runner"
    for pid in runners:
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            assert len(cmdline) < 4096 and b"def main" not in cmdline, cmdline[:200]
    program = (
        "import os\nprint(open('/opt/hyoka-runner/inside.py').read().count('def main'))\n"
        "try:\n    open('/opt/hyoka-runner/inside.py', 'a')\nexcept OSError as e:\n    print(e.errno)\n"
    )
    result = service.execute(program)
    assert result.status == pb.EXECUTION_STATUS_PASSED, (result.detail, result.stderr)
    found, errno = result.stdout.split()
    assert found == b"1" and errno in (b"13", b"30")  # readable; not writable (EACCES or EROFS)


# --------------------------------------------------------------------------- transport
def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(entry.decode().partition("=")[::2] for entry in raw.split(b"\0") if entry)


def test_the_token_is_not_in_the_services_initial_environment(service) -> None:  # type: ignore[no-untyped-def]
    """os.environ.pop would leave it in /proc/PID/environ (the environment the process started
    with): the service re-executes itself without it, and auth still works."""
    raw = Path(f"/proc/{service.proc.pid}/environ").read_bytes()
    assert service.token.encode() not in raw
    environ = _environ(service.proc.pid)
    assert "HYOKA_SANDBOX_TOKEN" not in environ
    assert environ.get("HYOKA_CANARY", "").startswith("HYOKA_TEST_SERVICE_SECRET")  # the rest is kept
    with service.channel(token="") as channel, pytest.raises(grpc.RpcError) as info:
        sandbox_pb2_grpc.SandboxServiceStub(channel).GetSandboxInfo(pb.GetSandboxInfoRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    reply = service.stub().Execute(pb.ExecuteRequest(program=b"print('ok')"), timeout=30)
    assert reply.result.status == pb.EXECUTION_STATUS_PASSED and reply.result.stdout == b"ok\n"


def test_the_token_can_come_from_a_file(service_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    token_file = tmp_path / "token"
    token_file.write_text("from-the-file-" + "x" * 16 + "\n")
    svc = service_factory("--auth-token-file", str(token_file), "--workers", "1")
    raw = Path(f"/proc/{svc.proc.pid}/environ").read_bytes()
    assert b"from-the-file-" not in raw and svc.token.encode() not in raw
    with svc.channel(token=svc.token) as channel, pytest.raises(grpc.RpcError) as info:  # the env's: the file wins
        sandbox_pb2_grpc.SandboxServiceStub(channel).GetSandboxInfo(pb.GetSandboxInfoRequest(), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with svc.channel(token="from-the-file-" + "x" * 16) as channel:
        reply = sandbox_pb2_grpc.SandboxServiceStub(channel).Execute(pb.ExecuteRequest(program=b"pass"), timeout=30)
    assert reply.result.status == pb.EXECUTION_STATUS_PASSED


def test_a_reply_with_16_mib_on_each_stream_reaches_hyokas_client(service) -> None:  # type: ignore[no-untyped-def]
    """max_output_bytes may be 16 MiB, so an ExecuteResponse can be about 33 MB: beyond a default
    gRPC client's 4 MiB, within hyoka's clients' receive limit (ChannelConfig)."""
    program = (
        b"import sys\nblock = b'x' * (16 * 1024 * 1024)\n"
        b"sys.stdout.buffer.write(block)\nsys.stdout.flush()\nsys.stderr.buffer.write(block)\nsys.stderr.flush()\n"
    )
    limits = pb.ResourceLimits(max_output_bytes=16 * MIB, memory_bytes=512 * MIB, wall_time_ms=30_000)
    with service.channel() as channel:
        reply = sandbox_pb2_grpc.SandboxServiceStub(channel).Execute(
            pb.ExecuteRequest(program=program, limits=limits), timeout=60
        )
    result = reply.result
    assert result.status == pb.EXECUTION_STATUS_PASSED, (result.status, result.detail)
    assert len(result.stdout) == len(result.stderr) == 16 * MIB
    assert not result.stdout_truncated and not result.stderr_truncated
    assert reply.ByteSize() > 32 * MIB


def test_auth_is_required_but_health_is_open(service) -> None:  # type: ignore[no-untyped-def]
    with service.channel(token="") as channel:
        with pytest.raises(grpc.RpcError) as info:
            sandbox_pb2_grpc.SandboxServiceStub(channel).GetSandboxInfo(pb.GetSandboxInfoRequest(), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with service.channel(token="wrong") as channel, pytest.raises(grpc.RpcError) as info:
        sandbox_pb2_grpc.SandboxServiceStub(channel).Execute(pb.ExecuteRequest(program=b"pass"), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert service.healthy()


def test_reflection_lists_the_service(service) -> None:  # type: ignore[no-untyped-def]
    with service.channel() as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert "hyoka.v1.SandboxService" in names


def test_deadline_cancels_the_run_and_kills_it(service) -> None:  # type: ignore[no-untyped-def]
    mark = "hyokadeadline" + str(time.time_ns())
    program = (
        "import subprocess, time\n"
        f'subprocess.Popen(["/usr/bin/python3", "-c", "import time; time.sleep(600)", "{mark}"])\n'
        "time.sleep(30)\n"
    )
    with pytest.raises(grpc.RpcError) as info:
        service.execute(program, timeout=1.5, wall_time_ms=30_000)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert wait_gone(service, mark, seconds=5) == []
    service.assert_healthy()


@pytest.mark.slow
def test_full_queue_answers_resource_exhausted(service_factory) -> None:  # type: ignore[no-untyped-def]
    small = service_factory("--workers", "1", "--max-queued-runs", "2")
    stub = small.stub()
    slow = pb.ExecuteRequest(program=b"import time; time.sleep(2)")
    with pytest.raises(grpc.RpcError) as info:
        list(stub.ExecuteBatch(pb.ExecuteBatchRequest(programs=[slow] * 4), timeout=30))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    futures = [stub.Execute.future(slow, timeout=30) for _ in range(3)]  # 1 running + 2 queued: full
    time.sleep(0.5)
    with pytest.raises(grpc.RpcError) as info:
        stub.Execute(slow, timeout=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert all(f.result().result.status == pb.EXECUTION_STATUS_PASSED for f in futures)
    assert stub.Execute(pb.ExecuteRequest(program=b"print(1)"), timeout=30).result.stdout == b"1\n"
    # A batch abandoned at its deadline gives its queue places back.
    with pytest.raises(grpc.RpcError) as info:
        list(stub.ExecuteBatch(pb.ExecuteBatchRequest(programs=[slow] * 3), timeout=0.5))
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(0.5)
    quick = [stub.Execute.future(pb.ExecuteRequest(program=b"print(2)"), timeout=30) for _ in range(3)]
    assert [f.result().result.stdout for f in quick] == [b"2\n"] * 3


def test_refuses_to_start_without_isolation() -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "hyoka.sandbox", "serve", "--port", "0", "--bwrap", "/nonexistent/bwrap"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert "refusing to start" in refused.stderr and "user namespaces" in refused.stderr


def test_refuses_to_start_when_programs_cannot_run() -> None:
    """A runtime that lets the host probes through but breaks real runs (as a container's seccomp
    profile denying sethostname did): the start-up self-test must catch it."""
    bwrap = shutil.which("bwrap")
    assert bwrap, "bubblewrap is not installed"
    # the service probes as its sandbox user: the wrapper must be reachable by anyone
    with tempfile.TemporaryDirectory() as where:
        Path(where).chmod(0o755)
        _refused_with_wrapper(Path(where) / "bwrap", bwrap)


def _refused_with_wrapper(wrapper: Path, bwrap: str) -> None:
    # the probes run /usr/bin/true; every real sandbox fails as bubblewrap would
    wrapper.write_text(
        "#!/bin/sh\n"
        "for last; do :; done\n"
        f'if [ "$last" = /usr/bin/true ] || [ "$1" = --version ]; then exec {bwrap} "$@"; fi\n'
        'echo "bwrap: Can\'t set hostname to sandbox: Operation not permitted" >&2\n'
        "exit 1\n"
    )
    wrapper.chmod(0o755)
    refused = subprocess.run(
        [sys.executable, "-m", "hyoka.sandbox", "serve", "--port", "0", "--bwrap", str(wrapper)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 1, refused.stderr[-2000:]
    assert "refusing to start: a trivial program did not run in the sandbox" in refused.stderr


def test_insecure_mode_is_explicit_and_loud(service_factory) -> None:  # type: ignore[no-untyped-def]
    insecure = service_factory("--bwrap", "/nonexistent/bwrap", "--insecure")
    info = insecure.stub().GetSandboxInfo(pb.GetSandboxInfoRequest(), timeout=10)
    assert info.insecure and info.isolation == "insecure-none"
    assert not info.capabilities.user_namespaces
    assert "INSECURE MODE" in insecure.log_path.read_text()
    assert insecure.execute("print('unsafe but works')").stdout == b"unsafe but works\n"


def test_bad_cli_option_is_one_line_and_exit_code_2() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "hyoka.sandbox", "serve", "--mode", "bogus"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["--mode: 'bogus' is not one of zygote, single-use"]

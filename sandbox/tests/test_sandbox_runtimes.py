"""Runtimes and the harness's check semantics, through the running service: the default runtime
(`bigcode-v202407`) has the packages of bigcode-evaluation-harness's evaluation image, `minimal`
the standard library only; the prefix is read-only; every result and signature names its runtime;
CheckCompletions runs programs as the harness's execute.py does (output swallowed, input reads
fail, reliability_guard, SystemExit fails)."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from hyoka.rpc.errors import field_violations
from hyoka.sandbox.runtimes import (
    DEFAULT_RUNTIME,
    MINIMAL,
    SANDBOX_ROOT,
    SANDBOX_SITE,
    build_runtime,
    default_runtimes_dir,
    read_lock_meta,
    tree_sha256,
)
from hyoka.v1 import sandbox_pb2 as pb

from .conftest import DATA_DIR, REPO

LOCK = REPO / "requirements" / "sandbox-runtime-bigcode.txt"
#: Distribution -> the module a completion imports, for every package of the default runtime.
IMPORTS = {
    "certifi": "certifi",
    "charset-normalizer": "charset_normalizer",
    "filelock": "filelock",
    "idna": "idna",
    "jinja2": "jinja2",
    "markupsafe": "markupsafe",
    "mpmath": "mpmath",
    "networkx": "networkx",
    "numpy": "numpy",
    "packaging": "packaging",
    "pandas": "pandas",
    "python-dateutil": "dateutil",
    "pytz": "pytz",
    "pyyaml": "yaml",
    "regex": "regex",
    "requests": "requests",
    "six": "six",
    "sympy": "sympy",
    "tqdm": "tqdm",
    "typing-extensions": "typing_extensions",
    "tzdata": "tzdata",
    "urllib3": "urllib3",
}

#: Submodules a completion commonly imports.
SUBMODULES = [
    "numpy.linalg", "numpy.random", "numpy.fft", "numpy.polynomial", "pandas.api.types", "sympy.ntheory",
    "sympy.combinatorics", "networkx.algorithms", "dateutil.parser", "dateutil.relativedelta", "dateutil.tz",
    "packaging.version", "urllib3.util", "jinja2.sandbox", "tqdm.auto", "requests.adapters", "mpmath.libmp",
]  # fmt: skip


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@pytest.fixture(scope="module")
def info(stub) -> pb.GetSandboxInfoResponse:  # type: ignore[no-untyped-def]
    reply: pb.GetSandboxInfoResponse = stub.GetSandboxInfo(pb.GetSandboxInfoRequest(), timeout=10)
    return reply


@pytest.fixture(scope="module")
def humaneval_0() -> dict[str, str]:
    with gzip.open(DATA_DIR / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as lines:
        row: dict[str, str] = json.loads(next(lines))
    assert row["task_id"] == "HumanEval/0"
    return row


def _check(stub, completions: list[str], runtime: str = "") -> pb.CheckCompletionsResponse:  # type: ignore[no-untyped-def]
    request = pb.CheckCompletionsRequest(problem_id="HumanEval/0", completions=completions, runtime=runtime)
    reply: pb.CheckCompletionsResponse = stub.CheckCompletions(request, timeout=120)
    return reply


# --------------------------------------------------------------------------- what is offered
def test_info_lists_the_runtimes_with_packages_and_checksums(info) -> None:  # type: ignore[no-untyped-def]
    assert info.default_runtime == DEFAULT_RUNTIME
    by_name = {r.name: r for r in info.runtimes}
    assert info.runtimes[0].name == DEFAULT_RUNTIME and set(by_name) >= {DEFAULT_RUNTIME, MINIMAL}
    bigcode, minimal = by_name[DEFAULT_RUNTIME], by_name[MINIMAL]
    packages = {_canonical(p.name): p.version for p in bigcode.packages}
    assert set(packages) == set(IMPORTS), "the lock changed: update IMPORTS (and the note on the issue)"
    assert packages["numpy"] == "1.26.4" and packages["pandas"] == "2.2.2" and packages["sympy"] == "1.13.0"
    assert "scipy" not in packages  # not in the harness's environment
    assert bigcode.python_version.startswith("3.") and "3.10" in bigcode.deviation  # the stated deviation
    assert "0261c52" in bigcode.source and "v202407" in bigcode.source
    assert bigcode.lock_sha256 == hashlib.sha256(LOCK.read_bytes()).hexdigest()
    # The checksum is of the prefix as it is on the host, and what the manifest recorded at build.
    root = default_runtimes_dir() / DEFAULT_RUNTIME
    assert bigcode.sha256 == tree_sha256(root / "site-packages")
    assert bigcode.sha256 == json.loads((root / "runtime.json").read_text())["sha256"]
    assert not minimal.packages and minimal.sha256 == hashlib.sha256(b"").hexdigest()
    assert not [w for w in info.warnings if "runtime" in w]


def test_tree_checksum_is_the_documented_shell_pipeline(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.py").write_text("z = 1\n")
    (tmp_path / "a.py").write_text("a = 1\n")
    (tmp_path / "B.txt").write_bytes(b"\x00\xff")
    pipeline = "find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum"
    shell = subprocess.run(["sh", "-c", pipeline], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert tree_sha256(tmp_path) == shell.stdout.split()[0]


def test_building_again_is_quick_when_up_to_date() -> None:
    root = default_runtimes_dir()
    python = json.loads((root / DEFAULT_RUNTIME / "runtime.json").read_text())["python"]
    said: list[str] = []
    assert build_runtime(LOCK, root, python, say=said.append) == root / DEFAULT_RUNTIME
    assert said == [f"runtime {DEFAULT_RUNTIME} is up to date in {root / DEFAULT_RUNTIME}"]
    assert read_lock_meta(LOCK)["name"] == DEFAULT_RUNTIME


# --------------------------------------------------------------------------- running on a runtime
def test_every_package_of_the_default_runtime_imports(service, info) -> None:  # type: ignore[no-untyped-def]
    program = "import importlib, sys\n"
    program += f"for name in {sorted(IMPORTS.values())!r}:\n    importlib.import_module(name)\n"
    program += (
        "import numpy, pandas, sympy, networkx\n"
        "frame = pandas.DataFrame({'x': numpy.arange(4)})\n"
        "assert int(frame.x.sum()) == 6 and sympy.isprime(97) and networkx.path_graph(3).number_of_edges() == 2\n"
        f"assert all(not p.startswith('{SANDBOX_ROOT}') for p in sys.path[:-1]) and sys.path[-1] == '{SANDBOX_SITE}'\n"
        "print(numpy.__version__, pandas.__version__, sympy.__version__)\n"
    )
    result = service.execute(program, runtime="")
    assert result.status == pb.EXECUTION_STATUS_PASSED, result.stderr[-2000:]
    assert result.stdout == b"1.26.4 2.2.2 1.13.0\n"
    assert (result.runtime, result.runtime_sha256) == (DEFAULT_RUNTIME, info.runtimes[0].sha256)
    bare = service.execute("import numpy", runtime=MINIMAL)
    assert bare.status == pb.EXECUTION_STATUS_FAILED and b"No module named 'numpy'" in bare.stderr
    assert (bare.runtime, bare.runtime_sha256) == (MINIMAL, hashlib.sha256(b"").hexdigest())
    for runtime in ("", MINIMAL):  # outside the harness's environment on both
        scipy = service.execute("import scipy", runtime=runtime)
        assert scipy.status == pb.EXECUTION_STATUS_FAILED and b"No module named 'scipy'" in scipy.stderr


def test_completions_importing_numpy_and_pandas_pass_the_check(stub) -> None:  # type: ignore[no-untyped-def]
    problem = pb.CodeProblem(
        prompt="import numpy as np\nimport pandas as pd\n\n\ndef mean_of(xs: list) -> float:\n",
        test="def check(candidate):\n    assert candidate([1, 2, 3]) == 2.0\n    assert candidate([4]) == 4.0\n",
        entry_point="mean_of",
    )
    # Every package imports under the harness's reliability_guard too (there, the harness's own
    # process had imported most of them before the guard).
    everything = [*IMPORTS.values(), *SUBMODULES]
    completions = [
        "    return float(np.mean(xs))\n",
        "    return float(pd.Series(xs).mean())\n",
        f"    import importlib\n    for m in {everything!r}:\n        importlib.import_module(m)\n"
        "    import certifi, sympy\n    assert certifi.where() and sympy.factorint(12) == {2: 2, 3: 1}\n"
        "    return sum(xs) / len(xs)\n",
    ]
    reply = stub.CheckCompletions(pb.CheckCompletionsRequest(problem=problem, completions=completions), timeout=120)
    assert [r.passed for r in reply.results] == [True] * 3, [r.execution.stderr[-800:] for r in reply.results]
    bare = stub.CheckCompletions(
        pb.CheckCompletionsRequest(problem=problem, completions=completions, runtime=MINIMAL), timeout=120
    )
    assert [r.passed for r in bare.results] == [False] * 3
    assert b"No module named 'numpy'" in bare.results[0].execution.stderr


def test_the_prefix_cannot_be_changed_by_a_run(service, info) -> None:  # type: ignore[no-untyped-def]
    target = f"{SANDBOX_SITE}/six.py"
    attempt = f"""
import os, shutil
tries = [
    lambda: open({target!r}, "a").write("x = 1\\n"),
    lambda: open("{SANDBOX_SITE}/new_module.py", "w").write("x = 1\\n"),
    lambda: os.unlink({target!r}),
    lambda: os.rename({target!r}, "/tmp/six.py"),
    lambda: os.chmod({target!r}, 0o777),
    lambda: os.mkdir("{SANDBOX_SITE}/numpy/new"),
    lambda: shutil.rmtree("{SANDBOX_SITE}/numpy"),
    lambda: open("{SANDBOX_ROOT}/runtime.json", "w").write("{{}}"),
    lambda: os.utime({target!r}),
]
changed = 0
for attempt in tries:
    try:
        attempt()
        changed += 1
    except OSError:
        pass
raise SystemExit(changed)
"""
    result = service.execute(attempt, runtime="")
    assert result.status == pb.EXECUTION_STATUS_PASSED, (result.exit_code, result.stderr[-2000:])
    host = default_runtimes_dir() / DEFAULT_RUNTIME / "site-packages"
    expected = hashlib.sha256((host / "six.py").read_bytes()).hexdigest()
    after = service.execute(
        "import hashlib, os, numpy\n"
        f"print(hashlib.sha256(open({target!r}, 'rb').read()).hexdigest(), "
        f"os.path.exists('{SANDBOX_SITE}/new_module.py'))",
        runtime="",
    )
    assert after.stdout.decode().split() == [expected, "False"], after.stderr[-2000:]
    assert tree_sha256(host) == info.runtimes[0].sha256


def test_unknown_runtime_is_invalid_argument_listing_the_available(stub) -> None:  # type: ignore[no-untyped-def]
    ok, bad = pb.ExecuteRequest(program=b"pass"), pb.ExecuteRequest(program=b"pass", runtime="x")
    calls = [
        (stub.Execute, pb.ExecuteRequest(program=b"pass", runtime="python2"), "runtime"),
        (stub.CheckCompletions, pb.CheckCompletionsRequest(problem_id="HumanEval/0", runtime="x"), "runtime"),
        (stub.ExecuteBatch, pb.ExecuteBatchRequest(programs=[ok], runtime="x"), "runtime"),
        (stub.ExecuteBatch, pb.ExecuteBatchRequest(programs=[ok, bad]), "programs[1].runtime"),
    ]  # fmt: skip
    for call, request, field in calls:
        with pytest.raises(grpc.RpcError) as raised:
            reply = call(request, timeout=30)
            if isinstance(request, pb.ExecuteBatchRequest):
                list(reply)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        message = field_violations(raised.value)[field]
        assert f"available: {DEFAULT_RUNTIME}, {MINIMAL}" in message, message


def test_batch_runs_each_program_on_its_runtime(stub) -> None:  # type: ignore[no-untyped-def]
    probe = b"import sys; print(sys.path[-1])"
    programs = [pb.ExecuteRequest(program=probe), pb.ExecuteRequest(program=probe, runtime=DEFAULT_RUNTIME)]
    replies = sorted(stub.ExecuteBatch(pb.ExecuteBatchRequest(programs=programs, runtime=MINIMAL), timeout=60),
                     key=lambda r: r.index)  # fmt: skip
    assert [r.result.runtime for r in replies] == [MINIMAL, DEFAULT_RUNTIME]
    assert replies[1].result.stdout == f"{SANDBOX_SITE}\n".encode()
    assert replies[0].result.stdout != replies[1].result.stdout


# --------------------------------------------------------------------------- the harness's check semantics
def test_printing_completions_pass_as_in_the_harness(stub, humaneval_0) -> None:  # type: ignore[no-untyped-def]
    canonical = humaneval_0["canonical_solution"]
    completions = [
        "    print('x' * (5 << 20))\n" + canonical,
        "    for _ in range(20000):\n        print('y' * 100)\n" + canonical,
        "    import sys\n    print('to stderr', file=sys.stderr)\n" + canonical,
    ]
    for runtime in (DEFAULT_RUNTIME, MINIMAL):
        reply = _check(stub, completions, runtime)
        assert [r.passed for r in reply.results] == [True, True, True], [r.execution.detail for r in reply.results]
        big, many, err = (r.execution for r in reply.results)
        assert big.stdout == b"x" * 16384 and big.stdout_truncated  # an excerpt, not the 5 MiB
        assert many.stdout.startswith(b"y" * 100 + b"\n") and len(many.stdout) == 16384 and many.stdout_truncated
        assert set(err.stdout.splitlines()) == {b"to stderr"} and not err.stderr  # one stream, as in swallow_io
        assert reply.signature.fields["runtime"] == runtime
    # Execute keeps its cap: the same volume there is OUTPUT_LIMIT.
    script = stub.Execute(pb.ExecuteRequest(program=b"print('x' * (5 << 20))"), timeout=60).result
    assert script.status == pb.EXECUTION_STATUS_OUTPUT_LIMIT


def test_output_written_below_python_is_dropped_not_fatal(stub, humaneval_0) -> None:  # type: ignore[no-untyped-def]
    completion = "    import os\n    for _ in range(64):\n        os.write(1, b'z' * 65536)\n"
    reply = _check(stub, [completion + humaneval_0["canonical_solution"]])
    result = reply.results[0]
    assert result.passed, result.execution.detail
    assert result.execution.stdout_truncated and len(result.execution.stdout) == 16384


def test_input_exit_and_guarded_calls_fail_as_in_the_harness(stub, service, humaneval_0) -> None:  # type: ignore[no-untyped-def]
    canonical = humaneval_0["canonical_solution"]
    failing = [
        "    input()\n",
        "    import sys\n    sys.stdin.read()\n",
        "    import sys\n    sys.stdin.readline()\n",
        "    exit()\n",
        "    import sys\n    sys.exit(0)\n",
        "    import os\n    os._exit(0)\n",
        "    import os\n    os.getcwd()\n",
        "    import subprocess\n    subprocess.run(['true'])\n",
        "    import psutil\n",
        "    import resource\n",
    ]
    reply = _check(stub, [f + canonical for f in failing] + [canonical])
    assert [r.passed for r in reply.results] == [False] * len(failing) + [True]
    assert all(r.execution.status == pb.EXECUTION_STATUS_FAILED for r in reply.results[:-1])
    stderr = [r.execution.stderr for r in reply.results]
    assert b"OSError" in stderr[0] and b"OSError" in stderr[1] and b"OSError" in stderr[2]
    assert b"'NoneType' object is not callable" in stderr[3] and b"SystemExit" in stderr[4]
    assert "os._exit" in reply.results[5].execution.detail
    assert b"'NoneType' object is not callable" in stderr[6] and b"'NoneType' object is not callable" in stderr[7]
    assert b"ModuleNotFoundError" in stderr[8] and b"ModuleNotFoundError" in stderr[9]
    # Nothing of the guard reaches a later run, on the same zygotes.
    for _ in range(3):
        after = service.execute("import os, resource, subprocess\nprint(os.getcwd(), subprocess.Popen is not None)")
        assert after.stdout == b"/work True\n", after.stderr


def test_default_runtime_is_configurable(service_factory) -> None:  # type: ignore[no-untyped-def]
    other = service_factory("--default-runtime", MINIMAL)
    info = other.stub().GetSandboxInfo(pb.GetSandboxInfoRequest(), timeout=10)
    assert info.default_runtime == MINIMAL and info.runtimes[0].name == MINIMAL
    assert other.execute("import numpy").status == pb.EXECUTION_STATUS_FAILED
    assert other.execute("import numpy", runtime=DEFAULT_RUNTIME).status == pb.EXECUTION_STATUS_PASSED


def test_refuses_to_start_without_its_default_runtime(tmp_path: Path) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "hyoka.sandbox", "serve", "--port", "0", "--runtimes-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert f"the default runtime '{DEFAULT_RUNTIME}' is not built in {tmp_path}" in refused.stderr
    assert "build-runtime" in refused.stderr

"""hyoka's three images, built with podman and run as real containers: each service answers a real
gRPC client on a port published on 127.0.0.1, as the same code does in-process on the host.

The sandbox runs twice, in podman terms of sandbox/POD.md: uid 10001, every capability dropped,
no_new_privs, a read-only root, nothing privileged; once with the runtime's defaults as they are
(podman's seccomp profile, /proc/sys masked), where the service does without a hostname and
bubblewrap's --disable-userns, and once with POD.md's profile (podman's default plus
sethostname/setdomainname) and /proc/sys writable, where it uses both."""

from __future__ import annotations

import csv
import gzip
import json
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hyoka.metrics import Item, score
from hyoka.metrics.synthetic import generate_pairs
from hyoka.metrics.wire import items_to_proto
from hyoka.rpc.client import ChannelConfig, sync_channel
from hyoka.v1 import analysis_pb2, analysis_pb2_grpc, metrics_pb2, metrics_pb2_grpc, sandbox_pb2, sandbox_pb2_grpc

from .conftest import Container, host_uid, run_container, run_once, sandbox_seccomp_profile, wait_serving

pytestmark = pytest.mark.slow

TIMEOUT = 60.0
SERVICE_UID = 10001
#: How the metrics and analysis images run: read-only root, no capabilities, no privilege gain.
LOCKED_DOWN = ["--read-only", "--tmpfs", "/tmp", "--cap-drop=ALL", "--security-opt", "no-new-privileges"]


def test_metrics_image_scores_as_in_process(build_image: Callable[[str], str]) -> None:
    image = build_image("metrics")
    items = [Item(p, (r,)) for p, r in generate_pairs(300)]
    with run_container(image, 50051, LOCKED_DOWN) as box:
        wait_serving(box, "hyoka.v1.MetricsService")
        assert host_uid(box.host_pid()) == SERVICE_UID
        with sync_channel(ChannelConfig(box.target)) as channel:
            stub = metrics_pb2_grpc.MetricsServiceStub(channel)  # type: ignore[no-untyped-call]
            for metric, options in [("char_f1_fuzzywuzzy", {}), ("bleu", {"tokenize": "ja-mecab"})]:
                expected = score(metric, items, options)
                request = metrics_pb2.ScoreRequest(metric=metric, options=options, items=items_to_proto(items))
                response = stub.Score(request, timeout=TIMEOUT)
                assert response.corpus_score == expected.corpus_score, metric
                assert list(response.item_scores) == expected.item_scores, metric
                assert response.signature.text == expected.signature.text
                assert dict(response.details) == expected.details


@dataclass(frozen=True)
class SandboxContainer:
    box: Container
    token: str
    #: "runtime defaults" or "POD.md profile"
    profile: str


@pytest.fixture(scope="module", params=["runtime defaults", "POD.md profile"])
def sandbox(
    request: pytest.FixtureRequest,
    build_image: Callable[[str], str],
    data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SandboxContainer]:
    """The sandbox image run as sandbox/POD.md's pod, translated to podman flags."""
    image = build_image("sandbox")
    token = secrets.token_hex(16)
    options = [
        "--user", f"{SERVICE_UID}:{SERVICE_UID}",
        "--cap-drop=ALL",
        "--security-opt", "no-new-privileges",
        "--read-only",
        "--tmpfs", "/tmp:size=64m",
        "--memory", "4g",
        "--pids-limit", "512",
        "-e", f"HYOKA_SANDBOX_TOKEN={token}",
        "-v", f"{data_dir}:/data:ro",
    ]  # fmt: skip
    if request.param == "POD.md profile":
        profile = sandbox_seccomp_profile(tmp_path_factory.mktemp("seccomp") / "hyoka-sandbox.json")
        # /proc/sys is read-only in a container by default; bubblewrap's --disable-userns writes
        # the sandbox user namespace's own user.max_user_namespaces (needs no privilege here).
        options += ["--security-opt", f"seccomp={profile}", "--security-opt", "unmask=/proc/sys"]
    command = ["hyoka-sandbox", "serve", "--host", "0.0.0.0", "--port", "50052", "--workers", "2"]
    with run_container(image, 50052, options, command) as box:
        wait_serving(box, "hyoka.v1.SandboxService")
        yield SandboxContainer(box, token, request.param)


@pytest.fixture
def sandbox_stub(sandbox: SandboxContainer) -> Iterator[sandbox_pb2_grpc.SandboxServiceStub]:
    with sync_channel(ChannelConfig(sandbox.box.target, auth_token=sandbox.token)) as channel:
        yield sandbox_pb2_grpc.SandboxServiceStub(channel)  # type: ignore[no-untyped-call]


def test_sandbox_image_isolates_for_real(
    sandbox: SandboxContainer, sandbox_stub: sandbox_pb2_grpc.SandboxServiceStub
) -> None:
    assert host_uid(sandbox.box.host_pid()) == SERVICE_UID
    info = sandbox_stub.GetSandboxInfo(sandbox_pb2.GetSandboxInfoRequest(), timeout=TIMEOUT)
    assert not info.insecure
    assert info.isolation.startswith("bubblewrap-zygote+seccomp"), info.isolation
    assert info.capabilities.user_namespaces and info.capabilities.seccomp
    full = sandbox.profile == "POD.md profile"
    assert (info.capabilities.hostname, info.capabilities.disable_userns) == (full, full), info.capabilities
    assert any("--disable-userns" in warning for warning in info.warnings) != full, info.warnings
    assert {s.name: s.num_problems for s in info.problem_sets} == {"HumanEval": 164, "JHumanEval": 164}
    result = sandbox_stub.Execute(sandbox_pb2.ExecuteRequest(program=b"print(6 * 7)"), timeout=TIMEOUT).result
    assert result.status == sandbox_pb2.EXECUTION_STATUS_PASSED, result
    assert result.stdout == b"42\n"


def test_sandbox_image_checks_humaneval(sandbox_stub: sandbox_pb2_grpc.SandboxServiceStub, data_dir: Path) -> None:
    with gzip.open(data_dir / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as lines:
        problem = json.loads(next(lines))
    request = sandbox_pb2.CheckCompletionsRequest(
        problem_id=problem["task_id"], completions=[problem["canonical_solution"], "    return None\n"], k=[1]
    )
    response = sandbox_stub.CheckCompletions(request, timeout=TIMEOUT)
    assert [r.passed for r in response.results] == [True, False], response
    assert response.results[1].execution.status == sandbox_pb2.EXECUTION_STATUS_FAILED
    assert (response.num_samples, response.num_correct) == (2, 1)


def test_sandbox_image_keeps_programs_in(
    sandbox: SandboxContainer, sandbox_stub: sandbox_pb2_grpc.SandboxServiceStub, data_dir: Path
) -> None:
    box = sandbox.box
    marker = f"hyoka-escape-{secrets.token_hex(6)}"

    def run(program: str) -> sandbox_pb2.ExecutionResult:
        request = sandbox_pb2.ExecuteRequest(program=program.encode())
        result: sandbox_pb2.ExecutionResult = sandbox_stub.Execute(request, timeout=TIMEOUT).result
        return result

    # The service's own port is reachable from the container's network namespace (the control)...
    probe = "import socket; socket.create_connection(('127.0.0.1', 50052), timeout=3).close(); print('connected')"
    control = box.exec("python3", "-c", probe)
    assert control.returncode == 0 and "connected" in control.stdout, control.stderr
    # ...but not from a sandboxed program, which gets an empty network namespace.
    connect = run(probe)
    assert connect.status == sandbox_pb2.EXECUTION_STATUS_FAILED, connect
    assert b"connected" not in connect.stdout and b"OSError" in connect.stderr, connect.stderr
    # Writes outside the run's scratch fail; /tmp is the run's own tmpfs, unseen by the container.
    for path in (f"/data/{marker}", f"/usr/{marker}", f"/opt/{marker}"):
        write = run(f"open({path!r}, 'w').write('x')")
        assert write.status == sandbox_pb2.EXECUTION_STATUS_FAILED, (path, write)
    assert run(f"open('/tmp/{marker}', 'w').write('x')").status == sandbox_pb2.EXECUTION_STATUS_PASSED
    seen = box.exec("sh", "-c", f"ls -d /tmp/{marker} /{marker} /data/{marker} 2>/dev/null; true")
    assert seen.returncode == 0 and seen.stdout.strip() == "", seen
    # The host sees nothing either: the data directory is the only host path in the container.
    assert not (data_dir / marker).exists()
    # No new namespaces, by any call, with or without bubblewrap's --disable-userns.
    nest = run(NESTING_PROGRAM)
    assert nest.status == sandbox_pb2.EXECUTION_STATUS_PASSED, nest
    assert nest.stdout.decode().split() == ["unshare:-1", "clone:-1", "clone3:-1"], nest.stdout


NESTING_PROGRAM = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
NEWUSER, SIGCHLD = 0x10000000, 17
print("unshare:%d" % libc.unshare(NEWUSER))
pid = libc.syscall(ctypes.c_long(56), ctypes.c_long(NEWUSER | SIGCHLD), *(ctypes.c_long(0),) * 4)  # clone
if pid == 0:
    libc._exit(0)  # a child in a new user namespace: the call should never have succeeded
print("clone:%d" % pid)  # -1: refused; a child's pid would mean it was not
args = (ctypes.c_uint64 * 11)(NEWUSER, 0, 0, 0, SIGCHLD, 0, 0, 0, 0, 0, 0)
pid3 = libc.syscall(ctypes.c_long(435), args, ctypes.c_size_t(88))  # clone3
if pid3 == 0:
    libc._exit(0)
print("clone3:%d" % pid3)
"""


def _paper_pca(paper_dir: Path) -> dict[str, list[float]]:
    """../shared/paper/pca_reproduction_loadings.csv (4 decimals): a row of loadings per
    benchmark and one named explained_variance_ratio."""
    with (paper_dir / "pca_reproduction_loadings.csv").open(encoding="utf-8") as handle:
        return {row["benchmark"]: [float(row[f"PC{i}"]) for i in (1, 2, 3)] for row in csv.DictReader(handle)}


def test_orchestrator_image_analyzes_as_the_host(
    build_image: Callable[[str], str], data_dir: Path, tmp_path: Path
) -> None:
    image = build_image("orchestrator")
    out = tmp_path / "container"
    out.mkdir()
    out.chmod(0o777)  # the image's user (uid 10001) writes the report here
    options = ["--read-only", "--tmpfs", "/tmp", "--cap-drop=ALL", "-v", f"{out}:/out"]
    run_once(image, options, ["hyoka", "analyze", "-q", "--out", "/out/report"])
    host = tmp_path / "host"
    subprocess.run(
        [str(Path(sys.executable).with_name("hyoka")), "analyze", "-q", "--out", str(host)],
        check=True,
        cwd=tmp_path,
        timeout=300,
    )
    in_container = json.loads((out / "report" / "analysis.json").read_text())
    on_host = json.loads((host / "analysis.json").read_text())
    assert in_container["explained_variance_ratio"] == pytest.approx(on_host["explained_variance_ratio"], abs=1e-12)
    assert in_container["pc_scores"].keys() == on_host["pc_scores"].keys()
    for model, values in on_host["pc_scores"].items():
        assert in_container["pc_scores"][model] == pytest.approx(values, abs=1e-9), model
    paper = _paper_pca(data_dir.parent / "paper")
    evr = paper.pop("explained_variance_ratio")
    assert in_container["explained_variance_ratio"] == pytest.approx(evr, abs=5e-5)
    assert in_container["loadings"].keys() == paper.keys()
    for benchmark, values in paper.items():
        assert in_container["loadings"][benchmark] == pytest.approx(values, abs=5e-5), benchmark
    assert (out / "report" / "report.html").is_file()


def test_orchestrator_image_serves_analysis(build_image: Callable[[str], str]) -> None:
    image = build_image("orchestrator")
    with run_container(image, 50053, LOCKED_DOWN) as box:
        wait_serving(box, "hyoka.v1.AnalysisService")
        assert host_uid(box.host_pid()) == SERVICE_UID
        with sync_channel(ChannelConfig(box.target)) as channel:
            stub = analysis_pb2_grpc.AnalysisServiceStub(channel)  # type: ignore[no-untyped-call]
            request = analysis_pb2.AnalyzeRequest(use_default_scores=True, use_default_budgets=True)
            response = stub.Analyze(request, timeout=TIMEOUT)
    assert list(response.explained_variance_ratio) == pytest.approx([0.6515, 0.1542, 0.0697], abs=5e-5)
    assert len(response.models) == 35 and len(response.benchmarks) == 19

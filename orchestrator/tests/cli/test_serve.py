"""`hyoka serve` as a real process: it prints its port, answers health, reflection,
AnalysisService.Analyze and EvaluationService over a real client, rejects bad input with
INVALID_ARGUMENT naming the field, enforces the bearer token (health stays open) and stops cleanly
on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from hyoka.rpc import ChannelConfig, field_violations, sync_channel
from hyoka.v1 import analysis_pb2, analysis_pb2_grpc, evaluation_pb2, evaluation_pb2_grpc

TOKEN = "test-token-123"
START_TIMEOUT_S = 60


@contextmanager
def serving(
    *args: str, env: dict[str, str] | None = None, state_dir: bool = True
) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """Start `hyoka serve --port 0 ARGS` (with a throwaway --state-dir unless not `state_dir`) and
    yield (port, process); SIGTERM it afterwards."""
    state = tempfile.TemporaryDirectory(prefix="hyoka-serve-state-")
    args = ("--state-dir", state.name, *args) if state_dir else args
    process = subprocess.Popen(
        [sys.executable, "-c", "from hyoka.orchestrator.cli import main; main()", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline() if process.stdout else ""))
    reader.start()
    reader.join(START_TIMEOUT_S)
    try:
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", lines[0] if lines else "")
        exited = process.poll() is not None and process.stderr is not None
        assert match, f"no port line; stdout={lines!r} stderr={process.stderr.read() if exited else ''}"  # type: ignore[union-attr]
        yield int(match.group(1)), process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        state.cleanup()


@pytest.mark.slow
def test_serve_end_to_end() -> None:
    with serving() as (port, process), sync_channel(ChannelConfig(f"127.0.0.1:{port}")) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "hyoka.v1.AnalysisService", "hyoka.v1.EvaluationService"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        names = {
            s.name
            for reply in reflection.ServerReflectionInfo(iter([request]), timeout=10)
            for s in reply.list_services_response.service
        }
        assert {"hyoka.v1.AnalysisService", "hyoka.v1.EvaluationService"} <= names

        stub = analysis_pb2_grpc.AnalysisServiceStub(channel)
        reply = stub.Analyze(analysis_pb2.AnalyzeRequest(use_default_scores=True), timeout=60)
        assert list(reply.explained_variance_ratio) == pytest.approx([0.652, 0.154, 0.070], abs=0.002)

        new = analysis_pb2.NewModelScores(model_id="n", scores={"niilc": 1.5, "mmlu": 0.5, "bbh": 0.5})
        with pytest.raises(grpc.RpcError) as raised:
            stub.Analyze(analysis_pb2.AnalyzeRequest(use_default_scores=True, new_models=[new]), timeout=60)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert "outside [0, 1]" in field_violations(raised.value)["new_models[0].scores[niilc]"]

        runs = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        assert not runs.ListRuns(evaluation_pb2.ListRunsRequest(), timeout=30).runs
        bad = evaluation_pb2.StartRunRequest(run_id="r1", model="tgi:http://127.0.0.1:1", tasks=["niilc", "foo"])
        with pytest.raises(grpc.RpcError) as raised:
            runs.StartRun(bad, timeout=30)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert "unknown task 'foo'" in field_violations(raised.value)["tasks[1]"]
    assert process.returncode == 0, "SIGTERM is a graceful stop"


@pytest.mark.slow
def test_serve_requires_the_token_but_leaves_health_open() -> None:
    with serving(env={"HYOKA_AUTH_TOKEN": TOKEN}) as (port, _):
        with sync_channel(ChannelConfig(f"127.0.0.1:{port}")) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as raised:
                analysis_pb2_grpc.AnalysisServiceStub(channel).Analyze(
                    analysis_pb2.AnalyzeRequest(use_default_scores=True), timeout=30
                )
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        with sync_channel(ChannelConfig(f"127.0.0.1:{port}", auth_token=TOKEN)) as channel:
            reply = analysis_pb2_grpc.AnalysisServiceStub(channel).Analyze(
                analysis_pb2.AnalyzeRequest(use_default_scores=True), timeout=60
            )
            assert len(reply.pc_scores) == 35


@pytest.mark.slow
def test_serve_without_a_writable_state_dir(tmp_path: Path) -> None:
    """The default state directory cannot be made (a read-only container): AnalysisService still
    serves, EvaluationService does not. A --state-dir that cannot be used is a usage error."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    env = {"XDG_STATE_HOME": str(blocker), "HYOKA_STATE_DIR": ""}
    with serving(env=env, state_dir=False) as (port, _), sync_channel(ChannelConfig(f"127.0.0.1:{port}")) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service="hyoka.v1.AnalysisService"), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as raised:
            health.Check(health_pb2.HealthCheckRequest(service="hyoka.v1.EvaluationService"), timeout=10)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    command = [sys.executable, "-c", "from hyoka.orchestrator.cli import main; main()", "serve", "--port", "0"]
    result = subprocess.run(
        [*command, "--state-dir", str(blocker / "state")], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2 and "error: run store" in result.stderr, result.stderr

"""The CPU model server for real: llama-cpp-python's OpenAI-compatible server (the image of
services/models/llamacpp-cpu.Containerfile, SmolLM2's GGUF mounted) started by hyoka's launcher
through podman's Docker API, evaluated by `hyoka eval --launch`, checked by the conformance
probe, and compared with hf-local on the same GGUF. No container may be left behind, also when
the run is interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hyoka.orchestrator.launcher import LABEL, LaunchError, launched_server, resolve_launch

from .conftest import podman, podman_docker_api

pytestmark = pytest.mark.slow

HYOKA = str(Path(sys.executable).with_name("hyoka"))
IMAGE = "model-llamacpp-cpu"
GENERATION_TASKS = "niilc,jemhopqa"


@pytest.fixture(scope="module")
def server_image(build_image: Callable[[str], str]) -> str:
    return build_image(IMAGE)  # the first build compiles llama.cpp (about 5 minutes)


@pytest.fixture(scope="module")
def docker_host(tmp_path_factory: pytest.TempPathFactory, server_image: str) -> Iterator[str]:
    """podman's Docker-compatible API on a socket of our own: the launcher's DOCKER_HOST."""
    with podman_docker_api(tmp_path_factory.mktemp("podman") / "podman.sock") as docker_host:
        yield docker_host


def launched_containers() -> list[str]:
    """Containers (running or not) that hyoka's launcher started and did not remove."""
    listed = podman("ps", "--all", "--filter", f"label={LABEL}", "--format", "{{.Names}}")
    return listed.stdout.split()


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    before = set(launched_containers())
    yield
    left = set(launched_containers()) - before
    for name in left:
        podman("rm", "--force", name, check=False)
    assert not left, f"the launcher left containers behind: {sorted(left)}"


def hyoka(args: list[str], docker_host: str, data_dir: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": docker_host, "HYOKA_DATA_DIR": str(data_dir)}
    return subprocess.run([HYOKA, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def read_outputs(out: Path, task: str) -> dict[str, str]:
    """item id -> the model's output, from a run's records export."""
    lines = (out / "records" / f"{task}.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    return {r["item_id"]: r["output"] for r in records}


def test_eval_launches_the_cpu_server_and_removes_it(
    server_image: str, docker_host: str, data_dir: Path, tmp_path: Path, no_leftovers: None
) -> None:
    out = tmp_path / "launched"
    run = hyoka(
        [
            "eval",
            "--launch",
            server_image,
            "--launch-pull",
            "never",
            "--tasks",
            GENERATION_TASKS,
            "--limit",
            "5",
            "--out",
            str(out),
        ],
        docker_host,
        data_dir,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    scores = (out / "scores.csv").read_text(encoding="utf-8")
    assert scores.splitlines()[0] == "model_id,jemhopqa,niilc", scores
    assert scores.splitlines()[1].startswith("SmolLM2-135M-Instruct.Q4_1,"), scores  # the server's model alias
    for task in GENERATION_TASKS.split(","):
        outputs = read_outputs(out, task)
        assert len(outputs) == 5 and all(o.strip() for o in outputs.values()), outputs
    # The probe ran against the real server: its generation is sound, its prompt log-probabilities
    # are not (llama-cpp-python's are shifted by one position).
    conformance = json.loads((out / "conformance.json").read_text(encoding="utf-8"))
    assert conformance["generation_ok"] and not conformance["logprobs_ok"], conformance


def test_probe_refuses_llamacpp_prompt_logprobs(
    server_image: str, docker_host: str, data_dir: Path, tmp_path: Path, no_leftovers: None
) -> None:
    spec = resolve_launch(server_image, pull="never")
    with launched_server(spec, docker_host=docker_host) as server:
        check = hyoka(["check-server", server.model_spec(), "--json"], docker_host, data_dir, timeout=300)
        assert check.returncode == 1, check.stdout + check.stderr
        report = json.loads(check.stdout)
        failed = {c["name"]: c["message"] for c in report["checks"] if c["passed"] is False}
        assert "logprob_alignment" in failed, report
        # and `hyoka eval` refuses a log-likelihood task up front, naming the check
        refused = hyoka(
            [
                "eval",
                "--model",
                server.model_spec(),
                "--tasks",
                "xwino_en",
                "--limit",
                "5",
                "--out",
                str(tmp_path / "mc"),
            ],
            docker_host,
            data_dir,
            timeout=300,
        )
        assert refused.returncode == 2, refused.stderr[-3000:]
        assert "log-likelihood tasks cannot run on this server" in refused.stderr, refused.stderr[-3000:]
        assert not (tmp_path / "mc" / "records" / "xwino_en.jsonl").exists()


def test_greedy_text_agrees_with_hf_local_and_chat_works(
    server_image: str, docker_host: str, data_dir: Path, tmp_path: Path, no_leftovers: None
) -> None:
    """openai-completions through the real server against hf-local on the same GGUF: the greedy
    texts should agree on most items (llama.cpp computes with the quantised weights, hf-local with
    their dequantised float values, so a near tie can go the other way)."""
    limit = "20"
    local = hyoka(
        [
            "eval",
            "--model",
            "hf-local:smollm2",
            "--tasks",
            GENERATION_TASKS,
            "--limit",
            limit,
            "--out",
            str(tmp_path / "local"),
        ],
        docker_host,
        data_dir,
    )
    assert local.returncode == 0, local.stderr[-4000:]
    spec = resolve_launch(server_image, pull="never")
    with launched_server(spec, docker_host=docker_host) as server:
        remote = hyoka(
            [
                "eval",
                "--model",
                server.model_spec(),
                "--tasks",
                GENERATION_TASKS,
                "--limit",
                limit,
                "--out",
                str(tmp_path / "remote"),
            ],
            docker_host,
            data_dir,
        )
        assert remote.returncode == 0, remote.stderr[-4000:]
        chat = hyoka(
            [
                "eval",
                "--model",
                server.model_spec().replace("openai-completions", "openai-chat", 1),
                "--tasks",
                "niilc",
                "--limit",
                "3",
                "--out",
                str(tmp_path / "chat"),
            ],
            docker_host,
            data_dir,
        )
        assert chat.returncode == 0, chat.stderr[-4000:]
    assert all(o.strip() for o in read_outputs(tmp_path / "chat", "niilc").values())
    same = total = 0
    for task in GENERATION_TASKS.split(","):
        local_out, remote_out = read_outputs(tmp_path / "local", task), read_outputs(tmp_path / "remote", task)
        assert local_out.keys() == remote_out.keys()
        total += len(local_out)
        same += sum(local_out[k] == remote_out[k] for k in local_out)
    print(f"greedy agreement, openai-completions (llama-cpp-python server) vs hf-local: {same}/{total}")
    assert same / total > 0.5, f"only {same}/{total} greedy completions agree"


def test_sigint_during_the_run_removes_the_container(
    server_image: str, docker_host: str, data_dir: Path, tmp_path: Path, no_leftovers: None
) -> None:
    env = {**os.environ, "DOCKER_HOST": docker_host, "HYOKA_DATA_DIR": str(data_dir)}
    args = [
        "eval",
        "--launch",
        server_image,
        "--launch-pull",
        "never",
        "--tasks",
        GENERATION_TASKS,
        "--limit",
        "20",
        "--out",
        str(tmp_path / "interrupted"),
    ]
    for moment in ("starting", "evaluating"):
        before = set(launched_containers())
        run = subprocess.Popen([HYOKA, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while not set(launched_containers()) - before:
                assert run.poll() is None and time.monotonic() < deadline, "no container was started"
                time.sleep(0.2)
            if moment == "evaluating":  # once the first items are scored
                records = tmp_path / "interrupted" / "records" / "niilc.jsonl"
                while not (records.exists() and records.read_text(encoding="utf-8").count("\n") >= 2):
                    assert run.poll() is None and time.monotonic() < deadline + 120, "the run never started"
                    time.sleep(0.1)
            run.send_signal(signal.SIGINT)
            _, stderr = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
        assert run.returncode != 0, f"{moment}: the interrupted run claimed success"
        assert not set(launched_containers()) - before, f"{moment}: container left after SIGINT:\n{stderr[-2000:]}"
    # The rerun launches a new container on another port, and resumes: the model is keyed by image
    # and model file, not by the server's URL.
    rerun = hyoka(args, docker_host, data_dir)
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    results = json.loads((tmp_path / "interrupted" / "results.json").read_text(encoding="utf-8"))
    assert [(t["num_items"], t["num_resumed"] > 0) for t in results["tasks"]] == [(20, True), (20, False)], results


def test_a_server_that_dies_is_a_launch_error_with_its_log(
    server_image: str, docker_host: str, tmp_path: Path, no_leftovers: None
) -> None:
    not_a_model = tmp_path / "broken.gguf"
    not_a_model.write_bytes(b"this is not a GGUF file")
    not_a_model.chmod(0o644)
    spec = resolve_launch(server_image, model=str(not_a_model), pull="never", startup_timeout_s=120)
    with pytest.raises(LaunchError) as error, launched_server(spec, docker_host=docker_host):
        pytest.fail("a server without a model became healthy")
    message = str(error.value)
    assert "exited with code" in message and "last log lines" in message, message


def test_evaluation_service_launches_and_removes_the_server(
    server_image: str, docker_host: str, data_dir: Path, tmp_path: Path, no_leftovers: None
) -> None:
    """StartRun with `launch`: the service starts the container, evaluates through it, removes
    it; a run cancelled while its server starts leaves no container either."""
    import re

    import grpc

    from hyoka.rpc.client import ChannelConfig, sync_channel
    from hyoka.v1 import evaluation_pb2, evaluation_pb2_grpc

    env = {**os.environ, "DOCKER_HOST": docker_host}
    serve = subprocess.Popen(
        [HYOKA, "serve", "--port", "0", "--state-dir", str(tmp_path / "state"), "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stdout is not None
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", serve.stdout.readline())
        assert match, serve.stderr.read() if serve.stderr and serve.poll() is not None else "no port line"
        with sync_channel(ChannelConfig(f"127.0.0.1:{match.group(1)}")) as channel:
            runs = evaluation_pb2_grpc.EvaluationServiceStub(channel)
            launch = evaluation_pb2.ModelLaunch(preset_or_image=server_image)
            started = runs.StartRun(  # type: ignore[no-untyped-call]
                evaluation_pb2.StartRunRequest(run_id="launched", launch=launch, tasks=["niilc"], limit=3), timeout=30
            )
            assert started.created
            final = None
            for event in runs.WatchRun(evaluation_pb2.WatchRunRequest(run_id="launched"), timeout=300):  # type: ignore[no-untyped-call]
                final = event.run
            assert final is not None and final.state == evaluation_pb2.RUN_STATE_SUCCEEDED, final
            assert [(t.task, t.items_done) for t in final.tasks] == [("niilc", 3)], final
            assert not launched_containers()

            with pytest.raises(grpc.RpcError) as bad:
                runs.StartRun(  # type: ignore[no-untyped-call]
                    evaluation_pb2.StartRunRequest(
                        run_id="bad", launch=evaluation_pb2.ModelLaunch(preset_or_image="nginx:1"), tasks=["niilc"]
                    ),
                    timeout=30,
                )
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "launch.preset_or_image" in (bad.value.details() or "")

            runs.StartRun(  # type: ignore[no-untyped-call]
                evaluation_pb2.StartRunRequest(run_id="cancelled", launch=launch, tasks=["niilc"], limit=3), timeout=30
            )
            deadline = time.monotonic() + 60
            while not launched_containers():
                assert time.monotonic() < deadline, "the service started no container"
                time.sleep(0.1)
            cancelled = runs.CancelRun(evaluation_pb2.CancelRunRequest(run_id="cancelled"), timeout=60)  # type: ignore[no-untyped-call]
            assert cancelled.run.state == evaluation_pb2.RUN_STATE_CANCELLED, cancelled
            assert not launched_containers()
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()

"""`hyoka eval` against metrics and sandbox servers that require mutual TLS and a bearer token:
the real `hyoka-metrics serve` and `hyoka-sandbox serve` started with --tls-cert/--tls-key/
--tls-client-ca (certificates made by the test, hyoka.rpc.testing), the real `hyoka eval` with
--tls-ca/--tls-client-cert/--tls-client-key (or their HYOKA_TLS_* variables). Without them the run
stops before any work with one error line naming the flag to give."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyoka.orchestrator.tasks import get_task
from hyoka.rpc.client import ChannelConfig, sync_channel
from hyoka.rpc.server import free_port

testing = pytest.importorskip("hyoka.rpc.testing")  # needs cryptography (requirements/dev.txt)
from hyoka.rpc.testing import TestPKI, make_test_pki  # noqa: E402

BIN = Path(sys.executable).parent
TOKEN = secrets.token_hex(16)
TASKS = ("niilc", "jhumaneval")  # niilc: the metrics service; jhumaneval: the sandbox
LIMIT = 2


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("HYOKA_TLS_", "HYOKA_HEALTH_PORT"))}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@contextlib.contextmanager
def _mtls_server(executable: str, env: dict[str, str], pki: TestPKI, log: Path) -> Iterator[str]:
    """`EXECUTABLE serve` with mutual TLS and a plaintext health port; yields host:port."""
    port, health_port = free_port(), free_port()
    argv = [str(BIN / executable), "serve", "--port", str(port), "--health-port", str(health_port)]
    argv += ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), "--tls-client-ca", str(pki.ca)]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env={**_clean_env(), **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{executable} exited {proc.returncode}:\n{log.read_text()}")
            with contextlib.suppress(grpc.RpcError), sync_channel(ChannelConfig(f"127.0.0.1:{health_port}")) as ch:
                reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"{executable} not healthy after 60 s:\n{log.read_text()}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert TOKEN not in log.read_text()  # the token is never logged


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, pki: TestPKI, data_dir: Path) -> Iterator[tuple[str, str]]:
    logs = tmp_path_factory.mktemp("logs")
    with (
        _mtls_server("hyoka-metrics", {"HYOKA_METRICS_AUTH_TOKEN": TOKEN}, pki, logs / "metrics.log") as metrics,
        _mtls_server(
            "hyoka-sandbox", {"HYOKA_SANDBOX_TOKEN": TOKEN, "HYOKA_DATA_DIR": str(data_dir)}, pki, logs / "sandbox.log"
        ) as sandbox,
    ):
        yield metrics, sandbox


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A scripted model answering every item right (NIILC's gold, JHumanEval's canonical solution)."""
    generations = {}
    for name in TASKS:
        task = get_task(name)
        generations.update({it.prompt: it.gold for it in task.items(task.load(data_dir), limit=LIMIT)})
    path = tmp_path_factory.mktemp("script") / "answers.json"
    path.write_text(json.dumps({"generations": generations}, ensure_ascii=False), encoding="utf-8")
    return path


def _eval(
    out: Path, script: Path, servers: tuple[str, str], data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    metrics, sandbox = servers
    argv = [str(BIN / "hyoka"), "eval", "--model", f"scripted:{script}", "--tasks", ",".join(TASKS)]
    argv += ["--limit", str(LIMIT), "--out", str(out), "--data-dir", str(data_dir)]
    argv += ["--metrics-url", metrics, "--sandbox-url", sandbox, *args]
    return subprocess.run(
        argv,
        env={**_clean_env(), "HYOKA_AUTH_TOKEN": TOKEN, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.timeout(600)
def test_eval_over_mutual_tls_with_flags(
    tmp_path: Path, script: Path, servers: tuple[str, str], data_dir: Path, pki: TestPKI
) -> None:
    flags = [
        "--tls-ca",
        str(pki.ca),
        "--tls-client-cert",
        str(pki.client_cert),
        "--tls-client-key",
        str(pki.client_key),
    ]
    result = _eval(tmp_path, script, servers, data_dir, *flags)
    assert result.returncode == 0, result.stderr[-4000:]
    with (tmp_path / "scores.csv").open(encoding="utf-8") as f:
        header, row = list(csv.reader(f))
    scores = dict(zip(header, row, strict=True))
    assert float(scores["niilc"]) == 1.0 and float(scores["jhumaneval"]) == 1.0, scores
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert str(pki.client_key) not in json.dumps(results) and TOKEN not in json.dumps(results)


@pytest.mark.timeout(600)
def test_eval_over_mutual_tls_from_the_environment(
    tmp_path: Path, script: Path, servers: tuple[str, str], data_dir: Path, pki: TestPKI
) -> None:
    env = {
        "HYOKA_TLS_CA": str(pki.ca),
        "HYOKA_TLS_CLIENT_CERT": str(pki.client_cert),
        "HYOKA_TLS_CLIENT_KEY": str(pki.client_key),
        "HYOKA_TLS_SERVER_NAME": "localhost",
    }
    result = _eval(tmp_path, script, servers, data_dir, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "scores.csv").is_file()


@pytest.mark.parametrize(
    ("tls", "advice"),
    [
        ("none", "if it serves TLS, give --tls-ca (HYOKA_TLS_CA), and for mutual TLS --tls-client-cert"),
        ("ca-only", "if it requires client certificates (mutual TLS), give --tls-client-cert and --tls-client-key"),
    ],
)
def test_eval_without_client_certificates_fails_clearly(
    tmp_path: Path, script: Path, servers: tuple[str, str], data_dir: Path, pki: TestPKI, tls: str, advice: str
) -> None:
    flags = ["--tls-ca", str(pki.ca)] if tls == "ca-only" else []
    result = _eval(tmp_path, script, servers, data_dir, *flags)
    assert result.returncode == 2, result.stderr[-4000:]
    message = " ".join(result.stderr.split())
    assert message.startswith("error: metrics service: cannot reach hyoka.v1.MetricsService"), message
    assert advice in message and "Traceback" not in message
    assert not (tmp_path / "records" / "niilc.jsonl").exists()  # nothing ran


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tls-client-cert", "/nonexistent/client.crt"], "--tls-client-cert and --tls-client-key go together"),
        (["--tls-ca", "/nonexistent/ca.crt"], "--tls-ca /nonexistent/ca.crt: cannot be read"),
    ],
)
def test_bad_client_tls_settings_are_a_usage_error(tmp_path: Path, flags: list[str], message: str) -> None:
    result = subprocess.run(
        [str(BIN / "hyoka"), "eval", "--model", "scripted:x.json", "--tasks", "niilc", "--out", str(tmp_path), *flags],
        env={**_clean_env(), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split()) and "Traceback" not in result.stderr

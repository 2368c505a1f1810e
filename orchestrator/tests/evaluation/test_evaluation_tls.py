"""EvaluationService runs reach a metrics service that requires mutual TLS with the client
settings of RunSettings.tls (`hyoka serve` reads them from HYOKA_TLS_CA, HYOKA_TLS_CLIENT_CERT,
HYOKA_TLS_CLIENT_KEY, HYOKA_TLS_SERVER_NAME); without them a run fails naming what to set."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hyoka.orchestrator.backends.testing.sim_server import LatencyModel, SimServer
from hyoka.orchestrator.evaluation import RunManager, RunSettings, open_run_store
from hyoka.orchestrator.evaluation.runs import RunView
from hyoka.rpc.tls import ClientTLS

testing = pytest.importorskip("hyoka.rpc.testing")  # needs cryptography (requirements/dev.txt)
from hyoka.rpc.testing import TestPKI, make_test_pki  # noqa: E402

FAST = LatencyModel(seconds_per_token=0.0005, short_tokens=(2, 10), long_tokens=(2, 10))
TOKEN = "runs-over-mtls"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def mtls_metrics(pki: TestPKI) -> AsyncIterator[str]:
    from hyoka.metrics.server import MetricsServerConfig, start_metrics_server

    config = MetricsServerConfig(port=0, auth_token=TOKEN, tls=pki.server_tls(), grace_seconds=0)
    running = await start_metrics_server(config)
    try:
        yield f"127.0.0.1:{running.port}"
    finally:
        await running.stop(0)


async def _run(tmp_path: Path, data_dir: Path, metrics: str, tls: ClientTLS | None) -> RunView:
    from hyoka.orchestrator.evaluation.requests import RunRequest

    settings = RunSettings(
        state_dir=tmp_path / "state", data_dir=data_dir, metrics_url=metrics, auth_token=TOKEN, tls=tls
    )
    store = open_run_store(settings)
    manager = RunManager(store, settings)
    try:
        with SimServer(2, latency=FAST) as server:
            request = RunRequest(
                run_id="mtls", model=f"openai-completions:{server.url}", tasks=("jemhopqa",), limit=2, model_id="sim"
            )
            view, _ = await manager.start(request)
            async for snapshot, _ in manager.watch(view.run_id):
                view = snapshot
            return view
    finally:
        await manager.close()
        store.close()


@pytest.mark.timeout(120)
async def test_runs_use_the_client_certificate(tmp_path: Path, data_dir: Path, mtls_metrics: str, pki: TestPKI) -> None:
    view = await _run(tmp_path, data_dir, mtls_metrics, pki.client_tls())
    assert view.state == "succeeded", view.error


@pytest.mark.timeout(120)
async def test_runs_without_tls_settings_fail_naming_them(tmp_path: Path, data_dir: Path, mtls_metrics: str) -> None:
    view = await _run(tmp_path, data_dir, mtls_metrics, None)
    assert view.state == "failed"
    assert "metrics service: cannot reach hyoka.v1.MetricsService" in view.error and "--tls-ca" in view.error


def test_serve_reads_client_tls_from_the_environment(tmp_path: Path) -> None:
    """A half-set client certificate is a usage error of `hyoka serve`, before it serves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYOKA_TLS_")}
    env["HYOKA_TLS_CLIENT_CERT"] = str(tmp_path / "client.crt")
    result = subprocess.run(
        [str(Path(sys.executable).with_name("hyoka")), "serve", "--port", "0", "--state-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "--tls-client-cert and --tls-client-key go together" in result.stderr


def test_eval_flags_read_the_client_variables() -> None:
    """`hyoka eval` spells the variables out (its module does not import grpc): they stay those of
    ClientTLS.from_env()."""
    from hyoka.orchestrator.cli.evaluate import _TLS_ENV
    from hyoka.rpc.tls import CLIENT_ENV

    assert _TLS_ENV == CLIENT_ENV

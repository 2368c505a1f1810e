"""`hyoka check-server` prints the conformance checks and exits 0/1 (2 on bad input); `hyoka eval`
runs the same probe before the first item and stops log-likelihood tasks on a server that fails it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyoka.orchestrator.backends.conformance import PROBE_PROMPTS
from hyoka.orchestrator.backends.hf_local import LocalModel, load_local_model
from hyoka.orchestrator.backends.testing.openai_server import Fault, OpenAIServer
from hyoka.orchestrator.backends.testing.tgi_server import TGIServer
from hyoka.orchestrator.backends.testing.tiny_model import build_tiny_llama
from hyoka.orchestrator.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> LocalModel:
    return load_local_model(str(build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")))


@pytest.fixture
def server(request: pytest.FixtureRequest, tiny_lm: LocalModel) -> Iterator[OpenAIServer]:
    fault: Fault | None = getattr(request, "param", None)
    with OpenAIServer(tiny_lm, fault=fault) as s:
        yield s


def test_a_conforming_server_passes(server: OpenAIServer) -> None:
    result = runner.invoke(app, ["check-server", f"openai-completions:{server.url}"])
    assert result.exit_code == 0, result.output
    for name in ("greedy_deterministic", "stop_sequence", "logprob_alignment", "first_token_unscored"):
        assert name in result.output
    assert "FAIL" not in result.output


def test_json_report(tiny_lm: LocalModel) -> None:
    with TGIServer(tiny_lm) as s:
        result = runner.invoke(app, ["check-server", f"tgi:{s.url}", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["logprob_tolerance"] == 0.05
    assert {c["name"]: c["passed"] for c in report["checks"]}["tokenisation_length"] is True


@pytest.mark.parametrize("server", ["shift_logprobs"], indirect=True)
def test_a_shifting_server_fails_with_the_check_named(server: OpenAIServer) -> None:
    result = runner.invoke(app, ["check-server", f"openai-completions:{server.url}"])
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output
    assert f"error: backend openai-completions:{server.url}: prompt log-probabilities are not aligned" in result.output
    assert "(probe 'logprob_alignment'); log-likelihood tasks cannot run on this server" in result.output


def test_bad_input_exits_2() -> None:
    result = runner.invoke(app, ["check-server", "nosuch:http://x"])
    assert result.exit_code == 2 and "unknown backend" in result.output
    result = runner.invoke(app, ["check-server", "tgi:http://127.0.0.1:1,max_retries=0"])
    assert result.exit_code == 2 and "cannot connect" in result.output


@pytest.mark.parametrize("server", ["shift_logprobs"], indirect=True)
def test_eval_stops_loglikelihood_tasks_before_any_item(server: OpenAIServer, tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "run"
    args = ["eval", "--model", f"openai-completions:{server.url}", "--tasks", "xwino_en", "--limit", "2"]
    result = runner.invoke(app, [*args, "--out", str(out), "--data-dir", str(data_dir)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: backend openai-completions:"), result.output
    assert "(probe 'logprob_alignment'); log-likelihood tasks cannot run on this server" in lines[0]
    report = json.loads((out / "conformance.json").read_text(encoding="utf-8"))
    assert report["ok"] is False
    assert not (out / "records").exists()  # no item was sent
    # Only the probe's own requests reached the server, none with an item's prompt.
    assert server.received
    assert all(str(b.get("prompt")).startswith(PROBE_PROMPTS) for b in server.received)


def test_eval_passes_the_probe_of_a_conforming_server(server: OpenAIServer, tmp_path: Path, data_dir: Path) -> None:
    """The probe passes and the items are sent (the tiny model's 256-token window is too short for
    xwino's prompts, so the run then stops on the server's context-length error, not on the probe)."""
    out = tmp_path / "run"
    args = ["eval", "--model", f"openai-completions:{server.url}", "--tasks", "xwino_en", "--limit", "1"]
    result = runner.invoke(app, [*args, "--out", str(out), "--data-dir", str(data_dir)])
    assert "probe" not in result.output and "maximum context length" in result.output, result.output
    assert json.loads((out / "conformance.json").read_text(encoding="utf-8"))["ok"] is True
    assert not all(str(b.get("prompt")).startswith(PROBE_PROMPTS) for b in server.received)  # items were sent

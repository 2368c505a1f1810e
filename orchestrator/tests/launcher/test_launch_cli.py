"""`hyoka eval --launch` input errors: found before any container starts, one line, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyoka.orchestrator.cli import app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--launch", "nginx:1.27"], "not a preset (llamacpp-cpu, tgi, vllm)"),
        (["--launch", "llamacpp-cpu", "--launch-model", "/no/such.gguf"], "--launch-model /no/such.gguf: no such file"),
        (["--launch", "llamacpp-cpu", "--launch-pull", "sometimes"], "--launch-pull must be missing, always or never"),
        (
            ["--launch", "llamacpp-cpu", "--model", "openai-chat:http://elsewhere:8000"],
            "give the backend and options only",
        ),
        (["--launch", "llamacpp-cpu", "--model", "no-such-backend"], "unknown backend 'no-such-backend'"),
        (["--launch", "llamacpp-cpu"], "no Docker API at unix:///nonexistent/docker.sock"),
        ([], "give --model (or --launch to start a model server)"),
    ],
)
def test_launch_input_errors(args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = CliRunner().invoke(app, ["eval", "--tasks", "niilc", "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert not (tmp_path / "run").exists()  # nothing was started or written

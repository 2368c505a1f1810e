"""`hyoka-metrics score` on files and `hyoka-metrics serve` as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from hyoka.metrics import Item, score
from hyoka.metrics.cli import app
from hyoka.rpc.client import ChannelConfig, sync_channel
from hyoka.rpc.server import free_port
from hyoka.v1 import metrics_pb2, metrics_pb2_grpc

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_score_jsonl_and_tsv(tmp_path: Path, pairs: list[tuple[str, str]]) -> None:
    subset = [(p, r) for p, r in pairs[:200] if "\n" not in p and "\t" not in p and "\n" not in r and "\t" not in r]
    (tmp_path / "pred.jsonl").write_text("\n".join(json.dumps({"prediction": p}) for p, _ in subset) + "\n")
    (tmp_path / "ref.jsonl").write_text("\n".join(json.dumps([r]) for _, r in subset) + "\n")
    (tmp_path / "pred.tsv").write_text("\n".join(p for p, _ in subset) + "\n")
    (tmp_path / "ref.tsv").write_text("\n".join(r for _, r in subset) + "\n")
    expected = score("bleu", [Item(p, (r,)) for p, r in subset], {"tokenize": "ja-mecab"})
    for ext in ("jsonl", "tsv"):
        code, out, err = _run(
            "score", "--metric", "bleu", "-o", "tokenize=ja-mecab",
            "--pred", str(tmp_path / f"pred.{ext}"), "--ref", str(tmp_path / f"ref.{ext}"), "--items",
        )  # fmt: skip
        assert code == 0, err
        result = json.loads(out)
        assert result["corpus_score"] == expected.corpus_score
        assert result["item_scores"] == expected.item_scores
        assert result["signature"] == expected.signature.text


def test_score_pass_at_k_without_references(tmp_path: Path) -> None:
    (tmp_path / "counts.jsonl").write_text('{"total": 10, "correct": 3}\n{"total": 10, "correct": 0}\n')
    code, out, err = _run("score", "--metric", "pass_at_k", "--pred", str(tmp_path / "counts.jsonl"))
    assert code == 0, err
    assert json.loads(out)["corpus_score"] == pytest.approx(0.15)


@pytest.mark.parametrize(
    ("pred", "ref", "args", "message"),
    [
        (b'"a"\n"b"\n', b'"a"\n{oops\n', (), "ref.jsonl:2: invalid JSON"),
        (b'"a"\n"b\xff"\n', b'"a"\n"b"\n', (), "pred.jsonl:2: invalid UTF-8"),
        (b'"a"\n42\n', b'"a"\n"b"\n', (), "pred.jsonl:2: expected a string"),
        (b'"a"\n"b"\n', b'"a"\n[]\n', (), "ref.jsonl:2: expected a string"),
        (b'"a"\n"b"\n"c"\n', b'"a"\n"b"\n', (), "pred.jsonl has 3 items but"),
        (b'"a"\n', b'"a"\n', ("-o", "tokenize=moses"), "--option options.tokenize"),
        (
            b'"12"\n"7"\n',
            b'"12"\n"seven"\n',
            ("--metric", "exact_match_mgsm"),
            "ref.jsonl:2: 'seven' is not an integer",
        ),
    ],
)
def test_bad_files_fail_with_one_line_naming_file_and_line(
    tmp_path: Path, pred: bytes, ref: bytes, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "pred.jsonl").write_bytes(pred)
    (tmp_path / "ref.jsonl").write_bytes(ref)
    metric = [] if "--metric" in args else ["--metric", "bleu"]
    code, _, err = _run(
        "score", *metric, *args, "--pred", str(tmp_path / "pred.jsonl"), "--ref", str(tmp_path / "ref.jsonl")
    )
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_missing_file_and_unknown_metric(tmp_path: Path) -> None:
    code, _, err = _run(
        "score", "--metric", "bleu", "--pred", str(tmp_path / "nope.tsv"), "--ref", str(tmp_path / "nope.tsv")
    )
    assert code == 2 and "nope.tsv: cannot read" in err
    (tmp_path / "p.tsv").write_text("a\n")
    code, _, err = _run(
        "score", "--metric", "blue", "--pred", str(tmp_path / "p.tsv"), "--ref", str(tmp_path / "p.tsv")
    )
    assert code == 2 and "unknown metric 'blue'" in err


@pytest.mark.slow
def test_serve_command_runs_a_real_server() -> None:
    port = free_port()
    env = {**os.environ, "HYOKA_METRICS_AUTH_TOKEN": "tok"}
    process = subprocess.Popen(
        [sys.executable, "-m", "hyoka.metrics", "serve", "--port", str(port), "--host", "127.0.0.1", "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        channel = sync_channel(ChannelConfig(f"127.0.0.1:{port}", auth_token="tok"))
        grpc.channel_ready_future(channel).result(timeout=60)
        stub = metrics_pb2_grpc.MetricsServiceStub(channel)
        deadline = time.monotonic() + 30
        while True:
            try:
                response = stub.Score(
                    metrics_pb2.ScoreRequest(
                        metric="exact_match", items=[metrics_pb2.ScoreItem(prediction="a", references=["a"])]
                    ),
                    timeout=10,
                )
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert response.corpus_score == 1.0
        channel.close()
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert f"serving on 127.0.0.1:{port}" in output

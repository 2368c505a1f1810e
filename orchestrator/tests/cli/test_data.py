"""`hyoka data` through the typer app, against a loopback HTTP mirror of a data directory the
test builds (files copied from the offline copy into tmp_path, or written here): pull, skip,
licences, unpinned warnings, list / verify states and exit codes, and input errors (exit 2)."""

from __future__ import annotations

import functools
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyoka.orchestrator.cli import app
from hyoka.orchestrator.datasets.cache import LOCK_NAME
from hyoka.orchestrator.datasets.manifest import load_manifest

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_mirror_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYOKA_DATA_MIRROR", raising=False)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror_root(tmp_path: Path) -> Path:
    root = tmp_path / "mirror"
    root.mkdir()
    return root


@pytest.fixture
def mirror(mirror_root: Path) -> Iterator[str]:
    """A static HTTP server over `mirror_root` on 127.0.0.1 (what an air-gapped site would run)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(mirror_root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _copy_folder(data_dir: Path, name: str, dest: Path) -> None:
    """Copy the manifest files of one folder from the offline copy (into tmp_path only)."""
    for entry in load_manifest().folders[name].files:
        target = dest / entry.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / entry.relpath, target)


def test_pull_list_verify_through_a_mirror(data_dir: Path, mirror_root: Path, mirror: str, tmp_path: Path) -> None:
    _copy_folder(data_dir, "jcommonsenseqa", mirror_root)
    _copy_folder(data_dir, "jmmlu", mirror_root)
    cache = tmp_path / "cache"
    result = runner.invoke(
        app, ["data", "pull", "jcommonsenseqa", "jmmlu", "--data-dir", str(cache), "--mirror", mirror]
    )
    assert result.exit_code == 0, result.output
    assert "licence: CC BY-SA 4.0" in result.output and "STEP Corporation" in result.output
    assert "fetched jcommonsenseqa/valid-v1.3.json (sha256 verified)" in result.output
    assert "57 fetched, 0 already present, 0 failed" in result.output
    assert (cache / "jmmlu/by_sa/world_history.csv").read_bytes() == (
        data_dir / "jmmlu/by_sa/world_history.csv"
    ).read_bytes()
    assert not [p for p in cache.rglob("*.part")]

    again = runner.invoke(app, ["data", "pull", "jcommonsenseqa", "--data-dir", str(cache), "--mirror", mirror])
    assert again.exit_code == 0 and "0 fetched, 3 already present, 0 failed" in again.output

    (cache / "jcommonsenseqa/fewshot/train-v1.1.json").write_bytes(b"[]")
    (cache / "jcommonsenseqa/LICENSE.upstream").unlink()
    listing = runner.invoke(app, ["data", "list", "jcommonsenseqa", "--data-dir", str(cache)])
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert "jcommonsenseqa: JCommonsenseQA (JGLUE)  [1 corrupt, 1 missing, 1 verified]" in lines
    assert "  tasks: jcommonsenseqa" in lines and f"  path: {cache / 'jcommonsenseqa'}" in lines
    assert any(line.startswith("    verified  jcommonsenseqa/valid-v1.3.json") for line in lines)
    assert any(line.startswith("    missing   jcommonsenseqa/LICENSE.upstream") for line in lines)
    assert any(
        line.startswith("    corrupt   jcommonsenseqa/fewshot/train-v1.1.json  (sha256 mismatch: expected 9b55fae5")
        for line in lines
    )

    verify = runner.invoke(app, ["data", "verify", "jcommonsenseqa", "--data-dir", str(cache)])
    assert verify.exit_code == 1
    assert "error: 2 file(s) missing or failing their check" in verify.output
    assert runner.invoke(app, ["data", "verify", "jmmlu", "--data-dir", str(cache)]).exit_code == 0

    listing = runner.invoke(app, ["data", "list", "jcommonsenseqa", "--data-dir", str(cache), "--json"])
    doc = json.loads(listing.output)
    states = {f["relpath"]: f["state"] for f in doc["folders"][0]["files"]}
    assert states["jcommonsenseqa/fewshot/train-v1.1.json"] == "corrupt"

    repaired = runner.invoke(app, ["data", "pull", "jcommonsenseqa", "--data-dir", str(cache), "--mirror", mirror])
    assert repaired.exit_code == 0 and "2 fetched, 1 already present" in repaired.output
    assert runner.invoke(app, ["data", "verify", "jcommonsenseqa", "--data-dir", str(cache)]).exit_code == 0


def test_unpinned_files_are_recorded_and_reported(mirror_root: Path, mirror: str, tmp_path: Path) -> None:
    (mirror_root / "xlsum_ja/fewshot").mkdir(parents=True)
    (mirror_root / "xlsum_ja/test.csv").write_text("id,text,summary\n1,本文,要約\n", encoding="utf-8")
    (mirror_root / "xlsum_ja/fewshot/train.csv").write_text("id,text,summary\n2,本文,要約\n", encoding="utf-8")
    cache = tmp_path / "cache"
    result = runner.invoke(app, ["data", "pull", "xlsum_ja", "--data-dir", str(cache), "--mirror", mirror])
    assert result.exit_code == 0, result.output
    assert "licence: CC BY-NC-SA 4.0" in result.output and "Non-commercial" in result.output
    assert result.output.count("is UNPINNED") == 2
    assert json.loads((cache / LOCK_NAME).read_text())["files"]["xlsum_ja/test.csv"]["pin"] == "unpinned"
    listing = runner.invoke(app, ["data", "list", "xlsum_ja", "--data-dir", str(cache)])
    assert "[2 unpinned]" in listing.output and "verified" not in listing.output
    assert runner.invoke(app, ["data", "verify", "xlsum_ja", "--data-dir", str(cache)]).exit_code == 0


def test_a_failed_download_is_exit_1_naming_the_url(mirror: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    result = runner.invoke(app, ["data", "pull", "xwinograd", "--data-dir", str(cache), "--mirror", mirror])
    assert result.exit_code == 1
    assert f"error: {mirror}/xwinograd/dataset.tsv: HTTP 404" in result.output
    assert not (cache / "xwinograd/dataset.tsv").exists()


def test_the_offline_copy_lists_as_verified(data_dir: Path) -> None:
    result = runner.invoke(app, ["data", "list", "--data-dir", str(data_dir), "--json"])
    assert result.exit_code == 0, result.output
    folders = {f["name"]: f for f in json.loads(result.output)["folders"]}
    assert len(folders) == 18
    for name in ("jcommonsenseqa", "jemhopqa", "niilc", "mgsm", "jmmlu", "wmt20", "jhumaneval", "humaneval"):
        assert {f["state"] for f in folders[name]["files"]} == {"verified"}, name
    for name in ("openbookqa", "gsm8k", "mmlu", "bbh", "xwinograd"):
        assert {f["state"] for f in folders[name]["files"]} == {"verified"}, name
    present = [f for folder in folders.values() for f in folder["files"] if f["state"] != "missing"]
    assert len(present) >= 260 and {f["state"] for f in present} == {"verified"}
    assert {f["relpath"] for f in folders["jsquad"]["files"] if f["state"] == "missing"} == {
        "jsquad/fewshot/train-v1.1.json"
    }
    suite = runner.invoke(app, ["data", "verify", "jcommonsenseqa", "mmlu", "bbh", "--data-dir", str(data_dir)])
    assert suite.exit_code == 0 and "all files present and checked" in suite.output


def test_dry_run_plans_the_paper_suite_without_network(tmp_path: Path) -> None:
    cache = tmp_path / "empty"
    result = runner.invoke(app, ["data", "pull", "--suite", "paper", "--data-dir", str(cache), "--dry-run"])
    assert result.exit_code == 0, result.output
    headers = {line.split(":")[0] for line in result.output.splitlines() if line and not line.startswith(" ")}
    assert {"jcommonsenseqa", "mmlu", "wmt20", "xwinograd", "triviaqa", "xlsum_ja", "mgsm"} <= headers
    assert result.output.count("would fetch") == len(load_manifest().files())
    assert "https://people.eecs.berkeley.edu/~hendrycks/data.tar (member data/test/anatomy_test.csv)" in result.output
    assert not cache.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pull", "nosuchtask"], "error: unknown task or dataset folder 'nosuchtask'"),
        (["list", "nosuchtask"], "error: unknown task or dataset folder 'nosuchtask'"),
        (["pull", "--suite", "nope"], "error: unknown suite 'nope'"),
        (["pull"], "error: name tasks or dataset folders, or give --suite"),
        (["pull", "niilc", "--mirror", "ftp://x"], "error: mirror must be an http(s) URL"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", *args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.startswith(message) and result.output.count("\n") == 1

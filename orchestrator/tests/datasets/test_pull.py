"""`Puller` end to end against a loopback server, with manifests the tests write: downloads are
verified before they get their final name, present files are skipped, every failure (bad hash,
404, 500, a cut connection) names the URL and the check and leaves nothing behind; unpinned files
are trusted on first use and held to the lock afterwards; tar members and derived files are
produced from their source."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hyoka.orchestrator.datasets.cache import LOCK_NAME, FileState, Lock, file_status
from hyoka.orchestrator.datasets.fetch import NoProgress, RetryPolicy, make_client
from hyoka.orchestrator.datasets.manifest import Manifest, parse_manifest
from hyoka.orchestrator.datasets.pull import Puller, PullResult, check_mirror, mirror_url

A = b"alpha,1\nbeta,2\n"
B = "日本語の行\n".encode() * 50


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def manifest(files: list[dict[str, str]], sources: str = "") -> Manifest:
    lines = ["schema = 1", sources, "[folders.demo]", 'title = "Demo"', 'licence = "CC0"', 'tasks = ["demo_task"]']
    for f in files:
        lines.append("[[folders.demo.files]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in f.items()]
    return parse_manifest("\n".join(lines))


@contextmanager
def puller(data_dir: Path, m: Manifest, policy: RetryPolicy, **kwargs: Any) -> Iterator[Puller]:
    with make_client(policy) as client:
        yield Puller(data_dir, m, client, progress=NoProgress(), policy=policy, **kwargs)


def pull(data_dir: Path, m: Manifest, policy: RetryPolicy, **kwargs: Any) -> PullResult:
    with puller(data_dir, m, policy, **kwargs) as p:
        p.pull_folder(m.folders["demo"])
        return p.result


Leftovers = Callable[[Path], list[Path]]


def test_pull_downloads_verifies_and_records(
    file_server: Any, policy: RetryPolicy, tmp_path: Path, leftovers: Leftovers
) -> None:
    m = manifest(
        [
            {"relpath": "demo/a.csv", "url": file_server.add("/a.csv", A), "sha256": sha(A)},
            {"relpath": "demo/sub/b.txt", "url": file_server.add("/b.txt", B), "sha256": sha(B)},
        ]
    )
    result = pull(tmp_path, m, policy)
    assert result.ok and result.fetched == ["demo/a.csv", "demo/sub/b.txt"] and result.warnings == []
    assert (tmp_path / "demo/a.csv").read_bytes() == A
    assert (tmp_path / "demo/sub/b.txt").read_bytes() == B
    assert Lock.load(tmp_path).sha256("demo/sub/b.txt") == sha(B)
    assert leftovers(tmp_path) == []


def test_a_second_pull_fetches_nothing(file_server: Any, policy: RetryPolicy, tmp_path: Path) -> None:
    m = manifest([{"relpath": "demo/a.csv", "url": file_server.add("/a.csv", A), "sha256": sha(A)}])
    assert pull(tmp_path, m, policy).fetched == ["demo/a.csv"]
    again = pull(tmp_path, m, policy)
    assert again.fetched == [] and again.skipped == ["demo/a.csv"]
    assert file_server.hits("/a.csv") == 1
    assert pull(tmp_path, m, policy, force=True).fetched == ["demo/a.csv"]
    assert file_server.hits("/a.csv") == 2


def test_a_checksum_mismatch_names_url_path_and_both_hashes(
    file_server: Any, policy: RetryPolicy, tmp_path: Path, leftovers: Leftovers
) -> None:
    tampered = b"tampered\n"
    url = file_server.add("/a.csv", tampered)
    m = manifest([{"relpath": "demo/a.csv", "url": url, "sha256": sha(A)}])
    result = pull(tmp_path, m, policy)
    assert result.fetched == []
    [failure] = result.failures
    assert failure == f"{url}: demo/a.csv: sha256 mismatch: expected {sha(A)}, got {sha(tampered)}"
    assert not (tmp_path / "demo/a.csv").exists()
    assert leftovers(tmp_path) == []
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_corrupt_file_is_replaced(file_server: Any, policy: RetryPolicy, tmp_path: Path) -> None:
    m = manifest([{"relpath": "demo/a.csv", "url": file_server.add("/a.csv", A), "sha256": sha(A)}])
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo/a.csv").write_bytes(b"half a fil")
    lines: list[str] = []
    result = pull(tmp_path, m, policy, log=lines.append)
    assert result.fetched == ["demo/a.csv"] and (tmp_path / "demo/a.csv").read_bytes() == A
    assert any("sha256 mismatch" in line and "fetching it again" in line for line in lines)


@pytest.mark.parametrize(("status", "hits"), [(404, 1), (500, 3)])
def test_http_errors_are_reported_and_nothing_is_written(
    file_server: Any, policy: RetryPolicy, tmp_path: Path, leftovers: Leftovers, status: int, hits: int
) -> None:
    url = file_server.add("/a.csv", A, status=status)
    result = pull(tmp_path, manifest([{"relpath": "demo/a.csv", "url": url, "sha256": sha(A)}]), policy)
    [failure] = result.failures
    assert failure.startswith(f"{url}: ") and f"HTTP {status}" in failure
    assert file_server.hits("/a.csv") == hits
    assert not (tmp_path / "demo/a.csv").exists()
    assert leftovers(tmp_path) == []


def test_an_interrupted_download_leaves_nothing_half_written(
    file_server: Any, policy: RetryPolicy, tmp_path: Path, leftovers: Leftovers
) -> None:
    url = file_server.add("/b.txt", B, cut_after=100, ranges=False)
    result = pull(tmp_path, manifest([{"relpath": "demo/b.txt", "url": url, "sha256": sha(B)}]), policy)
    [failure] = result.failures
    assert failure.startswith(f"{url}: download failed after 3 attempts")
    assert not (tmp_path / "demo/b.txt").exists()
    assert leftovers(tmp_path) == []


def test_an_interruption_once_is_resumed(file_server: Any, policy: RetryPolicy, tmp_path: Path) -> None:
    url = file_server.add("/b.txt", B, cut_after=100, cut_times=1)
    result = pull(tmp_path, manifest([{"relpath": "demo/b.txt", "url": url, "sha256": sha(B)}]), policy)
    assert result.ok and (tmp_path / "demo/b.txt").read_bytes() == B


def test_unpinned_files_are_trusted_on_first_use_then_held_to_the_lock(
    file_server: Any, policy: RetryPolicy, tmp_path: Path, leftovers: Leftovers
) -> None:
    url = file_server.add("/b.txt", B)
    m = manifest([{"relpath": "demo/b.txt", "url": url, "sha256": ""}])
    first = pull(tmp_path, m, policy)
    assert first.fetched == ["demo/b.txt"]
    [warning] = first.warnings
    assert "demo/b.txt is UNPINNED" in warning and sha(B) in warning and LOCK_NAME in warning
    lock = Lock.load(tmp_path)
    assert lock.sha256("demo/b.txt") == sha(B) and lock.files["demo/b.txt"].url == url
    status = file_status(tmp_path, m.folders["demo"].files[0], lock)
    assert status.state is FileState.UNPINNED and "matches the hash recorded" in status.detail
    assert pull(tmp_path, m, policy).skipped == ["demo/b.txt"]

    # Upstream changes under the same URL: the next download no longer matches the first one.
    (tmp_path / "demo/b.txt").unlink()
    file_server.add("/b.txt", B + b"extra\n")
    result = pull(tmp_path, m, policy)
    [failure] = result.failures
    assert f"{url}: demo/b.txt: lock sha256 mismatch: expected {sha(B)}" in failure
    assert "delete that entry to trust the new file" in failure
    assert not (tmp_path / "demo/b.txt").exists() and leftovers(tmp_path) == []


def test_an_unpinned_file_already_present_is_recorded_with_a_warning(
    file_server: Any, policy: RetryPolicy, tmp_path: Path
) -> None:
    m = manifest([{"relpath": "demo/b.txt", "url": file_server.add("/b.txt", B), "sha256": ""}])
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo/b.txt").write_bytes(b"copied by hand\n")
    result = pull(tmp_path, m, policy)
    assert result.fetched == [] and file_server.hits("/b.txt") == 0
    assert "already present" in result.warnings[0]
    assert Lock.load(tmp_path).sha256("demo/b.txt") == sha(b"copied by hand\n")


def test_git_blob_pins_a_file_with_no_published_sha256(file_server: Any, policy: RetryPolicy, tmp_path: Path) -> None:
    good = manifest([{"relpath": "demo/b.txt", "url": file_server.add("/b.txt", B), "git_blob": git_blob(B)}])
    result = pull(tmp_path, good, policy)
    assert result.ok and result.warnings == []
    assert file_status(tmp_path, good.folders["demo"].files[0], Lock.load(tmp_path)).state is FileState.VERIFIED
    bad = manifest([{"relpath": "demo/c.txt", "url": file_server.add("/c.txt", A), "git_blob": git_blob(B)}])
    [failure] = pull(tmp_path, bad, policy).failures
    assert f"demo/c.txt: git blob mismatch: expected {git_blob(B)}, got {git_blob(A)}" in failure


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _tar_manifest(urls: list[str], archive: bytes, files: list[dict[str, str]]) -> Manifest:
    alt = json.dumps(urls[1:])
    sources = f'[sources.pack]\nurl = "{urls[0]}"\nalt_urls = {alt}\nsha256 = "{sha(archive)}"\nkind = "tar"\n'
    return manifest(files, sources)


def test_tar_members_are_extracted_and_checked(
    file_server: Any, policy: RetryPolicy, tmp_path: Path, leftovers: Leftovers
) -> None:
    archive = _tar({"data/test/x_test.csv": A, "./data/dev/x_dev.csv": B, "data/README.txt": b"readme"})
    url = file_server.add("/data.tar", archive)
    files = [
        {"relpath": "demo/test/x_test.csv", "source": "pack", "member": "data/test/x_test.csv", "sha256": sha(A)},
        {"relpath": "demo/dev/x_dev.csv", "source": "pack", "member": "data/dev/x_dev.csv", "sha256": sha(B)},
    ]
    result = pull(tmp_path, _tar_manifest([url], archive, files), policy)
    assert result.ok and sorted(result.fetched) == ["demo/dev/x_dev.csv", "demo/test/x_test.csv"]
    assert (tmp_path / "demo/test/x_test.csv").read_bytes() == A
    assert (tmp_path / "demo/dev/x_dev.csv").read_bytes() == B
    assert leftovers(tmp_path) == [] and file_server.hits("/data.tar") == 1
    assert Lock.load(tmp_path).files["demo/test/x_test.csv"].url == f"{url} (member data/test/x_test.csv)"


def test_a_source_falls_back_to_its_alternative_url(file_server: Any, policy: RetryPolicy, tmp_path: Path) -> None:
    archive = _tar({"data/test/x_test.csv": A})
    files = [{"relpath": "demo/x.csv", "source": "pack", "member": "data/test/x_test.csv", "sha256": sha(A)}]
    m = _tar_manifest([file_server.url + "/gone.tar", file_server.add("/mirror.tar", archive)], archive, files)
    assert pull(tmp_path, m, policy).fetched == ["demo/x.csv"]


def test_a_source_with_a_bad_checksum_produces_nothing(
    file_server: Any, policy: RetryPolicy, tmp_path: Path, leftovers: Leftovers
) -> None:
    archive = _tar({"data/test/x_test.csv": A})
    url = file_server.add("/data.tar", _tar({"data/test/x_test.csv": b"other"}))
    files = [{"relpath": "demo/x.csv", "source": "pack", "member": "data/test/x_test.csv", "sha256": sha(A)}]
    [failure] = pull(tmp_path, _tar_manifest([url], archive, files), policy).failures
    assert failure.startswith(f"{url}: source pack: sha256 mismatch: expected {sha(archive)}, got ")
    assert not (tmp_path / "demo/x.csv").exists() and leftovers(tmp_path) == []


def test_a_member_missing_from_the_archive_is_named(file_server: Any, policy: RetryPolicy, tmp_path: Path) -> None:
    archive = _tar({"data/test/x_test.csv": A})
    url = file_server.add("/data.tar", archive)
    files = [
        {"relpath": "demo/x.csv", "source": "pack", "member": "data/test/x_test.csv", "sha256": sha(A)},
        {"relpath": "demo/y.csv", "source": "pack", "member": "data/test/y_test.csv", "sha256": sha(B)},
    ]
    result = pull(tmp_path, _tar_manifest([url], archive, files), policy)
    assert result.fetched == ["demo/x.csv"]
    assert result.failures == [f"{url} (member data/test/y_test.csv): demo/y.csv: not in the archive"]


EXEMPLARS_PY = '''"""Prompts."""
raise SystemExit("this file must never be executed")
EXEMPLAR_NUMBER_ANSWERS = [11, 29]
EXEMPLAR_EQUATION_SOLUTIONS = ["5 + 6 = 11.", "4 * 5 = 20. 9 + 20 = 29."]
MGSM_EXEMPLARS = {
    "ja": {
        "2": {"q": "問題：二つ目", "a": "ステップごとの答え：29です。"},
        "1": {"q": "問題：一つ目\\n改行", "a": "ステップごとの答え：11です。"},
    },
}
'''


def test_mgsm_exemplars_are_derived_without_running_the_source(
    file_server: Any, policy: RetryPolicy, tmp_path: Path
) -> None:
    source = EXEMPLARS_PY.encode()
    expected = (
        '{"exemplar": 1, "question": "問題：一つ目\\n改行", "answer": "ステップごとの答え：11です。", '
        '"answer_number": 11, "equation_solution": "5 + 6 = 11."}\n'
        '{"exemplar": 2, "question": "問題：二つ目", "answer": "ステップごとの答え：29です。", '
        '"answer_number": 29, "equation_solution": "4 * 5 = 20. 9 + 20 = 29."}\n'
    ).encode()
    url = file_server.add("/exemplars.py", source)
    sources = f'[sources.ex]\nurl = "{url}"\nsha256 = "{sha(source)}"\nkind = "mgsm-exemplars"\n'
    files = [{"relpath": "demo/fewshot/exemplars_ja.jsonl", "source": "ex", "member": "ja", "sha256": sha(expected)}]
    result = pull(tmp_path, manifest(files, sources), policy)
    assert result.ok, result.failures
    assert (tmp_path / "demo/fewshot/exemplars_ja.jsonl").read_bytes() == expected


def test_a_mirror_serves_every_file_by_relpath(file_server: Any, policy: RetryPolicy, tmp_path: Path) -> None:
    archive = _tar({"data/test/x_test.csv": A})
    sources = f'[sources.pack]\nurl = "http://upstream.invalid/data.tar"\nsha256 = "{sha(archive)}"\nkind = "tar"\n'
    m = manifest(
        [
            {"relpath": "demo/a.csv", "url": "http://upstream.invalid/a.csv", "sha256": sha(A)},
            {"relpath": "demo/x y.csv", "source": "pack", "member": "data/test/x_test.csv", "sha256": sha(A)},
        ],
        sources,
    )
    file_server.add("/copy/demo/a.csv", A)
    file_server.add("/copy/demo/x%20y.csv", A)
    result = pull(tmp_path, m, policy, mirror=check_mirror(file_server.url + "/copy/"))
    assert result.ok and sorted(result.fetched) == ["demo/a.csv", "demo/x y.csv"]
    assert mirror_url("http://h/copy/", "mmlu/test/a b.csv") == "http://h/copy/mmlu/test/a%20b.csv"


def test_a_mirror_must_be_http() -> None:
    with pytest.raises(ValueError, match="mirror must be an http"):
        check_mirror("file:///srv/copy")

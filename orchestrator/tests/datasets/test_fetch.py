"""The downloader against a loopback server: streaming, error statuses, retries, a body cut short
(resumed with a Range request when possible), and no temporary file left after a failure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hyoka.orchestrator.datasets.fetch import DownloadError, NoProgress, RetryPolicy, download, make_client

BODY = bytes(range(256)) * 400  # 102,400 bytes


class Recorder(NoProgress):
    def __init__(self) -> None:
        self.updates: list[tuple[int, int | None]] = []

    def update(self, completed: int, total: int | None) -> None:
        self.updates.append((completed, total))


def _get(url: str, dest: Path, policy: RetryPolicy, progress: Any = None) -> None:
    with make_client(policy) as client:
        download(client, url, dest, label="test", progress=progress or NoProgress(), policy=policy)


def test_downloads_the_body_and_reports_progress(file_server: Any, policy: RetryPolicy, tmp_path: Path) -> None:
    url = file_server.add("/f.bin", BODY)
    dest = tmp_path / "f.part"
    progress = Recorder()
    _get(url, dest, policy, progress)
    assert dest.read_bytes() == BODY
    assert progress.updates[-1] == (len(BODY), len(BODY))


def test_404_is_not_retried_and_names_the_url(file_server: Any, policy: RetryPolicy, tmp_path: Path) -> None:
    dest = tmp_path / "f.part"
    dest.touch()
    with pytest.raises(DownloadError, match=r"/missing\.bin: HTTP 404"):
        _get(file_server.url + "/missing.bin", dest, policy)
    assert file_server.hits("/missing.bin") == 1
    assert not dest.exists()


def test_500_is_retried_then_reported(file_server: Any, policy: RetryPolicy, tmp_path: Path) -> None:
    url = file_server.add("/f.bin", BODY, status=500)
    dest = tmp_path / "f.part"
    with pytest.raises(DownloadError, match=r"f\.bin: download failed after 3 attempts \(HTTP 500"):
        _get(url, dest, policy)
    assert file_server.hits("/f.bin") == 3
    assert not dest.exists()


def test_a_transient_503_then_success(file_server: Any, policy: RetryPolicy, tmp_path: Path) -> None:
    url = file_server.add("/f.bin", BODY, status=503, fail_times=2)
    dest = tmp_path / "f.part"
    _get(url, dest, policy)
    assert dest.read_bytes() == BODY


def test_a_cut_body_is_resumed_with_a_range_request(file_server: Any, policy: RetryPolicy, tmp_path: Path) -> None:
    url = file_server.add("/f.bin", BODY, cut_after=30_000, cut_times=1)
    dest = tmp_path / "f.part"
    _get(url, dest, policy)
    assert dest.read_bytes() == BODY
    ranges = [r for p, r in file_server.requests if p == "/f.bin"]
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1].removeprefix("bytes=").rstrip("-")) > 0


def test_without_range_support_the_download_starts_over(file_server: Any, policy: RetryPolicy, tmp_path: Path) -> None:
    url = file_server.add("/f.bin", BODY, cut_after=30_000, cut_times=1, ranges=False)
    dest = tmp_path / "f.part"
    _get(url, dest, policy)
    assert dest.read_bytes() == BODY


def test_a_body_always_cut_short_fails_and_leaves_nothing(
    file_server: Any, policy: RetryPolicy, tmp_path: Path, leftovers: Callable[[Path], list[Path]]
) -> None:
    url = file_server.add("/f.bin", BODY, cut_after=1000, ranges=False)
    dest = tmp_path / "f.part"
    with pytest.raises(DownloadError, match=r"f\.bin: download failed after 3 attempts"):
        _get(url, dest, policy)
    assert not dest.exists()
    assert leftovers(tmp_path) == []


def test_nothing_listens(policy: RetryPolicy, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=rf"127\.0\.0\.1:{port}/x: download failed after 3 attempts \(Connect"):
        _get(f"http://127.0.0.1:{port}/x", tmp_path / "x.part", policy)


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(backoff_s=1.0, max_backoff_s=5.0)
    assert [policy.delay(i) for i in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]

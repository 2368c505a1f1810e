"""HTTP downloads into a temporary file: streamed to disk, with timeouts, retries with backoff on
transient failures (connection errors, a body cut short, 429 and 5xx), resumed with an HTTP Range
request when the server allows it. Verifying and moving into place is the caller's job
(`pull.py`); a failed download removes its temporary file.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "hyoka-data (+https://github.com/; benchmark data fetcher)"
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-\d+/(\d+|\*)$")


class DownloadError(RuntimeError):
    """A URL could not be fetched (after retries, where retrying made sense)."""


class Progress(Protocol):
    """Where download progress goes (a rich progress bar in the CLI, nothing in tests)."""

    def start(self, label: str, total: int | None) -> None: ...

    def update(self, completed: int, total: int | None) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    def start(self, label: str, total: int | None) -> None:
        pass

    def update(self, completed: int, total: int | None) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff_s: float = 1.0  # doubled after each failed attempt, capped at max_backoff_s
    max_backoff_s: float = 30.0
    timeout: httpx.Timeout = field(default_factory=lambda: httpx.Timeout(60.0, connect=15.0))
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int) -> float:
        return float(min(self.backoff_s * 2**attempt, self.max_backoff_s))


def make_client(policy: RetryPolicy) -> httpx.Client:
    # identity encoding: the bytes on disk are the file's bytes, and Range offsets mean file offsets.
    return httpx.Client(
        follow_redirects=True,
        timeout=policy.timeout,
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )


class _Transient(Exception):
    """Worth another attempt; `restart` drops what was received (the server will not resume)."""

    def __init__(self, message: str, *, restart: bool = False) -> None:
        super().__init__(message)
        self.restart = restart


def _resume_offset(response: httpx.Response, offset: int) -> int:
    """Where the body of `response` starts in the file: `offset` for a matching 206, else 0."""
    if offset and response.status_code == 206:
        match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
        if match and int(match.group(1)) == offset:
            return offset
        got = response.headers.get("content-range")
        raise _Transient(f"server answered the range request from byte {offset} with {got!r}", restart=True)
    return 0


def download(
    client: httpx.Client,
    url: str,
    dest: Path,
    *,
    label: str,
    progress: Progress,
    policy: RetryPolicy,
) -> None:
    """Stream `url` into the (temporary) file `dest`, resuming after a transient failure.
    Raises DownloadError naming the URL and what went wrong; `dest` is then removed."""
    offset = 0
    last_error = ""
    progress.start(label, None)
    try:
        for attempt in range(policy.attempts):
            if attempt:
                policy.sleep(policy.delay(attempt - 1))
            try:
                offset = _attempt(client, url, dest, offset, progress)
                return
            except _Transient as e:
                last_error = str(e)
                offset = 0 if e.restart else dest.stat().st_size if dest.exists() else 0
            except httpx.TransportError as e:  # connect/read errors, timeouts, a body cut short
                last_error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                offset = dest.stat().st_size if dest.exists() else 0
        raise DownloadError(f"{url}: download failed after {policy.attempts} attempts ({last_error})")
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    finally:
        progress.finish()


def _attempt(client: httpx.Client, url: str, dest: Path, offset: int, progress: Progress) -> int:
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code == 416 and offset:
            raise _Transient("server refused to resume (HTTP 416)", restart=True)
        if response.status_code in RETRYABLE_STATUS:
            raise _Transient(f"HTTP {response.status_code} {response.reason_phrase}")
        if response.status_code >= 400:
            raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
        start = _resume_offset(response, offset)
        length = response.headers.get("content-length")
        total = start + int(length) if length and length.isdigit() else None
        done = start
        progress.update(done, total)
        with dest.open("r+b" if start else "wb") as f:
            f.seek(start)
            f.truncate()
            for chunk in response.iter_bytes():
                f.write(chunk)
                done += len(chunk)
                progress.update(done, total)
        if total is not None and done != total:
            raise _Transient(f"body ended after {done} of {total} bytes")
        return done

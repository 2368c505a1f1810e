"""A loopback HTTP server for the dataset tests: files the test writes, served with the faults a
real download meets (error statuses, a body cut short, Range requests). Nothing leaves 127.0.0.1."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from hyoka.orchestrator.datasets.fetch import RetryPolicy


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    cut_after: int | None = None  # send only this many body bytes, then drop the connection
    cut_times: int = 0  # ...for this many requests (0 with cut_after set: every request)
    fail_times: int = 0  # answer `status` this many times first, then 200 (0: always `status`)
    ranges: bool = True  # honour "Range: bytes=N-"
    served: int = 0


@dataclass
class FileServer:
    url: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)

    def add(self, path: str, body: bytes, **kwargs: object) -> str:
        self.routes[path] = Route(body=body, **kwargs)  # type: ignore[arg-type]
        return self.url + path

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


def _handler(server: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            server.requests.append((self.path, rng))
            route = server.routes.get(self.path)
            if route is None:
                self.send_error(404, "Not Found")
                return
            route.served += 1
            failing = route.served <= route.fail_times if route.fail_times else route.status != 200
            if failing:
                self.send_error(route.status)
                return
            body, status, start = route.body, 200, 0
            match = re.fullmatch(r"bytes=(\d+)-", rng or "")
            if match and route.ranges and int(match.group(1)) < len(body):
                start, status = int(match.group(1)), 206
            self.send_response(status)
            self.send_header("Content-Length", str(len(body) - start))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Accept-Ranges", "bytes" if route.ranges else "none")
            self.end_headers()
            cut = route.cut_after is not None and (route.cut_times == 0 or route.served <= route.cut_times)
            payload = body[start:]
            if cut and route.cut_after is not None:
                self.wfile.write(payload[: route.cut_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    server = FileServer(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def policy() -> RetryPolicy:
    """Fast retries: no waiting between attempts, short timeouts."""
    return RetryPolicy(attempts=3, backoff_s=0.0, timeout=httpx.Timeout(10.0), sleep=lambda _s: None)


@pytest.fixture
def leftovers() -> Callable[[Path], list[Path]]:
    """Lists the temporary files a download may have left in a directory."""

    def find(directory: Path) -> list[Path]:
        return [p for p in directory.rglob("*") if p.name.endswith(".part") or p.name == ".hyoka-downloads"]

    return find

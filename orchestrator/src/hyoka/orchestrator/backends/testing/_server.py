"""A small JSON-over-HTTP server on 127.0.0.1 (stdlib `ThreadingHTTPServer`, in a background thread).

The protocol servers only need routing, JSON bodies, status codes and concurrent requests (to show
429 behaviour); the standard library does that without adding a web framework to the environment.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-serialisable; None sends an empty body
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[Any], Reply]


class JsonHttpServer:
    """Serve `routes[(method, path)](json_body) -> Reply` on 127.0.0.1 at a free port.

    `hits[(path, status)]` counts requests as answered, so tests can assert retries and 429s.
    """

    bad_json_status = 400

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.hits: Counter[tuple[str, int]] = Counter()
        self._hits_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: tests read `hits` instead

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

            def _dispatch(self, method: str) -> None:
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                route = server.routes.get((method, path))
                if route is None:
                    reply = Reply(404, {"error": f"no route {method} {path}"})
                else:
                    try:
                        body = json.loads(raw) if raw else None
                    except ValueError as e:
                        reply = Reply(server.bad_json_status, {"error": f"invalid JSON: {e}"})
                    else:
                        try:
                            reply = route(body)
                        except Exception as e:  # a bug in a test server must show, not hang the client
                            reply = Reply(500, {"error": f"{type(e).__name__}: {e}"})
                with server._hits_lock:
                    server.hits[(path, reply.status)] += 1
                data = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

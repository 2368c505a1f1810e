"""HTTP/1.1 keep-alive over asyncio streams: the httpx transport of the HTTP backends.

Why not httpx's own (httpcore) pool: with a window of 128 requests in flight it costs about 6 ms
of CPU per request here, most of it scanning every pooled connection on each request event
(`_assign_requests_to_connections` asks each connection whether it is idle, which reads socket
state) and, where `sniffio` is absent, a failed import on every lock it creates. That makes the
client, not the model server, the bottleneck of a run. This transport keeps a stack of idle
connections per origin: a request takes one (or opens one), sends, reads the whole reply, and puts
the connection back unless either side asked to close it.

What it does: `Content-Length` and chunked bodies, replies without a length (read to EOF), TLS for
https (certifi's CA bundle), httpx's connect/read/write timeouts, and one silent retry on a fresh
connection when a kept-alive connection turns out closed by the server before any reply byte.
Errors are httpx's (`ConnectError`, `ConnectTimeout`, `ReadTimeout`, `WriteTimeout`, `ReadError`,
`RemoteProtocolError`), so the backends' retry rules (`_http.py`) apply unchanged. Bodies are not
streamed (model server replies are small JSON documents) and responses are not decompressed: it
asks for `Accept-Encoding: identity`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable
from typing import TypeVar

import httpx

T = TypeVar("T")
Origin = tuple[str, str, int]


class _Closed(Exception):
    """The server closed a reused connection before replying (safe to resend)."""


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


async def _within(awaitable: Awaitable[T], seconds: float | None) -> T:
    if seconds is None:
        return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


class AsyncioTransport(httpx.AsyncBaseTransport):
    """See the module docstring."""

    def __init__(self) -> None:
        self._idle: dict[Origin, list[_Conn]] = {}
        self._ssl: ssl.SSLContext | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            import certifi

            self._ssl = ssl.create_default_context(cafile=certifi.where())
        return self._ssl

    async def _open(self, request: httpx.Request, origin: Origin, connect_s: float | None) -> _Conn:
        scheme, host, port = origin
        tls = self._ssl_context() if scheme == "https" else None
        try:
            reader, writer = await _within(
                asyncio.open_connection(host, port, ssl=tls, server_hostname=host if tls else None, limit=2**24),
                connect_s,
            )
        except TimeoutError as e:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out", request=request) from e
        except OSError as e:
            raise httpx.ConnectError(str(e) or type(e).__name__, request=request) from e
        return _Conn(reader, writer)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {scheme!r}", request=request)
        origin: Origin = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread()
        head = [f"{request.method} ".encode() + url.raw_path + b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            if name.lower() != b"accept-encoding":
                head.append(name + b": " + value + b"\r\n")
        head.append(b"Accept-Encoding: identity\r\n\r\n")
        data = b"".join(head) + body

        idle = self._idle.setdefault(origin, [])
        while True:
            reused = False
            conn: _Conn | None = None
            while idle:
                candidate = idle.pop()
                if candidate.usable():
                    conn, reused = candidate, True
                    break
                candidate.close()
            if conn is None:
                conn = await self._open(request, origin, timeouts.get("connect"))
            try:
                status, headers, content, keep = await self._exchange(request, conn, data, timeouts, reused)
            except _Closed:
                conn.close()
                continue  # the kept-alive connection had gone: send again on a new one
            except BaseException:
                conn.close()  # cancelled or failed mid-exchange: the connection's state is unknown
                raise
            if keep:
                idle.append(conn)
            else:
                conn.close()
            return httpx.Response(
                status, headers=headers, stream=httpx.ByteStream(content), extensions={"http_version": b"HTTP/1.1"}
            )

    async def _exchange(
        self,
        request: httpx.Request,
        conn: _Conn,
        data: bytes,
        timeouts: dict[str, float | None],
        reused: bool,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        reader, writer = conn.reader, conn.writer
        try:
            writer.write(data)
            await _within(writer.drain(), timeouts.get("write"))
        except TimeoutError as e:
            raise httpx.WriteTimeout("writing the request timed out", request=request) from e
        except OSError as e:
            if reused:
                raise _Closed from e
            raise httpx.WriteError(str(e) or type(e).__name__, request=request) from e
        try:
            return await _within(self._read_response(request, reader, reused), timeouts.get("read"))
        except TimeoutError as e:
            raise httpx.ReadTimeout("reading the reply timed out", request=request) from e
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            raise httpx.RemoteProtocolError(f"malformed or cut reply ({type(e).__name__})", request=request) from e
        except OSError as e:
            raise httpx.ReadError(str(e) or type(e).__name__, request=request) from e

    async def _read_response(
        self, request: httpx.Request, reader: asyncio.StreamReader, reused: bool
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        try:
            line = await reader.readline()
        except ConnectionResetError:
            if reused:
                raise _Closed from None
            raise
        if not line:
            if reused:
                raise _Closed
            raise httpx.RemoteProtocolError("the server closed the connection without replying", request=request)
        version, _, rest = line.rstrip(b"\r\n").partition(b" ")
        status = int(rest.split(b" ", 1)[0])
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        chunked = False
        close = version == b"HTTP/1.0"
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise asyncio.IncompleteReadError(b"", None)
            name, _, value = line.rstrip(b"\r\n").partition(b":")
            name, value = name.strip(), value.strip()
            lower = name.lower()
            if lower == b"content-length":
                length = int(value)
            elif lower == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
                continue  # the body is handed over whole
            elif lower == b"connection":
                if b"close" in value.lower():
                    close = True
                elif b"keep-alive" in value.lower():
                    close = False
            headers.append((name, value))
        if request.method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return status, headers, b"", not close
        if chunked:
            parts = []
            while True:
                size = int((await reader.readline()).split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            content = b"".join(parts)
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
            headers.append((b"Content-Length", str(len(content)).encode()))
            return status, headers, content, not close
        if length is not None:
            return status, headers, await reader.readexactly(length), not close
        return status, headers, await reader.read(), False  # delimited by the server closing

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()

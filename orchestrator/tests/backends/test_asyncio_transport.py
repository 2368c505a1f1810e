"""The HTTP backends' transport (`backends/_transport.py`) against a raw asyncio server: kept-alive
connections are reused, chunked and length-less replies are read whole, a kept-alive connection the
server closed is replaced silently, and failures are httpx's errors (which the backends retry)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from hyoka.orchestrator.backends import BackendError, GenerationRequest
from hyoka.orchestrator.backends._transport import AsyncioTransport
from hyoka.orchestrator.backends.openai import OpenAICompletionsBackend
from hyoka.rpc.server import free_port

Reply = Callable[[bytes], bytes]  # request body -> raw reply bytes


class RawServer:
    def __init__(self, reply: Reply, *, close_after: bool = False, delay_s: float = 0.0) -> None:
        self.reply = reply
        self.close_after = close_after
        self.delay_s = delay_s
        self.connections = 0
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                length = 0
                while (h := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = h.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.requests += 1
                await asyncio.sleep(self.delay_s)
                writer.write(self.reply(body))
                await writer.drain()
                if self.close_after:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


def fixed(status: int, payload: object, extra: str = "") -> Reply:
    data = json.dumps(payload).encode()
    return lambda _body: (f"HTTP/1.1 {status} X\r\nContent-Length: {len(data)}\r\n{extra}\r\n").encode() + data


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[RawServer], asyncio.Future[str]]]:
    servers: list[asyncio.Server] = []

    async def start(raw: RawServer) -> str:
        server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start  # type: ignore[misc]
    for server in servers:
        server.close()


async def test_connections_are_kept_alive_and_reused(serve) -> None:  # type: ignore[no-untyped-def]
    raw = RawServer(fixed(200, {"ok": 1}))
    url = await serve(raw)
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        for _ in range(5):
            assert (await client.post(f"{url}/x?q=1", json={"a": 1})).json() == {"ok": 1}
        await asyncio.gather(*(client.get(f"{url}/y") for _ in range(3)))
    assert raw.requests == 8 and raw.connections == 3  # 3 at once at most


async def test_chunked_and_length_less_replies(serve) -> None:  # type: ignore[no-untyped-def]
    body = b'4\r\n{"a"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n'
    chunked = RawServer(lambda _b: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    until_close = RawServer(lambda _b: b'HTTP/1.1 200 OK\r\n\r\n{"b": 2}', close_after=True)
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        for _ in range(2):
            assert (await client.get(await serve(chunked))).json() == {"a": 1}
        for _ in range(2):
            assert (await client.get(await serve(until_close))).json() == {"b": 2}


async def test_a_kept_alive_connection_closed_by_the_server_is_replaced(serve) -> None:  # type: ignore[no-untyped-def]
    raw = RawServer(fixed(200, {"ok": 1}), close_after=True)  # closes after each reply, without saying so
    url = await serve(raw)
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        for _ in range(3):
            await asyncio.sleep(0.05)  # let the close arrive, or not: both must work
            assert (await client.get(url)).json() == {"ok": 1}
    assert raw.requests == 3 and raw.connections == 3


async def test_errors_are_httpx_errors_and_backends_retry_them(serve) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(transport=AsyncioTransport(), timeout=httpx.Timeout(0.2)) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{free_port()}/")
        slow = await serve(RawServer(fixed(200, {}), delay_s=1.0))
        with pytest.raises(httpx.ReadTimeout):
            await client.get(slow)
        garbage = await serve(
            RawServer(lambda _b: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", close_after=True)
        )
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(garbage)
    backend = OpenAICompletionsBackend(
        base_url=f"http://127.0.0.1:{free_port()}", model="m", max_retries=2, backoff_s=0.01, backoff_max_s=0.01
    )
    with pytest.raises(BackendError, match=r"cannot connect .* \(gave up after 3 attempt\(s\)\)"):
        await backend.generate_until([GenerationRequest("x")])
    await backend.aclose()


async def test_overloaded_answers_are_retried_over_the_transport(serve) -> None:  # type: ignore[no-untyped-def]
    replies = [fixed(429, {"error": "busy"}, "Retry-After: 0\r\n"), fixed(503, {"error": "loading"})]
    models = fixed(200, {"object": "list", "data": [{"id": "m"}]})
    done = fixed(200, {"choices": [{"index": 0, "text": " ok"}]})

    def reply(body: bytes) -> bytes:
        if not body:
            return models(body)
        return replies.pop(0)(body) if replies else done(body)

    url = await serve(RawServer(reply))
    backend = OpenAICompletionsBackend(base_url=url, backoff_s=0.01, backoff_max_s=0.02)
    assert await backend.generate_until([GenerationRequest("x")]) == [[" ok"]]
    await backend.aclose()

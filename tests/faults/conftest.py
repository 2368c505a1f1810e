"""Helpers of the fault tests: a fault-injecting HTTP proxy in front of a model server, the metrics
computed in this process, and jcommonsenseqa items to run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from hyoka.metrics import Item as MetricItem
from hyoka.metrics import score
from hyoka.orchestrator.tasks import CorpusScore, Item, TextScore, get_task

#: What the proxy does with one POST /v1/completions attempt.
#: pass: forward it; 429/500/503: answer that status without asking the server; reset: forward it,
#: send the first half of the server's reply and reset the connection (RST); hang: send the
#: status line, the headers and part of the body, then send nothing more until the client leaves.
Action = str
Plan = Callable[[str, int], Action]  # (prompt, attempt number from 1) -> action


class FaultProxy:
    """HTTP/1.1 proxy on 127.0.0.1 in front of `upstream` (host, port) that injects faults into
    POST /v1/completions per `plan` and counts every attempt per prompt (`attempts`), every action
    taken (`actions`) and the replies it relayed whole (`relayed`). Other requests (the backend's
    /v1/models, /get_server_info) pass."""

    def __init__(self, upstream: tuple[str, int], plan: Plan) -> None:
        self.upstream = upstream
        self.plan = plan
        self.attempts: Counter[str] = Counter()
        self.actions: Counter[str] = Counter()
        self.relayed: Counter[str] = Counter()  # prompt -> whole replies sent back to the client
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.url = ""

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=1024)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client left, or the proxy stops (a handler's end is not an error)
        finally:
            self._handlers.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False: the connection is done."""
        request_line = await reader.readline()
        if not request_line:
            return False
        head = [request_line]
        length = 0
        while True:
            line = await reader.readline()
            if not line:
                return False
            head.append(line)
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        body = await reader.readexactly(length) if length else b""
        method, path, _ = request_line.decode("latin-1").split(" ", 2)
        action = "pass"
        key: str | None = None
        if (method, path) == ("POST", "/v1/completions"):
            prompt = json.loads(body)["prompt"]
            key = prompt if isinstance(prompt, str) else json.dumps(prompt)
            self.attempts[key] += 1
            action = self.plan(key, self.attempts[key])
            self.actions[action] += 1
        if action in ("429", "500", "503"):
            data = json.dumps({"object": "error", "message": f"injected {action}", "code": int(action)}).encode()
            extra = b"Retry-After: 0\r\n" if action == "429" else b""
            writer.write(
                f"HTTP/1.1 {action} Injected\r\nContent-Type: application/json\r\n".encode()
                + extra
                + f"Content-Length: {len(data)}\r\n\r\n".encode()
                + data
            )
            await writer.drain()
            return True
        if action == "hang":
            writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id')
            await writer.drain()
            await reader.read()  # until the client gives up and closes the connection
            return False
        reply = await self._forward(b"".join(head) + body)
        if action == "reset":
            writer.write(reply[: len(reply) // 2])
            await writer.drain()
            await asyncio.sleep(0.02)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # RST: "connection reset by peer" mid-reply
            return False
        writer.write(reply)
        await writer.drain()
        if key is not None:
            self.relayed[key] += 1
        return True

    async def _forward(self, request: bytes) -> bytes:
        """Send `request` to the upstream on a connection of its own; its whole reply."""
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            up_writer.write(request)
            await up_writer.drain()
            head = []
            length = 0
            while True:
                line = await up_reader.readline()
                if not line:
                    raise ConnectionResetError("the upstream closed the connection")  # the client's is closed too
                head.append(line)
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            return b"".join(head) + (await up_reader.readexactly(length) if length else b"")
        finally:
            up_writer.close()


class InProcessMetrics:
    """The metrics service's own code (`hyoka.metrics`) called in this process: these tests are
    about the model server's faults, not the metrics service's. Imported with this module: an
    import on the first score would stall the event loop for a second, past the short request
    deadlines these tests use."""

    async def score(
        self,
        metric: str,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]],
        options: Mapping[str, str] | None = None,
    ) -> list[TextScore]:
        pairs = zip(predictions, references, strict=True)
        result = score(metric, [MetricItem(p, tuple(r)) for p, r in pairs], options)
        return [TextScore(v, result.signature.text) for v in result.item_scores]

    async def corpus(
        self,
        metric: str,
        predictions: Sequence[str],
        references: Sequence[Sequence[str]],
        options: Mapping[str, str] | None = None,
    ) -> CorpusScore:
        pairs = zip(predictions, references, strict=True)
        result = score(metric, [MetricItem(p, tuple(r)) for p, r in pairs], options)
        return CorpusScore(result.corpus_score, result.signature.text, dict(result.details))


def task_items(data_dir: Path, name: str, limit: int) -> list[Item]:
    task = get_task(name)
    return task.items(task.load(data_dir), limit=limit)


def record_ids(path: Path) -> list[str]:
    """The item ids of a records export, one per line (duplicates kept, so tests can see them)."""
    if not path.exists():
        return []
    return [json.loads(line)["item_id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

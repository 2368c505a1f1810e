"""Load test of the three services under admission control (issue 14): many concurrent clients on
loopback, every call with a deadline, the whole run bounded in time.

Each service is started as a real subprocess with its default admission limits (override them
with --server-arg, e.g. --server-arg=--max-queued-calls=512) and driven with all its calls at once:

  sandbox  `hyoka-sandbox serve --workers 2`: --calls (default 1,000) concurrent Execute, a quarter
           each passing, failing (exit 1), timing out (busy loop, 2 s wall/CPU limit) and flooding
           stdout (stopped at 1 MiB: OUTPUT_LIMIT)
  metrics  `hyoka-metrics serve`: --calls (default 1,000) concurrent Score with char_f1_fuzzywuzzy,
           9 in 10 small (10 items), 1 in 10 large (5,000 items)
  analysis `hyoka serve`: --calls / 10 (default 100) concurrent Analyze with use_default_scores and
           use_default_budgets

and prints per service: calls/s, p50/p99 latency (by kind), the calls by status code, the
RetryInfo delays of the refused ones, and the server's peak RSS (its own VmHWM, and the peak sum
over its process tree: the sandbox's runs are child processes) and peak open descriptors, sampled
every 50 ms from /proc. Every call must end OK, RESOURCE_EXHAUSTED (carrying RetryInfo) or
DEADLINE_EXCEEDED, and a call started after the load must succeed; anything else is printed and
the exit code is 1.

Usage: .venv/bin/python benchmarks/load_services.py [--service sandbox|metrics|analysis|all]
           [--calls 1000] [--deadline 30] [--duration-limit 120] [--channels 50]
           [--server-arg=--max-queued-calls=512 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyoka.rpc.admission import retry_delay
from hyoka.rpc.client import ChannelConfig
from hyoka.rpc.server import free_port
from hyoka.v1 import analysis_pb2, analysis_pb2_grpc, metrics_pb2, metrics_pb2_grpc, sandbox_pb2, sandbox_pb2_grpc

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ACCEPTED = {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED}

PROGRAMS = {
    "pass": b"print(sum(range(1000)))\n",
    "fail": b"import sys\nprint('failing', file=sys.stderr)\nsys.exit(1)\n",
    "timeout": b"while True:\n    pass\n",
    "flood": b"import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
}
LIMITS = sandbox_pb2.ResourceLimits(wall_time_ms=2000, cpu_time_ms=2000, max_output_bytes=1024 * 1024)


# ------------------------------------------------------------------ the server and its footprint
class Sampler(threading.Thread):
    """Peak RSS (the process's own VmHWM, and the largest sum of VmRSS over its process tree)
    and peak open descriptors of `pid`, every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_rss_kib = 0
        self.peak_tree_rss_kib = 0
        self.peak_fds = 0
        self.peak_processes = 0
        self._done = threading.Event()

    @staticmethod
    def _status(pid: int) -> dict[str, int]:
        found = {}
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
        return found

    def _tree(self) -> list[int]:
        pids, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            with contextlib.suppress(OSError, ValueError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(child) for child in (task / "children").read_text().split()]
        return pids

    def sample(self) -> None:
        own = self._status(self.pid)
        self.peak_rss_kib = max(self.peak_rss_kib, own.get("VmHWM", 0), own.get("VmRSS", 0))
        tree = self._tree()
        self.peak_processes = max(self.peak_processes, len(tree))
        self.peak_tree_rss_kib = max(self.peak_tree_rss_kib, sum(self._status(p).get("VmRSS", 0) for p in tree))
        with contextlib.suppress(OSError):
            self.peak_fds = max(self.peak_fds, sum(1 for _ in Path(f"/proc/{self.pid}/fd").iterdir()))

    def run(self) -> None:
        while not self._done.wait(0.05):
            self.sample()

    def stop(self) -> None:
        self._done.set()
        self.join()
        self.sample()


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    target: str
    log: Path
    idle_rss_kib: int = 0
    idle_fds: int = 0


def start(name: str, argv: list[str], env: dict[str, str], log: Path, ready: str) -> Server:
    """Start a service and wait until it prints `ready` and health says SERVING."""
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in argv]
    out = log.open("wb")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO)
    target = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    channel = grpc.insecure_channel(target)
    try:
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(f"{name} did not start ({' '.join(argv)}):\n{log.read_text()[-3000:]}")
            if ready in log.read_text(errors="replace"):
                try:
                    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
            time.sleep(0.2)
    finally:
        channel.close()
    return Server(name, proc, target, log)


def stop(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


# ------------------------------------------------------------------ the clients
@dataclass
class Outcome:
    kind: str
    code: grpc.StatusCode
    seconds: float
    detail: str = ""
    retry_delay: float | None = None


@dataclass
class Load:
    """One service's calls: (kind, a coroutine factory taking a channel and a timeout)."""

    service: str
    method: str
    calls: list[tuple[str, Callable[[grpc.aio.Channel, float], Any]]]
    check_reply: Callable[[str, Any], str | None] = lambda kind, reply: None
    reply_counts: collections.Counter[str] = field(default_factory=collections.Counter)


async def drive(load: Load, target: str, channels: int, deadline: float, duration_limit: float) -> list[Outcome]:
    options = ChannelConfig(target).options()
    # Distinct channels: each its own TCP connection, so the server sees many clients.
    opened = [
        grpc.aio.insecure_channel(target, options=[*options, ("grpc.use_local_subchannel_pool", 1)])
        for _ in range(channels)
    ]
    for channel in opened:
        await channel.channel_ready()
    ends_at = time.monotonic() + duration_limit
    start_gate = asyncio.Event()

    async def one(index: int, kind: str, call: Callable[[grpc.aio.Channel, float], Any]) -> Outcome:
        await start_gate.wait()
        timeout = max(0.1, min(deadline, ends_at - time.monotonic()))
        started = time.monotonic()
        try:
            reply = await call(opened[index % channels], timeout)
        except grpc.aio.AioRpcError as error:
            return Outcome(
                kind,
                error.code(),
                time.monotonic() - started,
                error.details() or "",
                retry_delay(error) if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED else None,
            )
        seconds = time.monotonic() - started
        problem = load.check_reply(kind, reply)
        if problem is not None:
            return Outcome(kind, grpc.StatusCode.UNKNOWN, seconds, f"bad reply: {problem}")
        return Outcome(kind, grpc.StatusCode.OK, seconds)

    tasks = [asyncio.ensure_future(one(i, kind, call)) for i, (kind, call) in enumerate(load.calls)]
    await asyncio.sleep(0)
    start_gate.set()
    try:
        async with asyncio.timeout(duration_limit + 30):  # a hung call: never expected, reported if seen
            return list(await asyncio.gather(*tasks))
    except TimeoutError:
        done = [t.result() for t in tasks if t.done() and not t.cancelled()]
        hung = [Outcome("hung", grpc.StatusCode.UNKNOWN, duration_limit + 30, "no end past its deadline")]
        return done + hung * sum(1 for t in tasks if t.cancelled())
    finally:
        for channel in opened:
            await channel.close()


# ------------------------------------------------------------------ the three loads
def sandbox_load(calls: int) -> Load:
    kinds = list(PROGRAMS)
    expected = {
        "pass": sandbox_pb2.EXECUTION_STATUS_PASSED,
        "fail": sandbox_pb2.EXECUTION_STATUS_FAILED,
        "timeout": sandbox_pb2.EXECUTION_STATUS_TIMEOUT,
        "flood": sandbox_pb2.EXECUTION_STATUS_OUTPUT_LIMIT,
    }
    load = Load("sandbox", "Execute", [])

    def call(kind: str) -> Callable[[grpc.aio.Channel, float], Any]:
        request = sandbox_pb2.ExecuteRequest(program=PROGRAMS[kind], limits=LIMITS)

        def send(channel: grpc.aio.Channel, timeout: float) -> Any:
            return sandbox_pb2_grpc.SandboxServiceStub(channel).Execute(request, timeout=timeout)  # type: ignore[no-untyped-call]

        return send

    def check(kind: str, reply: Any) -> str | None:
        status = reply.result.status
        load.reply_counts[f"{kind}:{sandbox_pb2.ExecutionStatus.Name(status).removeprefix('EXECUTION_STATUS_')}"] += 1
        if status != expected[kind]:
            return f"{kind} program ended {sandbox_pb2.ExecutionStatus.Name(status)}: {reply.result.detail[:200]}"
        return None

    load.calls = [(kinds[i % 4], call(kinds[i % 4])) for i in range(calls)]
    load.check_reply = check
    return load


def metrics_load(calls: int) -> Load:
    def request(items: int) -> metrics_pb2.ScoreRequest:
        predictions = [
            f"2024年の東京都の推計人口はおよそ{i % 97}00万人で、日本の都道府県で最も多い。" for i in range(items)
        ]
        references = [f"東京都の人口は約{i % 89}00万人であり、都道府県別では最多である。" for i in range(items)]
        return metrics_pb2.ScoreRequest(
            metric="char_f1_fuzzywuzzy",
            columns=metrics_pb2.ScoreColumns(predictions=predictions, references=references),
        )

    requests = {"small": request(10), "large": request(5000)}
    sizes = {"small": 10, "large": 5000}

    def call(kind: str) -> Callable[[grpc.aio.Channel, float], Any]:
        def send(channel: grpc.aio.Channel, timeout: float) -> Any:
            return metrics_pb2_grpc.MetricsServiceStub(channel).Score(requests[kind], timeout=timeout)  # type: ignore[no-untyped-call]

        return send

    def check(kind: str, reply: Any) -> str | None:
        if len(reply.item_scores) != sizes[kind] or not 0 <= reply.corpus_score <= 1:
            return f"{len(reply.item_scores)} item scores for {sizes[kind]} items, corpus {reply.corpus_score}"
        return None

    kinds = ["large" if i % 10 == 5 else "small" for i in range(calls)]
    return Load("metrics", "Score", [(kind, call(kind)) for kind in kinds], check)


def analysis_load(calls: int) -> Load:
    request = analysis_pb2.AnalyzeRequest(use_default_scores=True, use_default_budgets=True)

    def send(channel: grpc.aio.Channel, timeout: float) -> Any:
        return analysis_pb2_grpc.AnalysisServiceStub(channel).Analyze(request, timeout=timeout)  # type: ignore[no-untyped-call]

    def check(kind: str, reply: Any) -> str | None:
        return None if reply.ByteSize() > 0 else "an empty AnalyzeResponse"

    return Load("analysis", "Analyze", [("analyze", send)] * calls, check)


# ------------------------------------------------------------------ report
def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"p50 {percentile(values, 0.5) * 1000:.0f} ms, p99 {percentile(values, 0.99) * 1000:.0f} ms, n={len(values)}"


def report(load: Load, outcomes: list[Outcome], wall: float, sampler: Sampler, server: Server, after: str) -> bool:
    ok = [o for o in outcomes if o.code == grpc.StatusCode.OK]
    print(f"  wall {wall:.1f} s; {len(outcomes) / wall:.1f} calls/s ended, {len(ok) / wall:.1f} calls/s OK")
    codes = collections.Counter(o.code.name for o in outcomes)
    print("  status: " + ", ".join(f"{name} {count}" for name, count in codes.most_common()))
    kinds = sorted({o.kind for o in outcomes})
    for kind in kinds:
        mine = [o for o in outcomes if o.kind == kind]
        by_code = collections.Counter(o.code.name for o in mine)
        print(
            f"  {kind:>8}: OK latency {ms([o.seconds for o in mine if o.code == grpc.StatusCode.OK])}; "
            + ", ".join(f"{name} {count}" for name, count in sorted(by_code.items()))
        )
    refused = [o for o in outcomes if o.code == grpc.StatusCode.RESOURCE_EXHAUSTED]
    if refused:
        delays = [o.retry_delay for o in refused if o.retry_delay is not None]
        print(
            f"  RESOURCE_EXHAUSTED: answered in {ms([o.seconds for o in refused])}; RetryInfo on "
            f"{len(delays)}/{len(refused)}" + (f", retry_delay {min(delays):g}-{max(delays):g} s" if delays else "")
        )
        print(f"    e.g. {refused[0].detail!r}")
    expired = [o for o in outcomes if o.code == grpc.StatusCode.DEADLINE_EXCEEDED]
    if expired:
        print(f"  DEADLINE_EXCEEDED: ended after {ms([o.seconds for o in expired])}")
    if load.reply_counts:
        print("  replies: " + ", ".join(f"{k} {v}" for k, v in sorted(load.reply_counts.items())))
    print(
        f"  server: peak RSS {sampler.peak_rss_kib / 1024:.0f} MiB (idle {server.idle_rss_kib / 1024:.0f} MiB), "
        f"process tree peak {sampler.peak_tree_rss_kib / 1024:.0f} MiB over up to {sampler.peak_processes} "
        f"processes, peak open fds {sampler.peak_fds} (idle {server.idle_fds})"
    )
    print(f"  after the load: {after}")
    good = True
    wrong = [o for o in outcomes if o.code not in ACCEPTED]
    if wrong:
        good = False
        print(f"  !!! {len(wrong)} calls ended otherwise:", file=sys.stderr)
        for o in wrong[:20]:
            print(f"  !!!   {o.kind}: {o.code.name} after {o.seconds:.2f} s: {o.detail[:300]}", file=sys.stderr)
    missing = [o for o in refused if o.retry_delay is None]
    if missing:
        good = False
        print(f"  !!! {len(missing)} RESOURCE_EXHAUSTED without RetryInfo: {missing[0].detail!r}", file=sys.stderr)
    if not after.startswith("OK"):
        good = False
        print(f"  !!! the service did not recover: {after}", file=sys.stderr)
    return good


async def probe(load: Load, target: str) -> str:
    """One call of the first kind, after the load: the server must be back to serving at once."""
    kind, call = load.calls[0]
    async with grpc.aio.insecure_channel(target, options=ChannelConfig(target).options()) as channel:
        started = time.monotonic()
        try:
            reply = await call(channel, 30)
        except grpc.aio.AioRpcError as error:
            return f"{error.code().name}: {error.details()}"
        problem = load.check_reply(kind, reply)
        took = (time.monotonic() - started) * 1000
        return f"OK, one {kind} {load.method} in {took:.0f} ms" if problem is None else f"bad reply: {problem}"


def run_one(name: str, args: argparse.Namespace, workdir: Path) -> bool:
    env = {**os.environ, "GRPC_VERBOSITY": "ERROR"}
    for var in ("HYOKA_SANDBOX_TOKEN", "HYOKA_METRICS_AUTH_TOKEN", "HYOKA_AUTH_TOKEN"):
        env.pop(var, None)
    extra = list(args.server_arg)
    if name == "sandbox":
        argv = [str(BIN / "hyoka-sandbox"), "serve", "--port", "{port}", "--workers", str(args.sandbox_workers)]
        argv += ["--log-level", "INFO", *extra]
        load, ready = sandbox_load(args.calls), "hyoka-sandbox listening on"
    elif name == "metrics":
        argv = [str(BIN / "hyoka-metrics"), "serve", "--port", "{port}", *extra]
        load, ready = metrics_load(args.calls), "hyoka-metrics serving on"
    else:
        state = workdir / "state"
        argv = [str(BIN / "hyoka"), "serve", "--port", "{port}", "--state-dir", str(state), *extra]
        load, ready = analysis_load(max(1, args.calls // 10)), "hyoka serve: listening on"
    log = workdir / f"{name}.log"
    shown = " ".join([Path(argv[0]).name, *argv[1:]]).replace("{port}", "PORT")
    print(
        f"== {name}: {len(load.calls)} concurrent {load.method} calls, deadline {args.deadline:g} s each, "
        f"{args.channels} channels; server: {shown}"
    )
    server = start(name, argv, env, log, ready)
    limits = re.search(r"per service at most \d+ calls running and \d+ queued", log.read_text(errors="replace"))
    print(f"  admission: {limits.group(0) if limits else 'not reported in the log'}")
    sampler = Sampler(server.proc.pid)
    sampler.sample()
    server.idle_rss_kib, server.idle_fds = sampler.peak_rss_kib, sampler.peak_fds
    sampler.start()
    try:
        started = time.monotonic()
        outcomes = asyncio.run(drive(load, server.target, args.channels, args.deadline, args.duration_limit))
        wall = time.monotonic() - started
        after = asyncio.run(probe(load, server.target))
    finally:
        sampler.stop()
        alive = server.proc.poll() is None
        stop(server)
    if not alive:
        print(f"  !!! the server died:\n{log.read_text()[-3000:]}", file=sys.stderr)
        return False
    return report(load, outcomes, wall, sampler, server, after)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", choices=["sandbox", "metrics", "analysis", "all"], default="all")
    parser.add_argument("--calls", type=int, default=1000, help="Execute and Score calls (Analyze: a tenth).")
    parser.add_argument("--deadline", type=float, default=30.0, help="Deadline of every call, seconds.")
    parser.add_argument("--duration-limit", type=float, default=120.0, help="Bound on each service's load, s.")
    parser.add_argument("--channels", type=int, default=50, help="Client connections the calls are spread over.")
    parser.add_argument("--sandbox-workers", type=int, default=2)
    parser.add_argument("--server-arg", action="append", default=[], help="Extra `serve` argument (repeatable).")
    args = parser.parse_args(argv)
    os.environ.setdefault("HYOKA_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
    names = ["sandbox", "metrics", "analysis"] if args.service == "all" else [args.service]
    good = True
    with tempfile.TemporaryDirectory(prefix="hyoka-load-") as tmp:
        for name in names:
            good = run_one(name, args, Path(tmp)) and good
    print("all calls ended OK, RESOURCE_EXHAUSTED (with RetryInfo) or DEADLINE_EXCEEDED" if good else "FAILED")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())

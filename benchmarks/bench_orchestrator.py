"""How close `hyoka eval` keeps a model server to full use, beside lm-evaluation-harness.

A simulated OpenAI-compatible server (`hyoka.orchestrator.backends.testing.sim_server`, its own
process on 127.0.0.1) decodes at most C requests at once; each answer takes a time drawn from the
prompt alone: most short, one in ten long (--short / --long tokens x --seconds-per-token). Both
clients get the same items: the first --limit prompts of two generation tasks (default jmmlu and
bbh, with their own stop sequences and token limits: two groups of generation settings, as two
real tasks have), and C as their concurrency:

  ideal     max(sum of the request times / C, longest request): the server never idle
  hyoka     `hyoka eval --model openai-completions:URL --tasks A,B` (its window sized from the
            server's own report, `/get_server_info`), scoring through one `hyoka-metrics serve`
  lm-eval   `lm-eval run --model local-completions` with num_concurrent=C, batch_size 1, no
            tokenizer, the same prompts as two local tasks (YAML + JSONL written here); installed
            at run time into its own virtual environment under a temporary folder (or --lm-eval-venv)

Each run's time is what the server saw: from the first request's arrival to the last answer
(client start-up and scoring after the last answer excluded; both are printed as "wall"). hyoka's
time includes its conformance probe (one round of short requests before the first item); "items
only" is the time from the first item request.
Figures per C: every run, then the median; ratios are to the ideal. The server checks that every
prompt was answered once per run.

  .venv/bin/python benchmarks/bench_orchestrator.py                     # C = 16 and 128, 3 runs each
  .venv/bin/python benchmarks/bench_orchestrator.py --slots 16 --runs 1 --limit 200 --no-lm-eval
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyoka.orchestrator.backends.testing.sim_server import LatencyModel
from hyoka.orchestrator.tasks import get_task
from hyoka.rpc.server import free_port

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
LM_EVAL = "lm_eval[api]=={version}"


@dataclass
class Run:
    client: str
    span_s: float  # first request -> last answer, as the server saw it
    item_span_s: float  # the same from the first item request (after hyoka's conformance probe)
    wall_s: float  # the client's whole process
    received: int
    answered: int
    max_busy: int
    utilisation: float


def http_json(url: str, method: str = "GET") -> Any:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read() or b"null")


def start_sim(slots: int, latency: LatencyModel) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "hyoka.orchestrator.backends.testing.sim_server", "--slots", str(slots)]
    cmd += ["--seconds-per-token", str(latency.seconds_per_token), "--long-fraction", str(latency.long_fraction)]
    cmd += ["--short", *map(str, latency.short_tokens), "--long", *map(str, latency.long_tokens)]
    cmd += ["--seed", str(latency.seed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise SystemExit(f"simulated server did not start: {url!r}")
    return proc, url


def start_metrics(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("wb") as f:
        proc = subprocess.Popen(
            [str(VENV_BIN / "hyoka-metrics"), "serve", "--port", str(port)], stdout=f, stderr=subprocess.STDOUT
        )
    target = f"127.0.0.1:{port}"
    import asyncio

    from hyoka.orchestrator.services.metrics import MetricsClient

    async def ready() -> None:
        deadline = time.monotonic() + 120
        while True:
            try:
                async with MetricsClient(target) as client:
                    await client.health(deadline=2.0)
                return
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                await asyncio.sleep(0.5)

    asyncio.run(ready())
    return proc, target


def write_items(tasks: list[str], limit: int, data_dir: Path, folder: Path) -> dict[str, list[str]]:
    """The prompts of each task, and an lm-eval task (YAML + JSONL) per task with the same prompts
    and generation settings."""
    prompts: dict[str, list[str]] = {}
    for name in tasks:
        task = get_task(name)
        items = task.items(task.load(data_dir), limit)
        gen = task.spec.generation
        assert gen is not None and gen.n == 1 and gen.temperature == 0, f"{name}: not a greedy generation task"
        prompts[name] = [it.prompt for it in items]
        data = folder / f"{name}.jsonl"
        data.write_text("".join(json.dumps({"prompt": it.prompt, "gold": it.gold}) + "\n" for it in items), "utf-8")
        yaml = {
            "task": f"hyoka_bench_{name}",
            "dataset_path": "json",
            "dataset_kwargs": {"data_files": {"test": str(data)}},
            "test_split": "test",
            "output_type": "generate_until",
            "doc_to_text": "{{prompt}}",
            "doc_to_target": "{{gold}}",
            "target_delimiter": "",
            "generation_kwargs": {"until": list(gen.stop), "max_gen_toks": gen.max_new_tokens, "do_sample": False},
            "metric_list": [{"metric": "exact_match"}],
            "num_fewshot": 0,
        }
        (folder / f"hyoka_bench_{name}.yaml").write_text(json.dumps(yaml, ensure_ascii=False, indent=1), "utf-8")
    return prompts


def ideal(latency: LatencyModel, prompts: list[str], slots: int) -> tuple[float, float, float]:
    times = [latency.seconds(p) for p in prompts]
    return max(sum(times) / slots, max(times)), sum(times), max(times)


def ensure_lm_eval(venv: Path, version: str) -> Path | str:
    """The venv's `lm-eval`, installing it first; a string says why it cannot run."""
    exe = venv / "bin" / "lm-eval"
    if exe.exists():
        return exe
    print(f"installing {LM_EVAL.format(version=version)} into {venv} ...", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [base, "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "-q", LM_EVAL.format(version=version)],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            return f"`{' '.join(step)}` failed: {(done.stderr or done.stdout).strip()[-800:]}"
    return exe


def measure(client: str, url: str, cmd: list[str], env: dict[str, str], log: Path, expected: int) -> Run:
    http_json(f"{url}/sim/reset", "POST")
    started = time.perf_counter()
    with log.open("w") as f:
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{client} failed (exit {done.returncode}); see {log}:\n{log.read_text()[-3000:]}")
    stats = http_json(f"{url}/sim/stats")
    # hyoka eval first probes the server (a few short greedy requests); they count in its time.
    items = stats["answered"] - stats["answered_probe"]
    if items != expected:
        raise SystemExit(f"{client}: the server answered {items} item prompts, expected {expected}; see {log}")
    return Run(
        client,
        stats["span_seconds"],
        stats["item_span_seconds"],
        wall,
        stats["received"],
        stats["answered"],
        stats["max_busy"],
        stats["utilisation"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, nargs="+", default=[16, 128], help="server slots C")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", default="jmmlu,bbh", help="two (or more) greedy generation tasks")
    parser.add_argument(
        "--limit", type=int, nargs="+", default=None, help="items per task, one per C (default 500 at C<=16, else 3541)"
    )
    parser.add_argument("--seconds-per-token", type=float, default=0.004)
    parser.add_argument("--short", type=int, nargs=2, default=(50, 150), help="tokens of a short answer (uniform)")
    parser.add_argument("--long", type=int, nargs=2, default=(300, 500), help="tokens of a long answer (uniform)")
    parser.add_argument("--long-fraction", type=float, default=0.1)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--no-lm-eval", action="store_true")
    parser.add_argument("--lm-eval-version", default="0.4.13")
    parser.add_argument("--lm-eval-venv", type=Path, default=None, help="reuse (or create) this venv for lm-eval")
    args = parser.parse_args()

    data_dir = args.data_dir or Path(os.environ.get("HYOKA_DATA_DIR") or ROOT.parent / "shared" / "datasets")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    limits = args.limit or [500 if c <= 16 else 3541 for c in args.slots]
    if len(limits) != len(args.slots):
        raise SystemExit("--limit: give one value per --slots value")
    latency = LatencyModel(args.seconds_per_token, tuple(args.short), tuple(args.long), args.long_fraction)
    work = Path(tempfile.mkdtemp(prefix="bench_orchestrator_"))
    env = os.environ | {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(work / "hf"), "NO_COLOR": "1"}
    lm_eval: Path | str | None = None
    if not args.no_lm_eval:
        lm_eval = ensure_lm_eval(args.lm_eval_venv or work / "lm-eval-venv", args.lm_eval_version)
        if isinstance(lm_eval, str):
            print(f"lm-eval cannot run: {lm_eval}", flush=True)
    metrics, metrics_target = start_metrics(work / "metrics.log")
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; work folder {work}")
    print(
        f"answers: {1 - args.long_fraction:.0%} of {args.short[0]}-{args.short[1]} tokens, "
        f"{args.long_fraction:.0%} of {args.long[0]}-{args.long[1]}, {args.seconds_per_token * 1000:g} ms/token; "
        f"tasks {','.join(tasks)}",
        flush=True,
    )
    summary: list[str] = []
    try:
        for slots, limit in zip(args.slots, limits, strict=True):
            folder = work / f"c{slots}"
            folder.mkdir()
            prompts = write_items(tasks, limit, data_dir, folder)
            everything = [p for name in tasks for p in prompts[name]]
            best, total, longest = ideal(latency, everything, slots)
            per_task = [
                max(sum(latency.seconds(p) for p in prompts[n]) / slots, max(latency.seconds(p) for p in prompts[n]))
                for n in tasks
            ]
            print(
                f"\nC = {slots}: {len(everything)} requests ({' + '.join(str(len(prompts[n])) for n in tasks)}), "
                f"sum {total:.1f} s, longest {longest:.2f} s; ideal = max(sum / C, longest) = {best:.2f} s "
                f"(tasks one after another, each ideal: {sum(per_task):.2f} s)",
                flush=True,
            )
            sim, url = start_sim(slots, latency)
            runs: dict[str, list[Run]] = {"hyoka": [], "lm-eval": []}
            try:
                for i in range(args.runs):
                    out = folder / f"hyoka-{i}"
                    cmd = [
                        str(VENV_BIN / "hyoka"),
                        "eval",
                        "--model",
                        f"openai-completions:{url}",
                        "--tasks",
                        ",".join(tasks),
                    ]
                    cmd += [
                        "--limit",
                        str(limit),
                        "--out",
                        str(out),
                        "--data-dir",
                        str(data_dir),
                        "--metrics-url",
                        metrics_target,
                    ]
                    runs["hyoka"].append(measure("hyoka", url, cmd, env, folder / f"hyoka-{i}.log", len(everything)))
                    window = json.loads((out / "results.json").read_text("utf-8"))["backend"].get(
                        "max_concurrency", "?"
                    )
                    show(runs["hyoka"][-1], best, f"run {i + 1}", f"window {window}")
                    if isinstance(lm_eval, Path):
                        model_args = (
                            f"model=sim/model,base_url={url}/v1/completions,num_concurrent={slots},"
                            "tokenizer_backend=None,tokenized_requests=False,max_retries=3,timeout=600"
                        )
                        cmd = [str(lm_eval), "run", "--model", "local-completions", "--model_args", model_args]
                        cmd += ["--tasks", ",".join(f"hyoka_bench_{n}" for n in tasks), "--include_path", str(folder)]
                        cmd += ["--batch_size", "1", "--output_path", str(folder / f"lm-eval-{i}")]
                        runs["lm-eval"].append(
                            measure("lm-eval", url, cmd, env, folder / f"lm-eval-{i}.log", len(everything))
                        )
                        show(runs["lm-eval"][-1], best, f"run {i + 1}", f"num_concurrent {slots}")
            finally:
                sim.kill()
                sim.wait()
            line = f"C = {slots:>3}: ideal {best:7.2f} s"
            for client, rs in runs.items():
                if rs:
                    med = statistics.median(r.span_s for r in rs)
                    line += f" | {client} median {med:7.2f} s = {med / best:.3f}x ideal"
            summary.append(line)
            print(line, flush=True)
    finally:
        metrics.terminate()
        metrics.wait()
    print("\nsummary (server time from first request to last answer; runs above):")
    for line in summary:
        print("  " + line)
    if isinstance(lm_eval, str):
        print(f"  lm-eval not run: {lm_eval}")
    shutil.rmtree(work, ignore_errors=True)


def show(run: Run, best: float, label: str, note: str) -> None:
    print(
        f"  {run.client:<8} {label}: {run.span_s:7.2f} s = {run.span_s / best:.3f}x ideal  "
        f"(items only {run.item_span_s / best:.3f}x; wall {run.wall_s:6.1f} s, server busy {run.utilisation:.1%}, "
        f"at most {run.max_busy} in slots, "
        f"{run.answered} answered; {note})",
        flush=True,
    )


if __name__ == "__main__":
    main()

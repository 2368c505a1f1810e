"""Throughput of hyoka's metrics against their reference implementations, side by side.

For char F1 (llm-jp-eval 1.3.0: fuzzywuzzy + python-Levenshtein), BLEU (sacrebleu, ja-mecab) and
ROUGE-2 (rouge_score with a MeCab tokenizer) on the same synthetic Japanese/English pairs
(default 10,000), it measures items per second of:

  reference     the reference implementation called directly, as the harness calls it
  in-process    `hyoka.metrics.score` on the whole batch
  in-proc/1k    `hyoka.metrics.score` on batches of --batch items (what one gRPC call does)
  gRPC items    `MetricsService.Score` on a `hyoka-metrics serve` subprocess over loopback, batches
                of --batch items as ScoreItem messages, with --in-flight calls outstanding (a
                client that waits for each reply before sending the next batch: --in-flight 1)
  gRPC columns  the same with the batches in the columnar form (ScoreColumns)
  gRPC stream   one `ScoreStream` call carrying the batches as ScoreColumns chunks

and prints ratios: in-process / reference, and each gRPC form's overhead relative to in-process
on the same batches (1 - gRPC / in-proc/1k). Each figure is the best of --repeats runs,
interleaved so that machine load hits every column alike; scores are checked to agree before
anything is reported. The in-process and reference runs get fresh copies of the texts each time,
as a pipeline scoring each answer once has (the server, too, sees every text for the first time):
scoring the very same str objects again lets Python reuse their cached hashes.

Two tables: wall-clock items/s, and items per CPU-second (CPU time of this process, plus that of
the server process for gRPC), which stays meaningful on a shared, loaded machine where wall-clock
figures swing with other work.

  .venv/bin/python benchmarks/bench_metrics.py [--pairs 10000] [--batch 1000] [--in-flight 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import sacrebleu
from fugashi import Tagger
from fuzzywuzzy import fuzz
from rouge_score import rouge_scorer

from hyoka.metrics import Item, score
from hyoka.metrics.server import TOKEN_ENVS
from hyoka.metrics.synthetic import generate_pairs
from hyoka.metrics.wire import columns_to_proto, items_to_proto
from hyoka.rpc.client import ChannelConfig, sync_channel
from hyoka.rpc.server import free_port
from hyoka.v1 import metrics_pb2, metrics_pb2_grpc


class MecabTokenizer:
    """The MeCab tokenizer rouge_score is given (fugashi + unidic-lite, wakati)."""

    def __init__(self) -> None:
        self.tagger = Tagger("-Owakati")

    def tokenize(self, text: str) -> list[str]:
        words: list[str] = self.tagger.parse(text).split()
        return words


def reference_char_f1(pairs: list[tuple[str, str]]) -> float:
    # llm-jp-eval 1.3.0 get_evaluation_result
    scores = []
    for pred, gold in pairs:
        y_pred = unicodedata.normalize("NFKC", pred.split("\n\n")[0])
        y_true = unicodedata.normalize("NFKC", gold)
        scores.append(fuzz.token_sort_ratio(y_pred, y_true) / 100.0)
    return float(statistics.mean(scores))


def reference_bleu(pairs: list[tuple[str, str]]) -> float:
    result = sacrebleu.corpus_bleu([p for p, _ in pairs], [[r for _, r in pairs]], tokenize="ja-mecab")
    return float(result.score) / 100


def reference_rouge2(pairs: list[tuple[str, str]]) -> float:
    scorer = rouge_scorer.RougeScorer(["rouge2"], tokenizer=MecabTokenizer())
    return float(statistics.mean(scorer.score(ref, pred)["rouge2"].fmeasure for pred, ref in pairs))


@dataclass(frozen=True)
class Case:
    label: str
    metric: str
    options: dict[str, str]
    reference: Callable[[list[tuple[str, str]]], float]


CASES = (
    Case("char F1 (llm-jp-eval)", "char_f1_fuzzywuzzy", {}, reference_char_f1),
    Case("BLEU (ja-mecab)", "bleu", {"tokenize": "ja-mecab"}, reference_bleu),
    Case("ROUGE-2 (MeCab)", "rouge2", {"tokenizer": "mecab"}, reference_rouge2),
)


def _process_cpu_seconds(pid: int) -> float:
    """CPU time of another process, summed over its threads from /proc/PID/task/*/schedstat
    (nanoseconds; /proc/PID/stat counts in 10 ms ticks, too coarse for 1,000-item calls)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def _timed(fn: Callable[[], float], server_pid: int | None) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, value); CPU includes the server's when server_pid is given."""
    server_before = _process_cpu_seconds(server_pid) if server_pid else 0.0
    cpu_before, start = time.process_time(), time.perf_counter()
    value = fn()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_before
    if server_pid:
        cpu += _process_cpu_seconds(server_pid) - server_before
    return wall, cpu, value


RUNS = ("reference", "in-process", "in-proc/1k", "gRPC items", "gRPC columns", "gRPC stream")
GRPC_RUNS = RUNS[3:]


def _table(title: str, rows: list[tuple[str, dict[str, float]]]) -> str:
    """Items/s per run, then in-process / reference and each gRPC form's overhead."""
    header = f"{'metric':<22}" + "".join(f"{name:>13}" for name in RUNS)
    header += f"{'in-proc/ref':>13}" + "".join(f"{'ovh ' + name.split()[1]:>14}" for name in GRPC_RUNS)
    lines = [f"## {title}", header, "-" * len(header)]
    for label, rate in rows:
        line = f"{label:<22}" + "".join(f"{rate[name]:>13,.0f}" for name in RUNS)
        line += f"{rate['in-process'] / rate['reference']:>12.2f}x"
        line += "".join(f"{1 - rate[name] / rate['in-proc/1k']:>14.1%}" for name in GRPC_RUNS)
        lines.append(line)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--in-flight", type=int, default=2, help="Score calls outstanding at a time")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    pairs = generate_pairs(args.pairs, seed=1)
    items = [Item(p, (r,)) for p, r in pairs]
    batches = [items[i : i + args.batch] for i in range(0, len(items), args.batch)]

    def fresh_pairs() -> list[tuple[str, str]]:
        """The same texts as new str objects (no cached hashes)."""
        return [(p.encode().decode(), r.encode().decode()) for p, r in pairs]

    item_requests = {
        case.metric: [
            metrics_pb2.ScoreRequest(metric=case.metric, options=case.options, items=items_to_proto(b)) for b in batches
        ]
        for case in CASES
    }
    column_requests = {
        case.metric: [
            metrics_pb2.ScoreRequest(metric=case.metric, options=case.options, columns=columns_to_proto(b))
            for b in batches
        ]
        for case in CASES
    }

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "hyoka.metrics", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k not in TOKEN_ENVS},  # no auth on this loopback server
    )
    channel = sync_channel(ChannelConfig(f"127.0.0.1:{port}"))
    try:
        grpc.channel_ready_future(channel).result(timeout=60)
        stub = metrics_pb2_grpc.MetricsServiceStub(channel)  # type: ignore[no-untyped-call]
        for case in CASES:  # warm the server (imports, MeCab dictionaries) before timing
            stub.Score(item_requests[case.metric][0], timeout=120)

        print(
            f"# hyoka metrics benchmark: {len(pairs):,} synthetic ja/en pairs, gRPC batches of {args.batch:,}"
            f" with {args.in_flight} Score call(s) in flight"
        )
        print(f"# {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f} at start; best of {args.repeats} interleaved runs")  # fmt: skip
        wall_rows, cpu_rows = [], []
        for case in CASES:
            best_wall = dict.fromkeys(RUNS, float("inf"))
            best_cpu = dict(best_wall)
            values: dict[str, float] = {}

            def in_one_batch(items: list[Item], case: Case = case) -> float:
                return score(case.metric, items, case.options).corpus_score

            def in_batches(items: list[Item], case: Case = case) -> float:
                results = [
                    score(case.metric, items[i : i + args.batch], case.options)
                    for i in range(0, len(items), args.batch)
                ]
                return results[-1].corpus_score

            def one_call_per_batch(requests: list[metrics_pb2.ScoreRequest]) -> float:
                in_flight: collections.deque[grpc.Future] = collections.deque()
                last = metrics_pb2.ScoreResponse()
                for request in requests:
                    in_flight.append(stub.Score.future(request, timeout=600))
                    if len(in_flight) >= args.in_flight:
                        last = in_flight.popleft().result()
                while in_flight:
                    last = in_flight.popleft().result()
                return float(last.corpus_score)

            def one_stream(case: Case = case) -> float:
                config = metrics_pb2.ScoreStreamConfig(metric=case.metric, options=case.options)
                messages = [metrics_pb2.ScoreStreamRequest(config=config)]
                messages += [
                    metrics_pb2.ScoreStreamRequest(chunk=metrics_pb2.ScoreStreamChunk(columns=r.columns))
                    for r in column_requests[case.metric]
                ]
                return float(stub.ScoreStream(iter(messages), timeout=600).corpus_score)

            def local_run(name: str, case: Case = case) -> Callable[[], float]:
                """A run of the reference or of hyoka in-process on fresh texts, its input (pairs,
                or Items) built before the clock starts, as the gRPC runs' messages are."""
                if name == "reference":
                    return functools.partial(case.reference, fresh_pairs())
                items = [Item(p, (r,)) for p, r in fresh_pairs()]
                return functools.partial(in_one_batch if name == "in-process" else in_batches, items)

            grpc_runs: dict[str, Callable[[], float]] = {
                "gRPC items": functools.partial(one_call_per_batch, item_requests[case.metric]),
                "gRPC columns": functools.partial(one_call_per_batch, column_requests[case.metric]),
                "gRPC stream": one_stream,
            }
            for _ in range(args.repeats):
                for name in RUNS:
                    run = grpc_runs[name] if name in GRPC_RUNS else local_run(name)
                    wall, cpu, value = _timed(run, server.pid if name in GRPC_RUNS else None)
                    best_wall[name] = min(best_wall[name], wall)
                    best_cpu[name] = min(best_cpu[name], cpu)
                    values[name] = value
            if abs(values["reference"] - values["in-process"]) > 1e-9:
                raise SystemExit(f"{case.label}: hyoka {values['in-process']} != reference {values['reference']}")
            # the stream scores the whole batch; one call per batch ends with the last batch's score
            for name, same_as in (
                ("gRPC items", "in-proc/1k"),
                ("gRPC columns", "in-proc/1k"),
                ("gRPC stream", "in-process"),
            ):
                if values[name] != values[same_as]:
                    raise SystemExit(f"{case.label}: {name} {values[name]} != {same_as} {values[same_as]}")
            wall_rows.append((case.label, {name: len(items) / s for name, s in best_wall.items()}))
            cpu_rows.append((case.label, {name: len(items) / s for name, s in best_cpu.items()}))
        for title, rows in (("wall-clock items/s", wall_rows), ("items per CPU-second", cpu_rows)):
            print()
            print(_table(title, rows))
        print("\n# ovh X = gRPC overhead of form X: 1 - (gRPC X items/s) / (in-proc/1k items/s), the same batches")
        print(f"# load average {os.getloadavg()[0]:.2f} at the end")
    finally:
        channel.close()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())

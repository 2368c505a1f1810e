"""Property-based fuzzing of SandboxService and EvaluationService, in the style (and with the
helpers) of test_fuzz_grpc.py: random bytes, mutated valid requests, and messages generated from
the descriptors with hyoka's vocabulary mixed in (runtimes, HumanEval problem ids, task and
suite names, model specs), through real servers (EvaluationService in this process, the sandbox
in its own) and real gRPC calls.

Properties as there: every reply is OK or a defined status (never UNKNOWN, INTERNAL, ...), an
INVALID_ARGUMENT names a field, the server keeps serving after each call, memory stays bounded.

Keeping it harmless and quick:
- Sandbox: a `hyoka-sandbox serve` process (its service needs the main thread's signals, so not
  in this process; 2 workers, few waiting places). Generated requests have wall and CPU limits
  of at most 1 s wherever a program could wait or loop, programs come from a small harmless set
  (or are random bytes, which fail to compile), and payloads that would run a slow program under
  the default 10 s limits (mutations, random bytes) are dropped before sending
  (`_no_long_programs`); batches and completions are few. RESOURCE_EXHAUSTED (admission
  control, the run queue) is a defined status.
- Evaluation: a request is only sent if the server would refuse it, or if its model is an HTTP
  backend on 127.0.0.1:9 (a closed port: every model call of the run fails); requests that would launch a
  model server (`launch`: docker/podman) or reach another model are dropped before sending
  (`_would_do_real_work`). Every run started is cancelled. WatchRun reads a few updates under a
  short deadline: on a live run the stream stays open until the run ends, so a DEADLINE_EXCEEDED
  from *our own* deadline there is expected (not a server hang) and is accepted only in that case.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.message import DecodeError, Message
from hypothesis import assume, given
from hypothesis import strategies as st

from hyoka.v1 import evaluation_pb2, sandbox_pb2

from .conftest import FUZZ, SandboxProcess, ThreadedServer
from .test_fuzz_grpc import (
    RANDOM_BYTES,
    TEXT,
    _outcome,
    assert_serving,
    messages,
    mutated,
    unary,
)

pytestmark = pytest.mark.fuzz

SANDBOX = "hyoka.v1.SandboxService"
EXECUTE = f"/{SANDBOX}/Execute"
EXECUTE_BATCH = f"/{SANDBOX}/ExecuteBatch"
CHECK_COMPLETIONS = f"/{SANDBOX}/CheckCompletions"
GET_SANDBOX_INFO = f"/{SANDBOX}/GetSandboxInfo"
EVALUATION = "hyoka.v1.EvaluationService"
START_RUN = f"/{EVALUATION}/StartRun"
WATCH_RUN = f"/{EVALUATION}/WatchRun"
GET_RUN = f"/{EVALUATION}/GetRun"
LIST_RUNS = f"/{EVALUATION}/ListRuns"
CANCEL_RUN = f"/{EVALUATION}/CancelRun"

#: A model no run can reach: the discard port on loopback, closed here.
CLOSED = "http://127.0.0.1:9"
SAFE_MODELS = [f"openai-completions:{CLOSED}", f"openai-chat:{CLOSED}", f"tgi:{CLOSED}"]
WATCH_DEADLINE = 3.0


@pytest.fixture(scope="module")
def sandbox(sandbox_server: SandboxProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(sandbox_server.target) as channel:
        yield channel


@pytest.fixture(scope="module")
def evaluation(evaluation_server: ThreadedServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(evaluation_server.target) as channel:
        yield channel


def server_stream(channel: grpc.Channel, method: str, payload: bytes, most: int = 20) -> grpc.StatusCode:
    def read() -> None:
        call = channel.unary_stream(method)(payload, timeout=30)
        try:
            for i, _ in enumerate(call):
                if i + 1 >= most:
                    break
        finally:
            call.cancel()

    return _outcome(read, method)


# --- the sandbox service ---------------------------------------------------------------------

PROGRAMS = [
    b"print(6 * 7)\n",
    b"import sys\nprint(sys.stdin.read()[:10])\n",
    b"raise SystemExit(3)\n",
    b"1/0\n",
    b"def f(:\n",
    b"import time\ntime.sleep(5)\n",  # the 1 s wall limit ends it
    b"print('x' * 100000)\n",
    b"",
    b"\x00\xff",
    "print('評価')\n".encode(),
]
RUNTIMES = ["", "minimal", "bigcode", "no-such-runtime", "../etc", "\x00"]
#: Mostly the default runtime, so that requests get past the runtime check to run programs.
RUNTIME = st.one_of(st.just(""), st.just(""), st.sampled_from(RUNTIMES))
PROGRAM = st.one_of(st.sampled_from(PROGRAMS), st.binary(max_size=64))
LIMIT = st.one_of(st.sampled_from([0, 1, -1, 100, 1000, 2**31, 2**63 - 1, -(2**63)]), st.integers(-5, 2000))


@st.composite
def limits(draw: st.DrawFn) -> sandbox_pb2.ResourceLimits:
    """Limits of every shape; the server clamps them to its ceilings (1 s, 256 MiB) or refuses them."""
    fields = [f.name for f in sandbox_pb2.ResourceLimits.DESCRIPTOR.fields]
    chosen = draw(st.lists(st.sampled_from(fields), unique=True, max_size=len(fields)))
    return sandbox_pb2.ResourceLimits(**{name: draw(LIMIT) for name in chosen})


@st.composite
def execute_requests(draw: st.DrawFn) -> sandbox_pb2.ExecuteRequest:
    request = sandbox_pb2.ExecuteRequest(program=draw(PROGRAM), runtime=draw(RUNTIME))
    if draw(st.booleans()):
        request.limits.CopyFrom(draw(limits()))
    if draw(st.booleans()):
        request.stdin = draw(st.binary(max_size=32))
    return _harmless(request)


M = TypeVar("M", bound=Message)


def _harmless(request: M) -> M:
    """A generated sandbox request with its programs from the harmless set and its wall limits
    at most 1 s (the server clamps to that anyway): a descriptor-generated program is random text."""
    for item in [request, *getattr(request, "programs", [])]:
        if isinstance(item, sandbox_pb2.ExecuteRequest) and item.program:
            item.program = PROGRAMS[len(item.program) % len(PROGRAMS)]
        if isinstance(item, sandbox_pb2.ExecuteRequest) and (item.HasField("limits") or _slow(item.program)):
            item.limits.wall_time_ms = min(max(item.limits.wall_time_ms, 1), 1000)
            item.limits.cpu_time_ms = min(max(item.limits.cpu_time_ms, 1), 1000)
    return request


@st.composite
def batch_requests(draw: st.DrawFn) -> sandbox_pb2.ExecuteBatchRequest:
    request = sandbox_pb2.ExecuteBatchRequest(
        programs=draw(st.lists(execute_requests(), min_size=1, max_size=4)), runtime=draw(RUNTIME)
    )
    if draw(st.booleans()):
        request.limits.CopyFrom(draw(limits()))
    return _harmless(request)


PROBLEM_IDS = ["HumanEval/0", "HumanEval/163", "HumanEval/164", "HumanEval/-1", "HumanEval/", "humaneval/0", "MBPP/1"]
COMPLETIONS = [
    "    return [x for x in numbers]\n",
    "    for i, a in enumerate(numbers):\n        for b in numbers[i + 1:]:\n"
    "            if abs(a - b) < threshold:\n                return True\n    return False\n",
    "",
    "    pass",
    "\x00",
    "    while True: pass\n",
]


@st.composite
def check_requests(draw: st.DrawFn) -> sandbox_pb2.CheckCompletionsRequest:
    request = sandbox_pb2.CheckCompletionsRequest(
        completions=draw(st.lists(st.one_of(st.sampled_from(COMPLETIONS), TEXT), max_size=3)),
        k=draw(st.lists(st.integers(-2, 12), max_size=3)),
        runtime=draw(RUNTIME),
    )
    if draw(st.integers(0, 3)):
        request.problem_id = draw(st.one_of(st.just("HumanEval/0"), st.sampled_from(PROBLEM_IDS), TEXT))
    elif draw(st.booleans()):
        request.problem.CopyFrom(
            sandbox_pb2.CodeProblem(
                prompt=draw(st.sampled_from(["def f(x):\n", "", "def f(:\n"])),
                test=draw(st.sampled_from(["def check(f):\n    assert f(1) == 1\n", "", "1/0"])),
                entry_point=draw(st.sampled_from(["f", "", "g", "os.system"])),
            )
        )
    if draw(st.booleans()):
        request.limits.CopyFrom(draw(limits()))
    if _slow("".join(request.completions)) or draw(st.booleans()):
        request.limits.wall_time_ms = min(max(request.limits.wall_time_ms, 1), 1000)
        request.limits.cpu_time_ms = min(max(request.limits.cpu_time_ms, 1), 1000)
    return request


def _sandbox_seeds() -> dict[str, list[bytes]]:
    execute = [
        sandbox_pb2.ExecuteRequest(program=PROGRAMS[0]),
        sandbox_pb2.ExecuteRequest(
            program=PROGRAMS[1], stdin=b"hello", limits=sandbox_pb2.ResourceLimits(wall_time_ms=500)
        ),
    ]
    batch = [
        sandbox_pb2.ExecuteBatchRequest(programs=execute, limits=sandbox_pb2.ResourceLimits(wall_time_ms=500)),
    ]
    check = [
        sandbox_pb2.CheckCompletionsRequest(problem_id="HumanEval/0", completions=COMPLETIONS[:2], k=[1]),
        sandbox_pb2.CheckCompletionsRequest(
            problem=sandbox_pb2.CodeProblem(
                prompt="def f(x):\n", test="def check(f):\n    assert f(1) == 1\n", entry_point="f"
            ),
            completions=["    return x\n"],
        ),
    ]
    return {
        EXECUTE: [m.SerializeToString() for m in execute],
        EXECUTE_BATCH: [m.SerializeToString() for m in batch],
        CHECK_COMPLETIONS: [m.SerializeToString() for m in check],
    }


SANDBOX_SEEDS = _sandbox_seeds()


def _sandbox_call(channel: grpc.Channel, method: str, payload: bytes) -> grpc.StatusCode:
    if method == EXECUTE_BATCH:
        return server_stream(channel, method, payload)
    return unary(channel, method, payload)


SLOW = ("sleep", "while")


def _slow(text: str | bytes) -> bool:
    """Whether a program could wait or loop (judged by its text: the programs are ours)."""
    source = text.decode(errors="replace") if isinstance(text, bytes) else text
    return any(word in source for word in SLOW)


def _short(limits: sandbox_pb2.ResourceLimits, outer: sandbox_pb2.ResourceLimits | None = None) -> bool:
    """Whether the run's wall and CPU limits are at most 1 s (the service's default is 10 s)."""
    wall = limits.wall_time_ms or (outer.wall_time_ms if outer is not None else 0)
    cpu = limits.cpu_time_ms or (outer.cpu_time_ms if outer is not None else 0)
    return 0 < wall <= 1000 and 0 < cpu <= 1000


def _no_long_programs(method: str, payload: bytes) -> bool:
    """Whether this payload is quick to serve: few programs, and any program or completion that
    could wait or loop (sleep, while) only under wall and CPU limits of at most 1 s. The others
    are dropped before sending (hypothesis.assume), random bytes and mutations included."""
    try:
        if method == EXECUTE:
            request = sandbox_pb2.ExecuteRequest.FromString(payload)
            return not _slow(request.program) or _short(request.limits)
        if method == EXECUTE_BATCH:
            batch = sandbox_pb2.ExecuteBatchRequest.FromString(payload)
            return len(batch.programs) <= 8 and all(
                not _slow(p.program) or _short(p.limits, batch.limits) for p in batch.programs
            )
        if method == CHECK_COMPLETIONS:
            check = sandbox_pb2.CheckCompletionsRequest.FromString(payload)
            slow = any(_slow(c) for c in check.completions) or _slow(check.problem.test) or _slow(check.problem.prompt)
            return len(check.completions) <= 8 and (not slow or _short(check.limits))
    except DecodeError:
        pass
    return True


SANDBOX_METHODS = [EXECUTE, EXECUTE_BATCH, CHECK_COMPLETIONS, GET_SANDBOX_INFO]


@FUZZ
@given(method=st.sampled_from(SANDBOX_METHODS), payload=RANDOM_BYTES)
def test_sandbox_random_bytes(sandbox: grpc.Channel, method: str, payload: bytes) -> None:
    assume(_no_long_programs(method, payload))
    _sandbox_call(sandbox, method, payload)
    assert_serving(sandbox, SANDBOX)


@FUZZ
@given(data=st.data(), method=st.sampled_from([EXECUTE, EXECUTE_BATCH, CHECK_COMPLETIONS]))
def test_sandbox_mutated(sandbox: grpc.Channel, data: st.DataObject, method: str) -> None:
    payload = data.draw(mutated(SANDBOX_SEEDS[method]))
    assume(_no_long_programs(method, payload))
    _sandbox_call(sandbox, method, payload)
    assert_serving(sandbox, SANDBOX)


@FUZZ
@given(
    call=st.one_of(
        st.tuples(st.just(EXECUTE), execute_requests()),
        st.tuples(st.just(EXECUTE_BATCH), batch_requests()),
        st.tuples(st.just(CHECK_COMPLETIONS), check_requests()),
        st.tuples(st.just(EXECUTE), messages(sandbox_pb2.ExecuteRequest.DESCRIPTOR).map(_harmless)),
        st.tuples(st.just(EXECUTE_BATCH), messages(sandbox_pb2.ExecuteBatchRequest.DESCRIPTOR).map(_harmless)),
        st.tuples(st.just(CHECK_COMPLETIONS), messages(sandbox_pb2.CheckCompletionsRequest.DESCRIPTOR)),
        st.tuples(st.just(GET_SANDBOX_INFO), messages(sandbox_pb2.GetSandboxInfoRequest.DESCRIPTOR)),
    )
)
def test_sandbox_generated(sandbox: grpc.Channel, call: tuple[str, Message]) -> None:
    method, request = call
    payload = request.SerializeToString()
    assume(_no_long_programs(method, payload))
    _sandbox_call(sandbox, method, payload)
    assert_serving(sandbox, SANDBOX)


def test_sandbox_memory_stays_bounded(sandbox: grpc.Channel, sandbox_server: SandboxProcess) -> None:
    """Garbage and small valid calls, round after round: memory (this process, which runs the
    service; the programs run in other processes) settles."""
    import gc

    psutil = pytest.importorskip("psutil")
    process = psutil.Process(sandbox_server.proc.pid)
    seeds = [s for m in (EXECUTE, CHECK_COMPLETIONS) for s in SANDBOX_SEEDS[m]]

    def one_round() -> None:
        rng = random.Random(99)
        for _ in range(40):
            method = rng.choice(SANDBOX_METHODS)
            unary(sandbox, GET_SANDBOX_INFO, b"")
            payload = bytearray(rng.choice(seeds))
            payload[rng.randrange(len(payload)) :] = rng.randbytes(rng.randint(0, 8))
            if method != EXECUTE_BATCH and _no_long_programs(method, bytes(payload)):
                unary(sandbox, method, bytes(payload))
        unary(sandbox, EXECUTE, SANDBOX_SEEDS[EXECUTE][0])

    one_round()
    gc.collect()
    before = process.memory_info().rss
    for _ in range(2):
        one_round()
    gc.collect()
    grown = process.memory_info().rss - before
    print(f"sandbox memory: {before / 2**20:.0f} MiB after warm-up, {grown / 2**20:+.1f} MiB after 2 rounds")
    assert grown < 40 * 1024 * 1024, f"memory grew by {grown / 2**20:.1f} MiB"
    assert_serving(sandbox, SANDBOX)


# --- the evaluation service --------------------------------------------------------------------


def _available_tasks() -> list[str]:
    from hyoka.orchestrator.tasks.registry import available_tasks

    return list(available_tasks())


def _evaluation_vocabulary() -> list[str]:
    from hyoka.orchestrator.tasks.registry import SUITES, available_tasks

    tasks = available_tasks()
    return sorted({*tasks[:20], *SUITES, "no-such-task", "", " ", "\x00", "評価", "a" * 300})


TASK_WORDS = _evaluation_vocabulary()
REAL_TASKS = sorted(set(TASK_WORDS) & set(_available_tasks()))
ENDPOINT_NAMES = ["openai-completions", "openai-chat", "tgi"]
VALID_RUN_ID = st.integers(0, 10**6).map(lambda n: f"fuzz-{n}")
RUN_IDS = ["", "fuzz-1", "fuzz_run.2", "-", "a" * 200, "../x", "run id", "\x00", "評価"]
MODEL_WORDS = [
    *SAFE_MODELS,
    "",
    " ",
    "openai-completions",
    "nope:",
    f"openai-chat:{CLOSED},temperature=2",
    f"openai-completions:{CLOSED},max_tokens=-1",
    f"tgi:{CLOSED},bogus=1",
    "hf",
    ",,,=",
    "\x00",
]


def _mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`valid` four times in five: with several fields, a fully valid request stays common."""
    return st.one_of(valid, valid, valid, valid, other)


@st.composite
def start_requests(draw: st.DrawFn) -> evaluation_pb2.StartRunRequest:
    """StartRun requests, each field valid most of the time (so that some runs start, always on
    the closed port) and otherwise from the vocabulary or random text."""
    request = evaluation_pb2.StartRunRequest(
        run_id=draw(_mostly(VALID_RUN_ID, st.one_of(st.sampled_from(RUN_IDS), TEXT))),
        tasks=draw(
            _mostly(
                st.lists(st.sampled_from(REAL_TASKS), min_size=1, max_size=2),
                st.lists(st.one_of(st.sampled_from(TASK_WORDS), TEXT), max_size=3),
            )
        ),
        suite=draw(_mostly(st.just(""), st.sampled_from(["paper", "nope", " "]))),
        model_id=draw(_mostly(st.just(""), TEXT)),
        tokenizer=draw(_mostly(st.just(""), st.sampled_from(["gpt2", "\x00", "no/such"]))),
    )
    which = draw(_mostly(st.just("model"), st.sampled_from(["endpoints", "none"])))
    if which == "model":
        request.model = draw(_mostly(st.sampled_from(SAFE_MODELS), st.one_of(st.sampled_from(MODEL_WORDS), TEXT)))
    elif which == "endpoints":
        request.endpoints.backend = draw(_mostly(st.sampled_from(ENDPOINT_NAMES), st.sampled_from(["hf", "", "x"])))
        request.endpoints.urls.extend(
            draw(st.lists(st.sampled_from([CLOSED, CLOSED, "", "ftp://x", "http://"]), max_size=3))
        )
        request.endpoints.options.update(
            draw(st.dictionaries(st.sampled_from(["temperature", "x", ""]), TEXT, max_size=2))
        )
    if draw(st.booleans()):
        request.limit = draw(_mostly(st.just(1), st.sampled_from([0, 2, 2**32 - 1])))
    return request


def _would_do_real_work(payload: bytes) -> bool:
    """Whether the server could accept this StartRun and then do real work: launch a model server,
    or call a model anywhere but the closed port. Such payloads are never sent."""
    from hyoka.orchestrator.backends.registry import parse_model_spec
    from hyoka.orchestrator.evaluation.requests import ENDPOINT_BACKENDS, RunInputError, check
    from hyoka.orchestrator.evaluation.servicer import to_request

    try:
        message = evaluation_pb2.StartRunRequest.FromString(payload)
    except DecodeError:
        return False
    try:
        request = to_request(message)
        check(request)
        if request.launch is not None:
            return True  # valid: the server would start a container (docker, podman)
        spec = request.model_spec()
        name, _ = parse_model_spec(spec)
    except RunInputError:
        return False  # refused before anything runs
    except Exception:
        return False
    return name not in ENDPOINT_BACKENDS or "://" in re.sub(rf"{re.escape(CLOSED)}(?![0-9])", "", spec)


def _cancel_all(channel: grpc.Channel) -> None:
    """Cancel every run not yet ended (a started run fails at once on the closed port anyway)."""
    reply = evaluation_pb2.ListRunsResponse.FromString(
        channel.unary_unary(LIST_RUNS)(evaluation_pb2.ListRunsRequest(page_size=100).SerializeToString(), timeout=10)
    )
    for run in reply.runs:
        if run.state in (evaluation_pb2.RUN_STATE_QUEUED, evaluation_pb2.RUN_STATE_RUNNING):
            unary(channel, CANCEL_RUN, evaluation_pb2.CancelRunRequest(run_id=run.run_id).SerializeToString())


def _watch_checked(channel: grpc.Channel, payload: bytes) -> grpc.StatusCode:
    """Read at most 3 updates of WatchRun under a short deadline. The stream of a run that has not
    ended stays open by design, so a DEADLINE_EXCEEDED from our own (short) deadline is not a
    server hang and is accepted here, for WatchRun only; an unknown run ends NOT_FOUND at once,
    a bad id INVALID_ARGUMENT, and every other status is judged as everywhere else."""

    def read() -> None:
        call = channel.unary_stream(WATCH_RUN)(payload, timeout=WATCH_DEADLINE)
        try:
            for i, _ in enumerate(call):
                if i >= 2:
                    break
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:  # type: ignore[attr-defined]
                raise
        finally:
            call.cancel()

    return _outcome(read, WATCH_RUN)


EVAL_METHODS = [START_RUN, WATCH_RUN, GET_RUN, LIST_RUNS, CANCEL_RUN]


def _evaluation_call(channel: grpc.Channel, method: str, payload: bytes) -> grpc.StatusCode:
    if method == START_RUN:
        assume(not _would_do_real_work(payload))
    code = _watch_checked(channel, payload) if method == WATCH_RUN else unary(channel, method, payload)
    if method == START_RUN and code == grpc.StatusCode.OK:
        _cancel_all(channel)
    return code


def _evaluation_seeds() -> list[bytes]:
    requests = [
        evaluation_pb2.StartRunRequest(run_id="fuzz-seed0", model=SAFE_MODELS[0], tasks=[REAL_TASKS[0]], limit=1),
        evaluation_pb2.StartRunRequest(
            run_id="fuzz-seed",
            endpoints=evaluation_pb2.ModelEndpoints(backend="openai-chat", urls=[CLOSED], options={"x": "1"}),
            suite="paper",
            limit=1,
            model_id="m",
        ),
    ]
    return [r.SerializeToString() for r in requests]


EVAL_SEEDS = _evaluation_seeds()
RUN_ID_REQUESTS = {
    WATCH_RUN: evaluation_pb2.WatchRunRequest,
    GET_RUN: evaluation_pb2.GetRunRequest,
    CANCEL_RUN: evaluation_pb2.CancelRunRequest,
}


@FUZZ
@given(method=st.sampled_from(EVAL_METHODS), payload=RANDOM_BYTES)
def test_evaluation_random_bytes(evaluation: grpc.Channel, method: str, payload: bytes) -> None:
    _evaluation_call(evaluation, method, payload)
    assert_serving(evaluation, EVALUATION)


@FUZZ
@given(payload=mutated(EVAL_SEEDS))
def test_start_run_mutated(evaluation: grpc.Channel, payload: bytes) -> None:
    _evaluation_call(evaluation, START_RUN, payload)
    assert_serving(evaluation, EVALUATION)


@FUZZ
@given(request=st.one_of(start_requests(), messages(evaluation_pb2.StartRunRequest.DESCRIPTOR)))
def test_start_run_generated(evaluation: grpc.Channel, request: Message) -> None:
    _evaluation_call(evaluation, START_RUN, request.SerializeToString())
    assert_serving(evaluation, EVALUATION)


@FUZZ
@given(
    method=st.sampled_from(sorted(RUN_ID_REQUESTS)),
    run_id=st.one_of(st.sampled_from([*RUN_IDS, "fuzz-seed"]), TEXT),
    generated=st.one_of(st.none(), messages(evaluation_pb2.GetRunRequest.DESCRIPTOR)),
)
def test_run_id_rpcs_generated(evaluation: grpc.Channel, method: str, run_id: str, generated: Any) -> None:
    request = generated if generated is not None else RUN_ID_REQUESTS[method](run_id=run_id)
    _evaluation_call(evaluation, method, request.SerializeToString())
    assert_serving(evaluation, EVALUATION)


@FUZZ
@given(request=messages(evaluation_pb2.ListRunsRequest.DESCRIPTOR))
def test_list_runs_generated(evaluation: grpc.Channel, request: Message) -> None:
    assert _evaluation_call(evaluation, LIST_RUNS, request.SerializeToString()) in (
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert_serving(evaluation, EVALUATION)


def test_watch_unknown_and_started_runs(evaluation: grpc.Channel) -> None:
    """The two ends of WatchRun, deterministic: an unknown id ends NOT_FOUND at once; a started
    run (on the closed port) streams until it ends, which our deadline may cut (accepted)."""
    unknown = evaluation_pb2.WatchRunRequest(run_id="fuzz-no-such-run").SerializeToString()
    assert _watch_checked(evaluation, unknown) == grpc.StatusCode.NOT_FOUND
    start = evaluation_pb2.StartRunRequest(run_id="fuzz-watched", model=SAFE_MODELS[0], tasks=[REAL_TASKS[0]], limit=1)
    code = unary(evaluation, START_RUN, start.SerializeToString())
    assert code in (grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.RESOURCE_EXHAUSTED)
    if code != grpc.StatusCode.RESOURCE_EXHAUSTED:
        watched = evaluation_pb2.WatchRunRequest(run_id="fuzz-watched").SerializeToString()
        assert _watch_checked(evaluation, watched) in (grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED)
        unary(evaluation, CANCEL_RUN, evaluation_pb2.CancelRunRequest(run_id="fuzz-watched").SerializeToString())
    assert_serving(evaluation, EVALUATION)

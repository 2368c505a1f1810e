"""Property-based fuzzing of every RPC of the metrics and analysis servers (and the health and
reflection services every hyoka server carries), through real in-process servers and real gRPC
calls: random bytes as request payloads (a generic channel call sends them unserialised), valid
requests mutated byte by byte, and messages generated from the proto descriptors with hyoka's own
vocabulary mixed in (metric names, options, benchmarks) so that they reach past the first check.

Properties: every reply is OK or a defined application status (never UNKNOWN or INTERNAL, which
an unhandled exception gives; never a hang, which the deadline would show); an INVALID_ARGUMENT
names the offending field (google.rpc.BadRequest); the server keeps serving after each call; and
its memory stays bounded over repeated calls.

Budget: a fixed seed and HYOKA_FUZZ_EXAMPLES examples per test (conftest.py; the default keeps
CI to about half a minute). Longer: `HYOKA_FUZZ_EXAMPLES=5000 pytest tests/fuzz`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from hypothesis import currently_in_test_context, event, given
from hypothesis import strategies as st

from hyoka.rpc.errors import field_violations
from hyoka.v1 import analysis_pb2, metrics_pb2

from .conftest import FUZZ, ThreadedServer

pytestmark = pytest.mark.fuzz

DEADLINE = 30.0
#: Statuses that mean a bug: an unhandled exception (UNKNOWN, INTERNAL), a method the server
#: should have (UNIMPLEMENTED), a server that went away (UNAVAILABLE), or one that hung.
FORBIDDEN = {
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.DATA_LOSS,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}

SCORE = "/hyoka.v1.MetricsService/Score"
SCORE_STREAM = "/hyoka.v1.MetricsService/ScoreStream"
LIST_METRICS = "/hyoka.v1.MetricsService/ListMetrics"
ANALYZE = "/hyoka.v1.AnalysisService/Analyze"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


# --- calls ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metrics(metrics_server: ThreadedServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(metrics_server.target) as channel:
        yield channel


@pytest.fixture(scope="module")
def analysis(analysis_server: ThreadedServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(analysis_server.target) as channel:
        yield channel


def _event(what: str) -> None:
    """Tally outcomes for `pytest --hypothesis-show-statistics` (inside hypothesis tests only)."""
    if currently_in_test_context():
        event(what)


def _outcome(call: Callable[[], Any], method: str) -> grpc.StatusCode:
    """Run one call; fail on a forbidden status or an INVALID_ARGUMENT that names no field."""
    try:
        call()
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
        details = error.details()  # type: ignore[attr-defined]
        assert code not in FORBIDDEN, f"{method} answered {code.name}: {details}"
        fields = sorted(field_violations(error))  # type: ignore[arg-type]
        if code == grpc.StatusCode.INVALID_ARGUMENT and method != REFLECTION:
            assert fields, f"{method}: INVALID_ARGUMENT without a field: {details}"
        where = re.sub(r"\[[^]]*\]", "[]", fields[0]) if fields else ""
        _event(f"{method.rpartition('/')[2]}: {code.name} {where}".rstrip())
        return code
    _event(f"{method.rpartition('/')[2]}: OK")
    return grpc.StatusCode.OK


def unary(channel: grpc.Channel, method: str, payload: bytes) -> grpc.StatusCode:
    return _outcome(lambda: channel.unary_unary(method)(payload, timeout=DEADLINE), method)


def client_stream(channel: grpc.Channel, method: str, payloads: Sequence[bytes]) -> grpc.StatusCode:
    return _outcome(lambda: channel.stream_unary(method)(iter(payloads), timeout=DEADLINE), method)


def watch(channel: grpc.Channel, payload: bytes) -> grpc.StatusCode:
    def first_update() -> None:
        call = channel.unary_stream(HEALTH_WATCH)(payload, timeout=DEADLINE)
        try:
            next(call)  # a valid request is answered at once, then the stream stays open
        finally:
            call.cancel()

    return _outcome(first_update, HEALTH_WATCH)


def reflection(channel: grpc.Channel, payloads: Sequence[bytes]) -> grpc.StatusCode:
    return _outcome(lambda: list(channel.stream_stream(REFLECTION)(iter(payloads), timeout=DEADLINE)), REFLECTION)


def assert_serving(channel: grpc.Channel, service: str) -> None:
    reply = health_pb2.HealthCheckResponse.FromString(
        channel.unary_unary(HEALTH_CHECK)(
            health_pb2.HealthCheckRequest(service=service).SerializeToString(), timeout=10
        )
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


# --- strategies -----------------------------------------------------------------------------


def _vocabulary() -> list[str]:
    from hyoka.metrics.registry import METRICS
    from hyoka.orchestrator.analysis.loaders import load_default_scores

    words = {"", " ", "\x00", "評価", "a" * 300}
    for spec in METRICS.values():
        words.add(spec.name)
        for option in spec.options:
            words.update((option.name, option.default, *option.allowed))
    table = load_default_scores()
    words.update(table.benchmarks)
    words.update(table.models[:5])
    words.update(("en_tokens_B unknown", "verified", "recalled", "1", "0", "-1", "nan", "1e309"))
    return sorted(words)


VOCABULARY = _vocabulary()
TEXT = st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=40))
_INTS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_NUMBERS = st.one_of(
    st.sampled_from([0.0, 0.25, 0.5, 1.0, -0.0]),
    st.floats(min_value=0, max_value=1),
    st.floats(allow_nan=True, allow_infinity=True),
)


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind in _INTS:
        low, high = _INTS[kind]
        return st.one_of(st.integers(max(low, -3), min(high, 20)), st.integers(low, high))
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return _NUMBERS
    if kind == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32, allow_nan=True, allow_infinity=True)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_STRING:
        return TEXT
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=40)
    if kind == FieldDescriptor.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]), st.integers(-3, 50))
    raise AssertionError(f"no strategy for {field.full_name}")


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of `descriptor`'s type: every field set or not, scalars from the whole range of
    their type (NaN and infinities too), short repeated fields and maps, nesting up to 4 deep."""
    cls = message_factory.GetMessageClass(descriptor)

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        message = cls()
        for field in descriptor.fields:
            if not draw(st.booleans()):
                continue
            target = getattr(message, field.name) if field.is_repeated else None
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                key_field, value_field = (
                    field.message_type.fields_by_name["key"],
                    field.message_type.fields_by_name["value"],
                )
                for key in draw(st.lists(_scalar(key_field), max_size=5)):
                    if value_field.message_type is not None:
                        target[key].CopyFrom(draw(messages(value_field.message_type, depth + 1)))  # type: ignore[index]
                    else:
                        target[key] = draw(_scalar(value_field))  # type: ignore[index]
            elif field.message_type is not None:
                if depth >= 4:
                    continue
                if field.is_repeated:
                    target.extend(draw(st.lists(messages(field.message_type, depth + 1), max_size=5)))  # type: ignore[union-attr]
                else:
                    getattr(message, field.name).CopyFrom(draw(messages(field.message_type, depth + 1)))
            elif field.is_repeated:
                target.extend(draw(st.lists(_scalar(field), max_size=6)))  # type: ignore[union-attr]
            else:
                setattr(message, field.name, draw(_scalar(field)))
        return message

    return build()


def serialized(descriptor: Descriptor) -> st.SearchStrategy[bytes]:
    return messages(descriptor).map(lambda m: m.SerializeToString())


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes]) -> bytes:
    """A valid request with a few byte-level mutations: flips, insertions, deletions, truncation,
    repeated slices, and another seed spliced in (protobuf merges concatenated messages)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "repeat", "splice"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            data[min(at, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[min(at, len(data) - 1)] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 0x0A, 0x12, 0x1A, 0x22]))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[at:]
        elif op == "repeat":
            end = min(len(data), at + draw(st.integers(1, 16)))
            data[end:end] = data[at:end] * draw(st.integers(1, 3))
        elif op == "splice":
            data += draw(st.sampled_from(seeds))
    return bytes(data)


RANDOM_BYTES = st.binary(max_size=512)
RANDOM_STREAM = st.lists(st.binary(max_size=256), max_size=5)


# --- seeds: valid requests ------------------------------------------------------------------


def _score_seeds() -> list[bytes]:
    items = metrics_pb2.ScoreRequest(metric="char_f1_fuzzywuzzy")
    items.items.add(prediction="東京", references=["東京都"])
    items.items.add(prediction="a b", references=["a", "b c"])
    columns = metrics_pb2.ScoreRequest(
        metric="bleu",
        options={"tokenize": "ja-mecab"},
        columns=metrics_pb2.ScoreColumns(predictions=["x y", "z"], references=["x", "y", "z"], reference_counts=[2, 1]),
    )
    passk = metrics_pb2.ScoreRequest(metric="pass_at_k", options={"k": "1"})
    passk.items.add(pass_counts=metrics_pb2.PassCounts(total=10, correct=3))
    rouge = metrics_pb2.ScoreRequest(
        metric="rouge2", columns=metrics_pb2.ScoreColumns(predictions=["今日は晴れ"], references=["今日は雨"])
    )
    return [m.SerializeToString() for m in (items, columns, passk, rouge)]


def _stream_seeds() -> list[list[bytes]]:
    config = metrics_pb2.ScoreStreamRequest(
        config=metrics_pb2.ScoreStreamConfig(metric="bleu", options={"tokenize": "13a"})
    ).SerializeToString()
    chunk = metrics_pb2.ScoreStreamRequest(
        chunk=metrics_pb2.ScoreStreamChunk(columns=metrics_pb2.ScoreColumns(predictions=["a b"], references=["a c"]))
    ).SerializeToString()
    items = metrics_pb2.ScoreStreamRequest(
        chunk=metrics_pb2.ScoreStreamChunk(items=[metrics_pb2.ScoreItem(prediction="1", references=["1"])])
    ).SerializeToString()
    return [[config, chunk, items], [config, items]]


def _analyze_seeds() -> list[bytes]:
    from hyoka.orchestrator.analysis.loaders import load_default_scores

    table = load_default_scores()
    matrix = analysis_pb2.ScoreMatrix(
        benchmarks=table.benchmarks[:6],
        models=[
            analysis_pb2.ModelScores(model_id=m, scores=table.values[i][:6].tolist(), group=table.groups[i])
            for i, m in enumerate(table.models[:8])
        ],
    )
    budgets = analysis_pb2.BudgetTable(
        rows=[
            analysis_pb2.ModelBudget(model_id=m, params_b=7, en_tokens_b=1000 + i, ja_tokens_b=10 * i, source="s")
            for i, m in enumerate(table.models[:8])
        ]
    )
    new = analysis_pb2.NewModelScores(model_id="new", scores={b: 0.5 for b in table.benchmarks[:4]})
    requests = [
        analysis_pb2.AnalyzeRequest(use_default_scores=True),
        analysis_pb2.AnalyzeRequest(scores=matrix, budgets=budgets, components=2, new_models=[new]),
        analysis_pb2.AnalyzeRequest(use_default_scores=True, use_default_budgets=True, components=3),
    ]
    return [r.SerializeToString() for r in requests]


SCORE_SEEDS = _score_seeds()
STREAM_SEEDS = _stream_seeds()
ANALYZE_SEEDS = _analyze_seeds()


def _metrics_vocabulary_stream() -> st.SearchStrategy[list[bytes]]:
    """ScoreStream messages: usually a plausible config first, then generated messages."""
    config = st.builds(
        lambda metric, options: metrics_pb2.ScoreStreamRequest(
            config=metrics_pb2.ScoreStreamConfig(metric=metric, options=options)
        ).SerializeToString(),
        st.sampled_from(VOCABULARY),
        st.dictionaries(st.sampled_from(VOCABULARY), st.sampled_from(VOCABULARY), max_size=2),
    )
    rest = st.lists(serialized(metrics_pb2.ScoreStreamRequest.DESCRIPTOR), max_size=4)
    return st.tuples(st.lists(config, max_size=1), rest).map(lambda parts: [*parts[0], *parts[1]])


def _metric_options() -> list[tuple[str, dict[str, list[str]]]]:
    from hyoka.metrics.registry import METRICS

    return [(spec.name, {o.name: [o.default, *o.allowed] for o in spec.options}) for spec in METRICS.values()]


METRIC_OPTIONS = _metric_options()
#: Texts that metrics find hard: empty, blank, control and zero-width characters, numbers of every
#: shape (the exact-match metrics parse them), long runs, mixed scripts, answers in a CoT wrapper.
HARD_TEXT = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "\n\n",
            "\u200b",
            "\x00",
            "#### 42",
            "the answer is (B).",
            "1e309",
            "-0",
            "１２３",
            "1,000,000.5",
            "٣",
            "NaN",
            "Ⅻ",
            "ｶﾀｶﾅ",
            "😀" * 50,
            "あ" * 3000,
            "def f():\n  return 1",
        ]
    ),
    st.text(max_size=60),
    st.text(alphabet=st.sampled_from("0123456789.,-+ #e"), max_size=20),
)


@st.composite
def score_requests(draw: st.DrawFn) -> bytes:
    """Score requests with a real metric and real option names (values real or not) over hard
    texts, in items or in columns: these reach the metrics themselves."""
    name, options = draw(st.sampled_from(METRIC_OPTIONS))
    request = metrics_pb2.ScoreRequest(metric=name)
    for option in (
        draw(st.lists(st.sampled_from(sorted(options)), max_size=len(options), unique=True)) if options else []
    ):
        request.options[option] = draw(st.one_of(st.sampled_from(options[option]), TEXT))
    count = draw(st.integers(0, 8))
    if draw(st.booleans()):
        for _ in range(count):
            item = request.items.add(prediction=draw(HARD_TEXT), references=draw(st.lists(HARD_TEXT, max_size=3)))
            if draw(st.booleans()):
                item.pass_counts.total, item.pass_counts.correct = draw(st.integers(0, 20)), draw(st.integers(0, 20))
    else:
        request.columns.predictions.extend(draw(st.lists(HARD_TEXT, min_size=count, max_size=count)))
        counts = draw(st.lists(st.integers(0, 3), min_size=count, max_size=count)) if draw(st.booleans()) else []
        request.columns.reference_counts.extend(counts)
        request.columns.references.extend(
            draw(
                st.lists(
                    HARD_TEXT, min_size=sum(counts) if counts else count, max_size=sum(counts) if counts else count
                )
            )
        )
    return request.SerializeToString()


# --- the metrics service ---------------------------------------------------------------------


@FUZZ
@given(payload=RANDOM_BYTES)
def test_score_random_bytes(metrics: grpc.Channel, payload: bytes) -> None:
    unary(metrics, SCORE, payload)
    assert_serving(metrics, "hyoka.v1.MetricsService")


@FUZZ
@given(payload=mutated(SCORE_SEEDS))
def test_score_mutated(metrics: grpc.Channel, payload: bytes) -> None:
    unary(metrics, SCORE, payload)
    assert_serving(metrics, "hyoka.v1.MetricsService")


@FUZZ
@given(request=messages(metrics_pb2.ScoreRequest.DESCRIPTOR))
def test_score_generated(metrics: grpc.Channel, request: Message) -> None:
    unary(metrics, SCORE, request.SerializeToString())
    assert_serving(metrics, "hyoka.v1.MetricsService")


@FUZZ
@given(payload=score_requests())
def test_score_plausible(metrics: grpc.Channel, payload: bytes) -> None:
    unary(metrics, SCORE, payload)
    assert_serving(metrics, "hyoka.v1.MetricsService")


@FUZZ
@given(payloads=st.one_of(RANDOM_STREAM, _metrics_vocabulary_stream()))
def test_score_stream_random_and_generated(metrics: grpc.Channel, payloads: list[bytes]) -> None:
    client_stream(metrics, SCORE_STREAM, payloads)
    assert_serving(metrics, "hyoka.v1.MetricsService")


@FUZZ
@given(
    seed=st.sampled_from(STREAM_SEEDS),
    which=st.integers(0, 2),
    replacement=st.one_of(mutated([m for s in STREAM_SEEDS for m in s]), RANDOM_BYTES),
)
def test_score_stream_mutated(metrics: grpc.Channel, seed: list[bytes], which: int, replacement: bytes) -> None:
    payloads = list(seed)
    payloads[min(which, len(payloads) - 1)] = replacement
    client_stream(metrics, SCORE_STREAM, payloads)
    assert_serving(metrics, "hyoka.v1.MetricsService")


@FUZZ
@given(payload=st.one_of(RANDOM_BYTES, serialized(metrics_pb2.ListMetricsRequest.DESCRIPTOR)))
def test_list_metrics(metrics: grpc.Channel, payload: bytes) -> None:
    assert unary(metrics, LIST_METRICS, payload) in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT)
    assert_serving(metrics, "hyoka.v1.MetricsService")


# --- the analysis service --------------------------------------------------------------------


@FUZZ
@given(payload=st.one_of(RANDOM_BYTES, mutated(ANALYZE_SEEDS)))
def test_analyze_random_and_mutated(analysis: grpc.Channel, payload: bytes) -> None:
    unary(analysis, ANALYZE, payload)
    assert_serving(analysis, "hyoka.v1.AnalysisService")


@FUZZ
@given(request=messages(analysis_pb2.AnalyzeRequest.DESCRIPTOR))
def test_analyze_generated(analysis: grpc.Channel, request: Message) -> None:
    unary(analysis, ANALYZE, request.SerializeToString())
    assert_serving(analysis, "hyoka.v1.AnalysisService")


@st.composite
def _analyze_matrix(draw: st.DrawFn) -> bytes:
    """Well-formed score matrices of odd shapes and values (constant columns, 0 and 1, ties,
    more components than models), with budgets and new models over the same names."""
    from hyoka.orchestrator.analysis.budgets import CONFIDENCE_LEVELS

    benchmarks = draw(st.lists(st.sampled_from(VOCABULARY), min_size=2, max_size=6, unique=True))
    n_models = draw(st.integers(3, 8))
    value = st.one_of(st.sampled_from([0.0, 1.0, 0.5]), st.floats(0, 1))
    models = [
        analysis_pb2.ModelScores(
            model_id=f"m{i}", scores=draw(st.lists(value, min_size=len(benchmarks), max_size=len(benchmarks)))
        )
        for i in range(n_models)
    ]
    request = analysis_pb2.AnalyzeRequest(
        scores=analysis_pb2.ScoreMatrix(benchmarks=benchmarks, models=models), components=draw(st.integers(0, 10))
    )
    # budget figures from the whole float range: the compute budget 6 N D overflows and underflows
    extreme = st.sampled_from([0.0, 5e-324, 1e-300, 1e-10, 1e10, 1e150, 1e300, 1.7e308])
    figure = st.one_of(st.none(), st.floats(1e-3, 1e5), extreme)
    for i in draw(st.lists(st.integers(0, n_models - 1), max_size=n_models, unique=True)):
        request.budgets.rows.add(
            model_id=f"m{i}",
            params_b=draw(st.one_of(st.none(), st.floats(1e-3, 1e4), extreme)),
            en_tokens_b=draw(figure),
            ja_tokens_b=draw(figure),
            source="s",
            confidence=draw(st.sampled_from(CONFIDENCE_LEVELS)),
            is_estimate=draw(st.booleans()),
        )
    for j in range(draw(st.integers(0, 2))):
        scores = draw(st.dictionaries(st.sampled_from(benchmarks), value, max_size=len(benchmarks)))
        request.new_models.add(model_id=f"new{j}", scores=scores)
    return request.SerializeToString()


@FUZZ
@given(payload=_analyze_matrix())
def test_analyze_well_formed_matrices(analysis: grpc.Channel, payload: bytes) -> None:
    unary(analysis, ANALYZE, payload)
    assert_serving(analysis, "hyoka.v1.AnalysisService")


# --- health and reflection (on both servers) -----------------------------------------------------


@FUZZ
@given(payload=st.one_of(RANDOM_BYTES, serialized(health_pb2.HealthCheckRequest.DESCRIPTOR)), on_metrics=st.booleans())
def test_health(metrics: grpc.Channel, analysis: grpc.Channel, payload: bytes, on_metrics: bool) -> None:
    channel = metrics if on_metrics else analysis
    assert unary(channel, HEALTH_CHECK, payload) in (
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
    )
    watch(channel, payload)
    assert_serving(channel, "")


@FUZZ
@given(
    payloads=st.one_of(
        RANDOM_STREAM, st.lists(serialized(reflection_pb2.ServerReflectionRequest.DESCRIPTOR), max_size=3)
    ),
    on_metrics=st.booleans(),
)
def test_reflection(metrics: grpc.Channel, analysis: grpc.Channel, payloads: list[bytes], on_metrics: bool) -> None:
    channel = metrics if on_metrics else analysis
    reflection(channel, payloads)
    assert_serving(channel, "")


# --- with a bearer token: garbage is refused before it is parsed ----------------------------------


@FUZZ
@given(payload=RANDOM_BYTES)
def test_unauthenticated_garbage(authed_metrics_server: ThreadedServer, payload: bytes) -> None:
    with grpc.insecure_channel(authed_metrics_server.target) as channel:
        for method in (SCORE, LIST_METRICS):
            assert unary(channel, method, payload) == grpc.StatusCode.UNAUTHENTICATED
        assert client_stream(channel, SCORE_STREAM, [payload]) == grpc.StatusCode.UNAUTHENTICATED
        assert unary(channel, HEALTH_CHECK, payload) != grpc.StatusCode.UNAUTHENTICATED


# --- memory --------------------------------------------------------------------------------------


def _garbage(rng: random.Random, seeds: Sequence[bytes]) -> bytes:
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(data) + 1)
        data[at:at] = rng.randbytes(rng.randint(1, 6))
        if rng.random() < 0.3:
            del data[rng.randrange(len(data) + 1) :]
    return bytes(data)


def test_memory_stays_bounded(metrics: grpc.Channel, analysis: grpc.Channel) -> None:
    """The same mix of bad and good calls, round after round: the server's memory (this process)
    settles instead of growing with the number of calls."""
    import gc

    psutil = pytest.importorskip("psutil")
    process = psutil.Process()

    def one_round() -> None:
        rng = random.Random(1234)  # the same calls every round
        for _ in range(150):
            unary(metrics, SCORE, _garbage(rng, SCORE_SEEDS))
            unary(metrics, SCORE, rng.choice(SCORE_SEEDS))
            client_stream(metrics, SCORE_STREAM, [_garbage(rng, SCORE_SEEDS), *rng.choice(STREAM_SEEDS)])
            unary(analysis, ANALYZE, _garbage(rng, ANALYZE_SEEDS))
            unary(analysis, HEALTH_CHECK, rng.randbytes(rng.randint(0, 64)))
        unary(analysis, ANALYZE, ANALYZE_SEEDS[1])

    one_round()  # warm-up: caches, pools, the allocator's arenas
    one_round()
    gc.collect()
    before = process.memory_info().rss
    for _ in range(3):
        one_round()
    gc.collect()
    grown = process.memory_info().rss - before
    print(f"memory: {before / 2**20:.0f} MiB after warm-up, {grown / 2**20:+.1f} MiB after 3 more rounds")
    assert grown < 40 * 1024 * 1024, f"memory grew by {grown / 2**20:.1f} MiB over 3 rounds of 750 calls"
    assert_serving(metrics, "hyoka.v1.MetricsService")
    assert_serving(analysis, "hyoka.v1.AnalysisService")

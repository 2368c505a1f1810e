"""The sandbox's domain service: validates requests, admits runs into a bounded queue, runs them
on a fixed number of workers and checks HumanEval-style completions. Transport-free: the gRPC
servicer translates messages to and from these types."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from hyoka.rpc.errors import InvalidArgument, ResourceExhausted
from hyoka.sandbox import __version__, policy
from hyoka.sandbox.capabilities import Capabilities
from hyoka.sandbox.config import HUMANEVAL_WALL_TIME_MS, SandboxConfig
from hyoka.sandbox.engine import Engine
from hyoka.sandbox.humaneval import Problem, build_program, load_problem_sets, pass_at_k
from hyoka.sandbox.policy import Limits, violations
from hyoka.sandbox.runs import RunResult, Status
from hyoka.sandbox.runtimes import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgramSpec:
    program: bytes
    limits: Limits = field(default_factory=Limits)
    stdin: bytes = b""
    #: A runtime name; "" takes the batch's, then the server's default.
    runtime: str = ""


@dataclass(frozen=True)
class CheckOutcome:
    problem_id: str
    results: list[RunResult]
    num_correct: int
    pass_at_k: list[tuple[int, float]]
    signature: dict[str, str]
    runtime: str = ""


class Admission:
    """At most `workers` runs at once and `max_queued` more waiting; beyond that, refuse."""

    def __init__(self, workers: int, max_queued: int) -> None:
        self._slots = asyncio.Semaphore(workers)
        self._capacity = workers + max_queued
        self.admitted = 0

    def reserve(self, runs: int) -> None:
        if self.admitted + runs > self._capacity:
            raise ResourceExhausted(
                f"the sandbox queue is full ({self.admitted} runs admitted, room for {self._capacity}); retry later"
            )
        self.admitted += runs

    def release(self, runs: int = 1) -> None:
        self.admitted -= runs

    @contextlib.contextmanager
    def reserved(self, runs: int) -> Iterator[None]:
        """Reserve `runs` (or refuse, see `reserve`) for the duration of the block."""
        self.reserve(runs)
        try:
            yield
        finally:
            self.release(runs)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            yield


class SandboxService:
    def __init__(self, config: SandboxConfig, capabilities: Capabilities, runtimes: Mapping[str, Runtime]) -> None:
        """`runtimes` by name; config.default_runtime must be one of them."""
        self.config = config
        self.capabilities = capabilities
        self.default_runtime = runtimes[config.default_runtime]
        # the default first: the engine's runs without a name take it
        self.runtimes = {config.default_runtime: self.default_runtime, **runtimes}
        self.engine = Engine(config, capabilities, self.runtimes)
        self.admission = Admission(config.workers, config.max_queued_runs)
        self.problems, self.problem_sets = load_problem_sets(config.data_dir)

    def start(self) -> None:
        self.engine.start()

    async def close(self) -> None:
        await self.engine.close()

    # ---------------------------------------------------------------- validation
    def runtime(self, name: str, field_name: str = "runtime") -> Runtime:
        """The runtime called `name` ("" for the default); INVALID_ARGUMENT naming the field and
        listing the runtimes otherwise."""
        if not name:
            return self.default_runtime
        if name not in self.runtimes:
            raise InvalidArgument(
                field_name, f"unknown runtime {name!r} (available: {', '.join(sorted(self.runtimes))})"
            )
        return self.runtimes[name]

    def _check_program(self, spec: ProgramSpec, prefix: str, base: Limits) -> Limits:
        found: list[tuple[str, str]] = []
        if not spec.program:
            found.append((f"{prefix}program", "must not be empty"))
        elif len(spec.program) > self.config.max_program_bytes:
            found.append(
                (
                    f"{prefix}program",
                    f"{len(spec.program)} bytes exceeds the maximum of {self.config.max_program_bytes}",
                )
            )
        else:
            try:
                spec.program.decode("utf-8")
            except UnicodeDecodeError as error:
                found.append((f"{prefix}program", f"is not valid UTF-8 ({error.reason} at byte {error.start})"))
        if len(spec.stdin) > self.config.max_stdin_bytes:
            found.append(
                (f"{prefix}stdin", f"{len(spec.stdin)} bytes exceeds the maximum of {self.config.max_stdin_bytes}")
            )
        found += violations(spec.limits, self.config.max_limits, f"{prefix}limits")
        if found:
            raise InvalidArgument.of(found)
        return spec.limits.over(base)

    # ---------------------------------------------------------------- running
    async def _run_admitted(
        self, program: bytes, limits: Limits, stdin: bytes, check_mode: bool, runtime: Runtime
    ) -> RunResult:
        """Run once a worker is free. The caller reserved the run and releases it (a task
        cancelled before it starts never runs its own `finally`)."""
        async with self.admission.slot():
            return await self.engine.run(program, limits, stdin, check_mode, runtime.name)

    async def execute(self, spec: ProgramSpec) -> RunResult:
        runtime = self.runtime(spec.runtime)
        limits = self._check_program(spec, "", self.config.default_limits)
        with self.admission.reserved(1):
            return await self._run_admitted(spec.program, limits, spec.stdin, False, runtime)

    async def execute_batch(
        self, specs: Sequence[ProgramSpec], shared: Limits, runtime: str = ""
    ) -> AsyncIterator[tuple[int, RunResult]]:
        if not specs:
            raise InvalidArgument("programs", "must hold at least one program")
        if len(specs) > self.config.max_batch_size:
            raise InvalidArgument(
                "programs", f"{len(specs)} programs exceeds the maximum of {self.config.max_batch_size}"
            )
        policy.check(shared, self.config.max_limits, "limits")
        shared_runtime = self.runtime(runtime)
        base = shared.over(self.config.default_limits)
        resolved = [self._check_program(spec, f"programs[{i}].", base) for i, spec in enumerate(specs)]
        runtimes = [
            self.runtime(spec.runtime, f"programs[{i}].runtime") if spec.runtime else shared_runtime
            for i, spec in enumerate(specs)
        ]

        async def indexed(index: int, spec: ProgramSpec, limits: Limits, on: Runtime) -> tuple[int, RunResult]:
            return index, await self._run_admitted(spec.program, limits, spec.stdin, False, on)

        with self.admission.reserved(len(specs)):
            tasks = [
                asyncio.ensure_future(indexed(i, spec, limits, on))
                for i, (spec, limits, on) in enumerate(zip(specs, resolved, runtimes, strict=True))
            ]
            try:
                for finished in asyncio.as_completed(tasks):
                    yield await finished
            finally:
                for task in tasks:
                    task.cancel()

    def resolve_problem(self, problem_id: str | None, inline: Problem | None) -> Problem:
        if problem_id is not None:
            if problem_id not in self.problems:
                known = ", ".join(info.name for info in self.problem_sets) or "none"
                raise InvalidArgument("problem_id", f"unknown problem id {problem_id!r} (problem sets loaded: {known})")
            return self.problems[problem_id]
        if inline is None:
            raise InvalidArgument("problem", "give either problem_id or problem")
        found = [
            (f"problem.{name}", "must not be empty")
            for name, value in (("prompt", inline.prompt), ("test", inline.test), ("entry_point", inline.entry_point))
            if not value
        ]
        if inline.entry_point and not inline.entry_point.isidentifier():
            found.append(("problem.entry_point", f"{inline.entry_point!r} is not a Python identifier"))
        if found:
            raise InvalidArgument.of(found)
        return inline

    async def check_completions(
        self,
        problem_id: str | None,
        inline: Problem | None,
        completions: Sequence[str],
        ks: Sequence[int],
        limits: Limits,
        runtime: str = "",
    ) -> CheckOutcome:
        problem = self.resolve_problem(problem_id, inline)
        chosen = self.runtime(runtime)
        n = len(completions)
        found: list[tuple[str, str]] = []
        if n == 0:
            found.append(("completions", "must hold at least one completion"))
        elif n > self.config.max_completions:
            found.append(("completions", f"{n} completions exceeds the maximum of {self.config.max_completions}"))
        ks = list(ks) or [1]
        for i, k in enumerate(ks):
            if k < 1 or k > n:
                found.append((f"k[{i}]", f"k={k} must be between 1 and n={n} (the number of completions)"))
        found += violations(limits, self.config.max_limits, "limits")
        programs = [build_program(problem, completion).encode("utf-8") for completion in completions]
        for i, program in enumerate(programs):
            if len(program) > self.config.max_program_bytes:
                found.append((f"completions[{i}]", f"the program is {len(program)} bytes, above the maximum"))
        if found:
            raise InvalidArgument.of(found)
        resolved = limits.over(Limits(wall_time_ms=HUMANEVAL_WALL_TIME_MS)).over(self.config.default_limits)
        with self.admission.reserved(n):
            tasks = [asyncio.ensure_future(self._run_admitted(p, resolved, b"", True, chosen)) for p in programs]
            try:
                results = list(await asyncio.gather(*tasks))
            finally:
                for task in tasks:
                    task.cancel()
        correct = sum(r.status is Status.PASSED for r in results)
        estimates = [(k, pass_at_k(n, correct, k)) for k in ks]
        signature = self.signature(resolved, chosen)
        return CheckOutcome(problem_id or "", results, correct, estimates, signature, chosen.name)

    def signature(self, limits: Limits, runtime: Runtime | None = None) -> dict[str, str]:
        runtime = runtime or self.default_runtime
        return {
            "program": "bigcode humaneval: prompt+completion+'\\n'+'\\n'+test+'\\n'+check(entry_point)",
            "exec": (
                "exec(program, {}) after bigcode's reliability_guard, inside swallow_io (output discarded, "
                "input reads raise OSError); any exception, SystemExit included, fails"
            ),
            "timeout_s": f"{limits.wall_time_ms / 1000:g}",
            "estimator": "unbiased pass@k (Chen et al. 2021)",
            "isolation": self.isolation,
            "python": runtime.python_version,
            "runtime": runtime.name,
            "runtime_sha256": runtime.sha256,
            "hyoka-sandbox": __version__,
        }

    @property
    def isolation(self) -> str:
        if self.config.insecure:
            return "insecure-none"
        parts = ["bubblewrap-zygote" if self.config.mode == "zygote" else "bubblewrap-single-use"]
        if self.capabilities.seccomp:
            parts.append("seccomp")
        if self.capabilities.cgroups is not None:
            parts.append(f"cgroup-{self.capabilities.cgroup_version}")
        return "+".join(parts)

    @property
    def python_version(self) -> str:
        return self.capabilities.python_version

"""gRPC transport of the sandbox: hyoka.v1.SandboxService messages <-> the domain service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import fields
from typing import Any, TypeAlias

import grpc

from hyoka.rpc.errors import handle_errors
from hyoka.sandbox import __version__
from hyoka.sandbox.humaneval import Problem
from hyoka.sandbox.policy import Limits
from hyoka.sandbox.runs import RunResult, Status
from hyoka.sandbox.runtimes import Runtime
from hyoka.sandbox.service import ProgramSpec, SandboxService
from hyoka.v1 import common_pb2, sandbox_pb2, sandbox_pb2_grpc

_STATUS = {
    Status.PASSED: sandbox_pb2.EXECUTION_STATUS_PASSED,
    Status.FAILED: sandbox_pb2.EXECUTION_STATUS_FAILED,
    Status.TIMEOUT: sandbox_pb2.EXECUTION_STATUS_TIMEOUT,
    Status.MEMORY_LIMIT: sandbox_pb2.EXECUTION_STATUS_MEMORY_LIMIT,
    Status.OUTPUT_LIMIT: sandbox_pb2.EXECUTION_STATUS_OUTPUT_LIMIT,
    Status.SANDBOX_ERROR: sandbox_pb2.EXECUTION_STATUS_SANDBOX_ERROR,
}

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


def limits_from_pb(message: sandbox_pb2.ResourceLimits) -> Limits:
    return Limits(**{f.name: int(getattr(message, f.name)) for f in fields(Limits)})


def limits_to_pb(limits: Limits) -> sandbox_pb2.ResourceLimits:
    return sandbox_pb2.ResourceLimits(**limits.as_dict())


def result_to_pb(result: RunResult) -> sandbox_pb2.ExecutionResult:
    return sandbox_pb2.ExecutionResult(
        status=_STATUS[result.status],
        exit_code=result.exit_code,
        stdout=result.stdout,
        stderr=result.stderr,
        stdout_truncated=result.stdout_truncated,
        stderr_truncated=result.stderr_truncated,
        duration_seconds=result.duration_seconds,
        cpu_seconds=result.cpu_seconds,
        detail=result.detail,
        runtime=result.runtime,
        runtime_sha256=result.runtime_sha256,
    )


def runtime_to_pb(runtime: Runtime) -> sandbox_pb2.SandboxRuntime:
    return sandbox_pb2.SandboxRuntime(
        name=runtime.name,
        python=runtime.python,
        python_version=runtime.python_version,
        sha256=runtime.sha256,
        packages=[common_pb2.ComponentVersion(name=name, version=version) for name, version in runtime.packages],
        description=runtime.description,
        source=runtime.source,
        deviation=runtime.deviation,
        lock_sha256=runtime.lock_sha256,
    )


def _spec(message: sandbox_pb2.ExecuteRequest) -> ProgramSpec:
    return ProgramSpec(
        program=message.program, limits=limits_from_pb(message.limits), stdin=message.stdin, runtime=message.runtime
    )


class SandboxServicer(sandbox_pb2_grpc.SandboxServiceServicer):
    def __init__(self, service: SandboxService) -> None:
        self.service = service

    @handle_errors
    async def Execute(  # noqa: N802 - gRPC method names
        self, request: sandbox_pb2.ExecuteRequest, context: Context
    ) -> sandbox_pb2.ExecuteResponse:
        result = await self.service.execute(_spec(request))
        return sandbox_pb2.ExecuteResponse(result=result_to_pb(result))

    @handle_errors
    async def ExecuteBatch(  # noqa: N802
        self, request: sandbox_pb2.ExecuteBatchRequest, context: Context
    ) -> AsyncIterator[sandbox_pb2.ExecuteBatchResponse]:
        specs = [_spec(p) for p in request.programs]
        batch = self.service.execute_batch(specs, limits_from_pb(request.limits), request.runtime)
        async for index, result in batch:
            yield sandbox_pb2.ExecuteBatchResponse(index=index, result=result_to_pb(result))

    @handle_errors
    async def CheckCompletions(  # noqa: N802
        self, request: sandbox_pb2.CheckCompletionsRequest, context: Context
    ) -> sandbox_pb2.CheckCompletionsResponse:
        source = request.WhichOneof("problem_source")
        problem_id = request.problem_id if source == "problem_id" else None
        inline = None
        if source == "problem":
            p = request.problem
            inline = Problem(task_id="", prompt=p.prompt, test=p.test, entry_point=p.entry_point)
        outcome = await self.service.check_completions(
            problem_id,
            inline,
            list(request.completions),
            list(request.k),
            limits_from_pb(request.limits),
            request.runtime,
        )
        return sandbox_pb2.CheckCompletionsResponse(
            problem_id=outcome.problem_id,
            results=[
                sandbox_pb2.CompletionResult(index=i, passed=r.status is Status.PASSED, execution=result_to_pb(r))
                for i, r in enumerate(outcome.results)
            ],
            num_samples=len(outcome.results),
            num_correct=outcome.num_correct,
            pass_at_k=[sandbox_pb2.PassAtK(k=k, value=v) for k, v in outcome.pass_at_k],
            signature=_signature(outcome.signature),
            runtime=outcome.runtime,
        )

    @handle_errors
    async def GetSandboxInfo(  # noqa: N802
        self, request: sandbox_pb2.GetSandboxInfoRequest, context: Context
    ) -> sandbox_pb2.GetSandboxInfoResponse:
        svc = self.service
        caps = svc.capabilities
        config = svc.config
        return sandbox_pb2.GetSandboxInfoResponse(
            capabilities=sandbox_pb2.HostCapabilities(
                user_namespaces=caps.user_namespaces,
                seccomp=caps.seccomp,
                cgroup_memory=caps.cgroups is not None,
                cgroup_pids=caps.cgroups is not None,
                cgroup_version=caps.cgroup_version,
                proc_mount=caps.proc_mount,
                hostname=caps.hostname,
                disable_userns=caps.disable_userns,
            ),
            isolation=svc.isolation,
            insecure=config.insecure,
            default_limits=limits_to_pb(config.default_limits),
            max_limits=limits_to_pb(config.max_limits),
            workers=config.workers,
            max_queued_runs=config.max_queued_runs,
            max_program_bytes=config.max_program_bytes,
            max_stdin_bytes=config.max_stdin_bytes,
            max_batch_size=config.max_batch_size,
            max_completions=config.max_completions,
            problem_sets=[
                sandbox_pb2.ProblemSet(name=i.name, num_problems=i.num_problems, source=i.source, sha256=i.sha256)
                for i in svc.problem_sets
            ],
            versions=[
                common_pb2.ComponentVersion(name="hyoka-sandbox", version=__version__),
                common_pb2.ComponentVersion(name="python-sandboxed", version=svc.default_runtime.python_version),
                common_pb2.ComponentVersion(name="bubblewrap", version=caps.bwrap_version),
                common_pb2.ComponentVersion(name="grpcio", version=grpc.__version__),
            ],
            warnings=[*caps.warnings, *(w for r in svc.runtimes.values() for w in r.warnings)],
            runtimes=[runtime_to_pb(r) for r in svc.runtimes.values()],
            default_runtime=svc.default_runtime.name,
        )


def _signature(fields_: dict[str, str]) -> common_pb2.ScoreSignature:
    text = "pass@k|" + "|".join(f"{k}:{v}" for k, v in sorted(fields_.items()) if k not in ("program", "exec"))
    return common_pb2.ScoreSignature(metric="pass@k", fields=fields_, text=text)

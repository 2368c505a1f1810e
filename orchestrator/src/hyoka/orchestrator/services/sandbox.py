"""Thin async client of the sandbox service (protos/hyoka/v1/sandbox.proto)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import grpc

from hyoka.orchestrator.services._common import ServiceCallError, ServiceClient
from hyoka.orchestrator.tasks.scoring import CodeSubmission, CodeVerdict
from hyoka.rpc.tls import ClientTLS
from hyoka.v1 import sandbox_pb2, sandbox_pb2_grpc


class SandboxClient(ServiceClient):
    """Checks HumanEval-style completions with SandboxService.CheckCompletions, a few problems at
    once, and runs batches of programs (`execute_batch`). The target may name several replicas
    (`ipv4:10.0.0.1:50052,10.0.0.2:50052`): a call or batch cut by a replica going away is sent
    again to another (see `execute_batch`)."""

    service_name = "hyoka.v1.SandboxService"

    def __init__(
        self,
        target: str,
        *,
        auth_token: str | None = None,
        timeout: float = 120.0,
        max_parallel: int = 2,
        tls: ClientTLS | None = None,
    ) -> None:
        super().__init__(target, auth_token=auth_token, timeout=timeout, tls=tls)
        self._stub = sandbox_pb2_grpc.SandboxServiceStub(self.channel)  # type: ignore[no-untyped-call]
        # One problem's n programs already keep the server's workers busy; two problems in flight
        # hide the round trips without overrunning its queue.
        self._max_parallel = max(1, max_parallel)

    async def info(self) -> sandbox_pb2.GetSandboxInfoResponse:
        reply: sandbox_pb2.GetSandboxInfoResponse = await self.call(
            "sandbox GetSandboxInfo",
            lambda: self._stub.GetSandboxInfo(sandbox_pb2.GetSandboxInfoRequest(), timeout=self.timeout),
        )
        return reply

    async def execute_batch(
        self,
        programs: Sequence[sandbox_pb2.ExecuteRequest],
        *,
        limits: sandbox_pb2.ResourceLimits | None = None,
        runtime: str = "",
        on_result: Callable[[int, sandbox_pb2.ExecutionResult], None] | None = None,
    ) -> list[sandbox_pb2.ExecutionResult]:
        """Run `programs` with one ExecuteBatch; each program's result, in input order. Results
        stream back as programs finish (`on_result(index, result)` is called once per program as
        its result arrives). When the stream breaks (UNAVAILABLE: the replica running the batch
        went away), only the programs whose results have not arrived are sent again, to whichever
        replica the channel now reaches (`ServiceClient.call`'s backoff and time limit): programs
        are pure, so a run cut short is simply run again, and each program's result is kept once."""
        results: dict[int, sandbox_pb2.ExecutionResult] = {}
        what = f"sandbox ExecuteBatch ({len(programs)} programs)"
        first_failure: float | None = None  # of the failures since the last result that arrived
        attempt = 0
        while len(results) < len(programs):
            pending = [i for i in range(len(programs)) if i not in results]
            request = sandbox_pb2.ExecuteBatchRequest(programs=[programs[i] for i in pending], runtime=runtime)
            if limits is not None:
                request.limits.CopyFrom(limits)
            try:
                async for reply in self._stub.ExecuteBatch(request, timeout=self.timeout):
                    if not 0 <= reply.index < len(pending) or pending[reply.index] in results:
                        raise ServiceCallError(f"{what}: a result for program {reply.index} that is not pending")
                    results[pending[reply.index]] = reply.result
                    if on_result is not None:
                        on_result(pending[reply.index], reply.result)
            except grpc.aio.AioRpcError as e:
                if len(results) > len(programs) - len(pending):  # it progressed: a new run of failures
                    first_failure, attempt = None, 0
                first_failure = first_failure if first_failure is not None else time.monotonic()
                await self.backoff(what, e, attempt, first_failure)
                attempt += 1
                continue
            if len(results) < len(programs):
                missing = [i for i in range(len(programs)) if i not in results]
                raise ServiceCallError(f"{what}: the stream ended without the results of programs {missing[:10]}")
        return [results[i] for i in range(len(programs))]

    async def check_one(self, sub: CodeSubmission) -> CodeVerdict:
        request = sandbox_pb2.CheckCompletionsRequest(
            problem=sandbox_pb2.CodeProblem(prompt=sub.prompt, test=sub.test, entry_point=sub.entry_point),
            completions=list(sub.completions),
            k=[1],
        )
        reply = await self.call(
            f"sandbox CheckCompletions({sub.problem_id})",
            lambda: self._stub.CheckCompletions(request, timeout=self.timeout),
        )
        pass_at_1 = next((p.value for p in reply.pass_at_k if p.k == 1), None)
        if pass_at_1 is None:
            raise ServiceCallError(f"sandbox CheckCompletions({sub.problem_id}): no pass@1 in the reply")
        results = sorted(reply.results, key=lambda r: r.index)
        return CodeVerdict(
            pass_at_1=pass_at_1,
            passed=tuple(r.passed for r in results),
            statuses=tuple(
                sandbox_pb2.ExecutionStatus.Name(r.execution.status).removeprefix("EXECUTION_STATUS_").lower()
                for r in results
            ),
            signature=reply.signature.text,
        )

    async def check(self, submissions: Sequence[CodeSubmission]) -> list[CodeVerdict]:
        gate = asyncio.Semaphore(self._max_parallel)

        async def one(sub: CodeSubmission) -> CodeVerdict:
            async with gate:
                return await self.check_one(sub)

        return list(await asyncio.gather(*(one(s) for s in submissions)))

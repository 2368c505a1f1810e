"""Thin async client of the sandbox service (protos/hyoka/v1/sandbox.proto)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc

from hyoka.orchestrator.services._common import ServiceCallError, ServiceClient, describe
from hyoka.orchestrator.tasks.scoring import CodeSubmission, CodeVerdict
from hyoka.v1 import sandbox_pb2, sandbox_pb2_grpc


class SandboxClient(ServiceClient):
    """Checks HumanEval-style completions with SandboxService.CheckCompletions, a few problems at once."""

    service_name = "hyoka.v1.SandboxService"

    def __init__(
        self, target: str, *, auth_token: str | None = None, timeout: float = 120.0, max_parallel: int = 2
    ) -> None:
        super().__init__(target, auth_token=auth_token, timeout=timeout)
        self._stub = sandbox_pb2_grpc.SandboxServiceStub(self.channel)  # type: ignore[no-untyped-call]
        # One problem's n programs already keep the server's workers busy; two problems in flight
        # hide the round trips without overrunning its queue.
        self._max_parallel = max(1, max_parallel)

    async def info(self) -> sandbox_pb2.GetSandboxInfoResponse:
        try:
            reply: sandbox_pb2.GetSandboxInfoResponse = await self._stub.GetSandboxInfo(
                sandbox_pb2.GetSandboxInfoRequest(), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as e:
            raise ServiceCallError(describe("sandbox GetSandboxInfo", e)) from e
        return reply

    async def check_one(self, sub: CodeSubmission) -> CodeVerdict:
        request = sandbox_pb2.CheckCompletionsRequest(
            problem=sandbox_pb2.CodeProblem(prompt=sub.prompt, test=sub.test, entry_point=sub.entry_point),
            completions=list(sub.completions),
            k=[1],
        )
        try:
            reply = await self._stub.CheckCompletions(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as e:
            raise ServiceCallError(describe(f"sandbox CheckCompletions({sub.problem_id})", e)) from e
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

"""gRPC transport for evaluation runs: hyoka.v1.EvaluationService. Converts the wire schema to
`RunRequest` and the run manager's views back; the runs themselves are `runs.RunManager`'s.
Bad input answers INVALID_ARGUMENT naming the field; a run id taken by a different request
answers ALREADY_EXISTS; an unknown run id NOT_FOUND."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import grpc
from google.protobuf import timestamp_pb2
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from hyoka.orchestrator.evaluation.requests import (
    Endpoints,
    Launch,
    RunInputError,
    RunRequest,
    check,
    check_model_options,
    check_run_id,
)
from hyoka.orchestrator.evaluation.runs import RunConflict, RunManager, RunNotFound, RunView
from hyoka.rpc import InvalidArgument, NotFound, ServiceError, ServiceRegistration, handle_errors
from hyoka.v1 import analysis_pb2, evaluation_pb2, evaluation_pb2_grpc

SERVICE_NAME = "hyoka.v1.EvaluationService"
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000

_RUN_STATES = {
    "queued": evaluation_pb2.RUN_STATE_QUEUED,
    "running": evaluation_pb2.RUN_STATE_RUNNING,
    "succeeded": evaluation_pb2.RUN_STATE_SUCCEEDED,
    "failed": evaluation_pb2.RUN_STATE_FAILED,
    "cancelled": evaluation_pb2.RUN_STATE_CANCELLED,
}
_STATE_NAMES = {number: name for name, number in _RUN_STATES.items()}
_TASK_STATES = {
    "pending": evaluation_pb2.TASK_STATE_PENDING,
    "running": evaluation_pb2.TASK_STATE_RUNNING,
    "succeeded": evaluation_pb2.TASK_STATE_SUCCEEDED,
    "failed": evaluation_pb2.TASK_STATE_FAILED,
    "cancelled": evaluation_pb2.TASK_STATE_CANCELLED,
}


class AlreadyExists(ServiceError):
    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.ALREADY_EXISTS

    def to_status(self) -> grpc.Status:
        return rpc_status.to_status(status_pb2.Status(code=code_pb2.ALREADY_EXISTS, message=self.message))


def _invalid(error: RunInputError) -> InvalidArgument:
    return InvalidArgument.of(error.violations)


def to_request(message: evaluation_pb2.StartRunRequest) -> RunRequest:
    which = message.WhichOneof("model_source")
    endpoints = None
    if which == "endpoints":
        endpoints = Endpoints(
            backend=message.endpoints.backend,
            urls=tuple(message.endpoints.urls),
            options=tuple(sorted(message.endpoints.options.items())),
        )
    launch = None
    if which == "launch":
        launch = Launch(
            preset_or_image=message.launch.preset_or_image,
            model=message.launch.model,
            backend=message.launch.backend,
            startup_timeout_s=message.launch.startup_timeout_seconds,
        )
    return RunRequest(
        run_id=message.run_id,
        model=message.model if which == "model" else None,
        endpoints=endpoints,
        launch=launch,
        tasks=tuple(message.tasks),
        suite=message.suite,
        limit=message.limit if message.HasField("limit") else None,
        model_id=message.model_id,
        tokenizer=message.tokenizer,
    )


def from_request(request: RunRequest) -> evaluation_pb2.StartRunRequest:
    message = evaluation_pb2.StartRunRequest(
        run_id=request.run_id,
        tasks=request.tasks,
        suite=request.suite,
        model_id=request.model_id,
        tokenizer=request.tokenizer,
    )
    if request.model is not None:
        message.model = request.model
    elif request.endpoints is not None:
        message.endpoints.backend = request.endpoints.backend
        message.endpoints.urls.extend(request.endpoints.urls)
        message.endpoints.options.update(dict(request.endpoints.options))
    elif request.launch is not None:
        message.launch.preset_or_image = request.launch.preset_or_image
        message.launch.model = request.launch.model
        message.launch.backend = request.launch.backend
        message.launch.startup_timeout_seconds = request.launch.startup_timeout_s
    if request.limit is not None:
        message.limit = request.limit
    return message


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _placement(data: dict[str, Any]) -> evaluation_pb2.Placement:
    projection = data.get("projection", {})
    return evaluation_pb2.Placement(
        projection=analysis_pb2.Projection(
            model_id=str(projection.get("model_id", "")),
            values=[float(v) for v in projection.get("values", [])],
            observed_benchmarks=[str(b) for b in projection.get("observed_benchmarks", [])],
            missing_benchmarks=[str(b) for b in projection.get("missing_benchmarks", [])],
            method=str(projection.get("method", "")),
        ),
        nearest=[
            evaluation_pb2.NearestModel(
                model_id=str(n.get("model_id", "")),
                display_name=str(n.get("display_name", "")),
                group=str(n.get("group", "")),
                distance=float(n.get("distance", 0.0)),
                values=[float(v) for v in n.get("values", [])],
            )
            for n in data.get("nearest", [])
        ],
        explained_variance_ratio=[float(v) for v in data.get("explained_variance_ratio", [])],
    )


def to_run(view: RunView) -> evaluation_pb2.Run:
    run = evaluation_pb2.Run(
        run_id=view.run_id,
        state=_RUN_STATES.get(view.state, evaluation_pb2.RUN_STATE_UNSPECIFIED),
        request=from_request(view.request),
        model=view.model,
        model_id=view.model_id,
        error=view.error,
        create_time=_timestamp(view.created_at),
        update_time=_timestamp(view.updated_at),
        placement_unavailable_reason=view.placement_reason,
    )
    for task in view.tasks:
        progress = run.tasks.add(
            task=task.task,
            state=_TASK_STATES.get(task.state, evaluation_pb2.TASK_STATE_UNSPECIFIED),
            items_total=task.items_total,
            items_done=task.items_done,
            metric=task.metric,
            benchmark=task.benchmark,
            error=task.error,
        )
        if task.score is not None:
            progress.score = task.score
    if view.placement is not None:
        run.placement.CopyFrom(_placement(view.placement))
    return run


def _run_id(run_id: str) -> str:
    try:
        check_run_id(run_id, lookup=True)
    except RunInputError as error:
        raise _invalid(error) from None
    return run_id


class EvaluationServicer(evaluation_pb2_grpc.EvaluationServiceServicer):
    def __init__(self, manager: RunManager) -> None:
        self.manager = manager

    @handle_errors
    async def StartRun(  # noqa: N802 - gRPC method name
        self, request: evaluation_pb2.StartRunRequest, context: Any
    ) -> evaluation_pb2.StartRunResponse:
        run_request = to_request(request)
        try:
            check(run_request)
            await check_model_options(run_request)
        except RunInputError as error:
            raise _invalid(error) from None
        try:
            view, created = await self.manager.start(run_request)
        except RunConflict as error:
            raise AlreadyExists(f"run_id: {error}") from None
        return evaluation_pb2.StartRunResponse(run=to_run(view), created=created)

    @handle_errors
    async def WatchRun(  # noqa: N802 - gRPC method name
        self, request: evaluation_pb2.WatchRunRequest, context: Any
    ) -> AsyncIterator[evaluation_pb2.WatchRunResponse]:
        run_id = _run_id(request.run_id)
        try:
            async for view, sequence in self.manager.watch(run_id):
                yield evaluation_pb2.WatchRunResponse(run=to_run(view), sequence=sequence)
        except RunNotFound:
            raise NotFound(f"run_id: no run {run_id!r}") from None

    @handle_errors
    async def GetRun(  # noqa: N802 - gRPC method name
        self, request: evaluation_pb2.GetRunRequest, context: Any
    ) -> evaluation_pb2.GetRunResponse:
        run_id = _run_id(request.run_id)
        try:
            return evaluation_pb2.GetRunResponse(run=to_run(self.manager.get(run_id)))
        except RunNotFound:
            raise NotFound(f"run_id: no run {run_id!r}") from None

    @handle_errors
    async def ListRuns(  # noqa: N802 - gRPC method name
        self, request: evaluation_pb2.ListRunsRequest, context: Any
    ) -> evaluation_pb2.ListRunsResponse:
        if request.page_size > MAX_PAGE_SIZE:
            raise InvalidArgument("page_size", f"at most {MAX_PAGE_SIZE}")
        states = []
        for i, state in enumerate(request.states):
            if state not in _STATE_NAMES:
                raise InvalidArgument(f"states[{i}]", "not a run state")
            states.append(_STATE_NAMES[state])
        views = self.manager.list(limit=request.page_size or DEFAULT_PAGE_SIZE, states=states or None)
        return evaluation_pb2.ListRunsResponse(runs=[to_run(v) for v in views])

    @handle_errors
    async def CancelRun(  # noqa: N802 - gRPC method name
        self, request: evaluation_pb2.CancelRunRequest, context: Any
    ) -> evaluation_pb2.CancelRunResponse:
        run_id = _run_id(request.run_id)
        try:
            return evaluation_pb2.CancelRunResponse(run=to_run(await self.manager.cancel(run_id)))
        except RunNotFound:
            raise NotFound(f"run_id: no run {run_id!r}") from None


def registration(manager: RunManager) -> ServiceRegistration:
    return ServiceRegistration(
        name=SERVICE_NAME,
        add_to_server=evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server,
        servicer=EvaluationServicer(manager),
    )

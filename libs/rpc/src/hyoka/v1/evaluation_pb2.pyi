import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from hyoka.v1 import analysis_pb2 as _analysis_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATE_UNSPECIFIED: _ClassVar[RunState]
    RUN_STATE_QUEUED: _ClassVar[RunState]
    RUN_STATE_RUNNING: _ClassVar[RunState]
    RUN_STATE_SUCCEEDED: _ClassVar[RunState]
    RUN_STATE_FAILED: _ClassVar[RunState]
    RUN_STATE_CANCELLED: _ClassVar[RunState]

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATE_UNSPECIFIED: _ClassVar[TaskState]
    TASK_STATE_PENDING: _ClassVar[TaskState]
    TASK_STATE_RUNNING: _ClassVar[TaskState]
    TASK_STATE_SUCCEEDED: _ClassVar[TaskState]
    TASK_STATE_FAILED: _ClassVar[TaskState]
    TASK_STATE_CANCELLED: _ClassVar[TaskState]
RUN_STATE_UNSPECIFIED: RunState
RUN_STATE_QUEUED: RunState
RUN_STATE_RUNNING: RunState
RUN_STATE_SUCCEEDED: RunState
RUN_STATE_FAILED: RunState
RUN_STATE_CANCELLED: RunState
TASK_STATE_UNSPECIFIED: TaskState
TASK_STATE_PENDING: TaskState
TASK_STATE_RUNNING: TaskState
TASK_STATE_SUCCEEDED: TaskState
TASK_STATE_FAILED: TaskState
TASK_STATE_CANCELLED: TaskState

class ModelEndpoints(_message.Message):
    __slots__ = ("backend", "urls", "options")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    URLS_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    backend: str
    urls: _containers.RepeatedScalarFieldContainer[str]
    options: _containers.ScalarMap[str, str]
    def __init__(self, backend: _Optional[str] = ..., urls: _Optional[_Iterable[str]] = ..., options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ModelLaunch(_message.Message):
    __slots__ = ("preset_or_image", "model", "backend", "startup_timeout_seconds")
    PRESET_OR_IMAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    STARTUP_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    preset_or_image: str
    model: str
    backend: str
    startup_timeout_seconds: int
    def __init__(self, preset_or_image: _Optional[str] = ..., model: _Optional[str] = ..., backend: _Optional[str] = ..., startup_timeout_seconds: _Optional[int] = ...) -> None: ...

class StartRunRequest(_message.Message):
    __slots__ = ("run_id", "model", "endpoints", "launch", "tasks", "suite", "limit", "model_id", "tokenizer")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    LAUNCH_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    SUITE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    model: str
    endpoints: ModelEndpoints
    launch: ModelLaunch
    tasks: _containers.RepeatedScalarFieldContainer[str]
    suite: str
    limit: int
    model_id: str
    tokenizer: str
    def __init__(self, run_id: _Optional[str] = ..., model: _Optional[str] = ..., endpoints: _Optional[_Union[ModelEndpoints, _Mapping]] = ..., launch: _Optional[_Union[ModelLaunch, _Mapping]] = ..., tasks: _Optional[_Iterable[str]] = ..., suite: _Optional[str] = ..., limit: _Optional[int] = ..., model_id: _Optional[str] = ..., tokenizer: _Optional[str] = ...) -> None: ...

class StartRunResponse(_message.Message):
    __slots__ = ("run", "created")
    RUN_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    run: Run
    created: bool
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class WatchRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class WatchRunResponse(_message.Message):
    __slots__ = ("run", "sequence")
    RUN_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    run: Run
    sequence: int
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., sequence: _Optional[int] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class GetRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("page_size", "states")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    states: _containers.RepeatedScalarFieldContainer[RunState]
    def __init__(self, page_size: _Optional[int] = ..., states: _Optional[_Iterable[_Union[RunState, str]]] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ...) -> None: ...

class CancelRunRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class CancelRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class TaskProgress(_message.Message):
    __slots__ = ("task", "state", "items_total", "items_done", "score", "metric", "benchmark", "error")
    TASK_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_DONE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    task: str
    state: TaskState
    items_total: int
    items_done: int
    score: float
    metric: str
    benchmark: str
    error: str
    def __init__(self, task: _Optional[str] = ..., state: _Optional[_Union[TaskState, str]] = ..., items_total: _Optional[int] = ..., items_done: _Optional[int] = ..., score: _Optional[float] = ..., metric: _Optional[str] = ..., benchmark: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class NearestModel(_message.Message):
    __slots__ = ("model_id", "display_name", "group", "distance", "values")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    display_name: str
    group: str
    distance: float
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, model_id: _Optional[str] = ..., display_name: _Optional[str] = ..., group: _Optional[str] = ..., distance: _Optional[float] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class Placement(_message.Message):
    __slots__ = ("projection", "nearest", "explained_variance_ratio")
    PROJECTION_FIELD_NUMBER: _ClassVar[int]
    NEAREST_FIELD_NUMBER: _ClassVar[int]
    EXPLAINED_VARIANCE_RATIO_FIELD_NUMBER: _ClassVar[int]
    projection: _analysis_pb2.Projection
    nearest: _containers.RepeatedCompositeFieldContainer[NearestModel]
    explained_variance_ratio: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, projection: _Optional[_Union[_analysis_pb2.Projection, _Mapping]] = ..., nearest: _Optional[_Iterable[_Union[NearestModel, _Mapping]]] = ..., explained_variance_ratio: _Optional[_Iterable[float]] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("run_id", "state", "request", "model", "model_id", "tasks", "error", "create_time", "update_time", "placement", "placement_unavailable_reason")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    state: RunState
    request: StartRunRequest
    model: str
    model_id: str
    tasks: _containers.RepeatedCompositeFieldContainer[TaskProgress]
    error: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    placement: Placement
    placement_unavailable_reason: str
    def __init__(self, run_id: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ..., request: _Optional[_Union[StartRunRequest, _Mapping]] = ..., model: _Optional[str] = ..., model_id: _Optional[str] = ..., tasks: _Optional[_Iterable[_Union[TaskProgress, _Mapping]]] = ..., error: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., placement: _Optional[_Union[Placement, _Mapping]] = ..., placement_unavailable_reason: _Optional[str] = ...) -> None: ...

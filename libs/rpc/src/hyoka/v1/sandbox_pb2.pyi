from hyoka.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecutionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_STATUS_UNSPECIFIED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_PASSED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_FAILED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_TIMEOUT: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_MEMORY_LIMIT: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_OUTPUT_LIMIT: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_SANDBOX_ERROR: _ClassVar[ExecutionStatus]
EXECUTION_STATUS_UNSPECIFIED: ExecutionStatus
EXECUTION_STATUS_PASSED: ExecutionStatus
EXECUTION_STATUS_FAILED: ExecutionStatus
EXECUTION_STATUS_TIMEOUT: ExecutionStatus
EXECUTION_STATUS_MEMORY_LIMIT: ExecutionStatus
EXECUTION_STATUS_OUTPUT_LIMIT: ExecutionStatus
EXECUTION_STATUS_SANDBOX_ERROR: ExecutionStatus

class ResourceLimits(_message.Message):
    __slots__ = ("wall_time_ms", "cpu_time_ms", "memory_bytes", "max_processes", "max_output_bytes", "max_file_bytes", "scratch_bytes")
    WALL_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    CPU_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PROCESSES_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_FILE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SCRATCH_BYTES_FIELD_NUMBER: _ClassVar[int]
    wall_time_ms: int
    cpu_time_ms: int
    memory_bytes: int
    max_processes: int
    max_output_bytes: int
    max_file_bytes: int
    scratch_bytes: int
    def __init__(self, wall_time_ms: _Optional[int] = ..., cpu_time_ms: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., max_processes: _Optional[int] = ..., max_output_bytes: _Optional[int] = ..., max_file_bytes: _Optional[int] = ..., scratch_bytes: _Optional[int] = ...) -> None: ...

class ExecutionResult(_message.Message):
    __slots__ = ("status", "exit_code", "stdout", "stderr", "stdout_truncated", "stderr_truncated", "duration_seconds", "cpu_seconds", "detail", "runtime", "runtime_sha256")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    STDERR_FIELD_NUMBER: _ClassVar[int]
    STDOUT_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    STDERR_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_SHA256_FIELD_NUMBER: _ClassVar[int]
    status: ExecutionStatus
    exit_code: int
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool
    duration_seconds: float
    cpu_seconds: float
    detail: str
    runtime: str
    runtime_sha256: str
    def __init__(self, status: _Optional[_Union[ExecutionStatus, str]] = ..., exit_code: _Optional[int] = ..., stdout: _Optional[bytes] = ..., stderr: _Optional[bytes] = ..., stdout_truncated: _Optional[bool] = ..., stderr_truncated: _Optional[bool] = ..., duration_seconds: _Optional[float] = ..., cpu_seconds: _Optional[float] = ..., detail: _Optional[str] = ..., runtime: _Optional[str] = ..., runtime_sha256: _Optional[str] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("program", "limits", "stdin", "runtime")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    STDIN_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    program: bytes
    limits: ResourceLimits
    stdin: bytes
    runtime: str
    def __init__(self, program: _Optional[bytes] = ..., limits: _Optional[_Union[ResourceLimits, _Mapping]] = ..., stdin: _Optional[bytes] = ..., runtime: _Optional[str] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: ExecutionResult
    def __init__(self, result: _Optional[_Union[ExecutionResult, _Mapping]] = ...) -> None: ...

class ExecuteBatchRequest(_message.Message):
    __slots__ = ("programs", "limits", "runtime")
    PROGRAMS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    programs: _containers.RepeatedCompositeFieldContainer[ExecuteRequest]
    limits: ResourceLimits
    runtime: str
    def __init__(self, programs: _Optional[_Iterable[_Union[ExecuteRequest, _Mapping]]] = ..., limits: _Optional[_Union[ResourceLimits, _Mapping]] = ..., runtime: _Optional[str] = ...) -> None: ...

class ExecuteBatchResponse(_message.Message):
    __slots__ = ("index", "result")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    index: int
    result: ExecutionResult
    def __init__(self, index: _Optional[int] = ..., result: _Optional[_Union[ExecutionResult, _Mapping]] = ...) -> None: ...

class CodeProblem(_message.Message):
    __slots__ = ("prompt", "test", "entry_point")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    ENTRY_POINT_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    test: str
    entry_point: str
    def __init__(self, prompt: _Optional[str] = ..., test: _Optional[str] = ..., entry_point: _Optional[str] = ...) -> None: ...

class CheckCompletionsRequest(_message.Message):
    __slots__ = ("problem_id", "problem", "completions", "k", "limits", "runtime")
    PROBLEM_ID_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    COMPLETIONS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    problem_id: str
    problem: CodeProblem
    completions: _containers.RepeatedScalarFieldContainer[str]
    k: _containers.RepeatedScalarFieldContainer[int]
    limits: ResourceLimits
    runtime: str
    def __init__(self, problem_id: _Optional[str] = ..., problem: _Optional[_Union[CodeProblem, _Mapping]] = ..., completions: _Optional[_Iterable[str]] = ..., k: _Optional[_Iterable[int]] = ..., limits: _Optional[_Union[ResourceLimits, _Mapping]] = ..., runtime: _Optional[str] = ...) -> None: ...

class CompletionResult(_message.Message):
    __slots__ = ("index", "passed", "execution")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    index: int
    passed: bool
    execution: ExecutionResult
    def __init__(self, index: _Optional[int] = ..., passed: _Optional[bool] = ..., execution: _Optional[_Union[ExecutionResult, _Mapping]] = ...) -> None: ...

class PassAtK(_message.Message):
    __slots__ = ("k", "value")
    K_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    k: int
    value: float
    def __init__(self, k: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...

class CheckCompletionsResponse(_message.Message):
    __slots__ = ("problem_id", "results", "num_samples", "num_correct", "pass_at_k", "signature", "runtime")
    PROBLEM_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    NUM_CORRECT_FIELD_NUMBER: _ClassVar[int]
    PASS_AT_K_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    problem_id: str
    results: _containers.RepeatedCompositeFieldContainer[CompletionResult]
    num_samples: int
    num_correct: int
    pass_at_k: _containers.RepeatedCompositeFieldContainer[PassAtK]
    signature: _common_pb2.ScoreSignature
    runtime: str
    def __init__(self, problem_id: _Optional[str] = ..., results: _Optional[_Iterable[_Union[CompletionResult, _Mapping]]] = ..., num_samples: _Optional[int] = ..., num_correct: _Optional[int] = ..., pass_at_k: _Optional[_Iterable[_Union[PassAtK, _Mapping]]] = ..., signature: _Optional[_Union[_common_pb2.ScoreSignature, _Mapping]] = ..., runtime: _Optional[str] = ...) -> None: ...

class GetSandboxInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HostCapabilities(_message.Message):
    __slots__ = ("user_namespaces", "seccomp", "cgroup_memory", "cgroup_pids", "cgroup_version", "proc_mount", "hostname", "disable_userns")
    USER_NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    SECCOMP_FIELD_NUMBER: _ClassVar[int]
    CGROUP_MEMORY_FIELD_NUMBER: _ClassVar[int]
    CGROUP_PIDS_FIELD_NUMBER: _ClassVar[int]
    CGROUP_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROC_MOUNT_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    DISABLE_USERNS_FIELD_NUMBER: _ClassVar[int]
    user_namespaces: bool
    seccomp: bool
    cgroup_memory: bool
    cgroup_pids: bool
    cgroup_version: str
    proc_mount: bool
    hostname: bool
    disable_userns: bool
    def __init__(self, user_namespaces: _Optional[bool] = ..., seccomp: _Optional[bool] = ..., cgroup_memory: _Optional[bool] = ..., cgroup_pids: _Optional[bool] = ..., cgroup_version: _Optional[str] = ..., proc_mount: _Optional[bool] = ..., hostname: _Optional[bool] = ..., disable_userns: _Optional[bool] = ...) -> None: ...

class ProblemSet(_message.Message):
    __slots__ = ("name", "num_problems", "source", "sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUM_PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    num_problems: int
    source: str
    sha256: str
    def __init__(self, name: _Optional[str] = ..., num_problems: _Optional[int] = ..., source: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class SandboxRuntime(_message.Message):
    __slots__ = ("name", "python", "python_version", "sha256", "packages", "description", "source", "deviation", "lock_sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PYTHON_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    PACKAGES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DEVIATION_FIELD_NUMBER: _ClassVar[int]
    LOCK_SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    python: str
    python_version: str
    sha256: str
    packages: _containers.RepeatedCompositeFieldContainer[_common_pb2.ComponentVersion]
    description: str
    source: str
    deviation: str
    lock_sha256: str
    def __init__(self, name: _Optional[str] = ..., python: _Optional[str] = ..., python_version: _Optional[str] = ..., sha256: _Optional[str] = ..., packages: _Optional[_Iterable[_Union[_common_pb2.ComponentVersion, _Mapping]]] = ..., description: _Optional[str] = ..., source: _Optional[str] = ..., deviation: _Optional[str] = ..., lock_sha256: _Optional[str] = ...) -> None: ...

class GetSandboxInfoResponse(_message.Message):
    __slots__ = ("capabilities", "isolation", "insecure", "default_limits", "max_limits", "workers", "max_queued_runs", "max_program_bytes", "max_stdin_bytes", "max_batch_size", "max_completions", "problem_sets", "versions", "warnings", "runtimes", "default_runtime")
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    INSECURE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_LIMITS_FIELD_NUMBER: _ClassVar[int]
    MAX_LIMITS_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_RUNS_FIELD_NUMBER: _ClassVar[int]
    MAX_PROGRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_STDIN_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_COMPLETIONS_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_SETS_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    RUNTIMES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_RUNTIME_FIELD_NUMBER: _ClassVar[int]
    capabilities: HostCapabilities
    isolation: str
    insecure: bool
    default_limits: ResourceLimits
    max_limits: ResourceLimits
    workers: int
    max_queued_runs: int
    max_program_bytes: int
    max_stdin_bytes: int
    max_batch_size: int
    max_completions: int
    problem_sets: _containers.RepeatedCompositeFieldContainer[ProblemSet]
    versions: _containers.RepeatedCompositeFieldContainer[_common_pb2.ComponentVersion]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    runtimes: _containers.RepeatedCompositeFieldContainer[SandboxRuntime]
    default_runtime: str
    def __init__(self, capabilities: _Optional[_Union[HostCapabilities, _Mapping]] = ..., isolation: _Optional[str] = ..., insecure: _Optional[bool] = ..., default_limits: _Optional[_Union[ResourceLimits, _Mapping]] = ..., max_limits: _Optional[_Union[ResourceLimits, _Mapping]] = ..., workers: _Optional[int] = ..., max_queued_runs: _Optional[int] = ..., max_program_bytes: _Optional[int] = ..., max_stdin_bytes: _Optional[int] = ..., max_batch_size: _Optional[int] = ..., max_completions: _Optional[int] = ..., problem_sets: _Optional[_Iterable[_Union[ProblemSet, _Mapping]]] = ..., versions: _Optional[_Iterable[_Union[_common_pb2.ComponentVersion, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ..., runtimes: _Optional[_Iterable[_Union[SandboxRuntime, _Mapping]]] = ..., default_runtime: _Optional[str] = ...) -> None: ...

"""Model backends: one interface (`ModelBackend`), many servers."""

from hyoka.orchestrator.backends.base import (
    BackendConfigError,
    BackendError,
    BackendInfo,
    BackendRequestError,
    Capabilities,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    ModelBackend,
)
from hyoka.orchestrator.backends.registry import (
    UnknownBackendError,
    create_backend,
    parse_model_spec,
    register_backend,
)

__all__ = [
    "BackendConfigError",
    "BackendError",
    "BackendInfo",
    "BackendRequestError",
    "Capabilities",
    "GenerationRequest",
    "LoglikelihoodRequest",
    "LoglikelihoodResult",
    "ModelBackend",
    "UnknownBackendError",
    "create_backend",
    "parse_model_spec",
    "register_backend",
]

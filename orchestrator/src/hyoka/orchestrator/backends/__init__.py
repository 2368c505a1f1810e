"""Model backends: one interface (`ModelBackend`), many servers."""

from hyoka.orchestrator.backends.base import (
    BackendError,
    BackendInfo,
    Capabilities,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    ModelBackend,
)
from hyoka.orchestrator.backends.registry import UnknownBackendError, create_backend, register_backend

__all__ = [
    "BackendError",
    "BackendInfo",
    "Capabilities",
    "GenerationRequest",
    "LoglikelihoodRequest",
    "LoglikelihoodResult",
    "ModelBackend",
    "UnknownBackendError",
    "create_backend",
    "register_backend",
]

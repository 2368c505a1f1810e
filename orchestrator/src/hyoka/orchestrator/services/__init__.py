"""Clients of the scoring services (metrics, sandbox) and local launchers for them."""

from hyoka.orchestrator.services._common import ServiceCallError, ServiceUnavailableError
from hyoka.orchestrator.services.metrics import MetricsClient
from hyoka.orchestrator.services.sandbox import SandboxClient

__all__ = ["MetricsClient", "SandboxClient", "ServiceCallError", "ServiceUnavailableError"]

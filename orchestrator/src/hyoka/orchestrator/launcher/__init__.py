"""Model-server containers started for an evaluation (`hyoka eval --launch`): presets for
llama-cpp-python on the CPU, TGI and vLLM on GPUs, run through the `docker` SDK."""

from hyoka.orchestrator.launcher.containers import (
    LABEL,
    LaunchedServer,
    LaunchError,
    docker_client,
    launched_server,
    launched_server_async,
    terminate_as_interrupt,
)
from hyoka.orchestrator.launcher.presets import PRESETS, LaunchConfigError, LaunchPreset, LaunchSpec, resolve_launch

__all__ = [
    "LABEL",
    "PRESETS",
    "LaunchConfigError",
    "LaunchError",
    "LaunchPreset",
    "LaunchSpec",
    "LaunchedServer",
    "docker_client",
    "launched_server",
    "launched_server_async",
    "resolve_launch",
    "terminate_as_interrupt",
]

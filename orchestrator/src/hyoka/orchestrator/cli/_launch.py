"""`hyoka eval --launch`: start the model server's container for the run, and remove it after.

With `--launch`, `--model` is optional and names only the backend and its options (its target is
the launched server): `--launch llamacpp-cpu --model openai-chat` or `--model
openai-completions,max_concurrency=4`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import typer
from rich.console import Console


@dataclass(frozen=True)
class LaunchOptions:
    preset_or_image: str | None
    model: str | None  # --launch-model
    timeout_s: float | None
    pull: str
    gpus: bool | None
    docker_host: str | None


def _usage_error(err: Console, message: str) -> typer.Exit:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _backend_choice(model: str | None, err: Console) -> tuple[str | None, str]:
    """`--model` beside `--launch`: (backend or None for the preset's, KEY=VALUE options)."""
    from hyoka.orchestrator.launcher.presets import LaunchConfigError, backend_for_launch

    if model is None:
        return None, ""
    try:
        return backend_for_launch(model)
    except LaunchConfigError as e:
        raise _usage_error(err, f"--model {e}") from None


@contextlib.contextmanager
def model_for_run(model: str | None, launch: LaunchOptions, err: Console) -> Iterator[tuple[str, str | None]]:
    """Yields (the model spec to evaluate, its key for resuming): `--model` as given, or the server
    launched for the run (removed when the block ends, also on Ctrl-C or SIGTERM)."""
    if launch.preset_or_image is None:
        if model is None:
            raise _usage_error(err, "give --model (or --launch to start a model server)")
        yield model, None
        return
    backend, options = _backend_choice(model, err)  # checked before anything starts
    from hyoka.orchestrator.launcher import (
        LaunchConfigError,
        LaunchError,
        launched_server,
        resolve_launch,
        terminate_as_interrupt,
    )

    try:
        spec = resolve_launch(
            launch.preset_or_image,
            model=launch.model,
            startup_timeout_s=launch.timeout_s,
            pull=launch.pull,
            gpus=launch.gpus,
        )
    except LaunchConfigError as e:
        raise _usage_error(err, str(e)) from None
    what = spec.model.host_path or spec.model.hub_id
    with terminate_as_interrupt():
        try:
            with (
                err.status(f"starting {spec.preset.name} ({spec.image}) with {what}") as status,
                launched_server(
                    spec, docker_host=launch.docker_host, progress=lambda line: status.update(line)
                ) as server,
            ):
                status.stop()
                err.print(f"model server: {server.container_name} at {server.base_url} ({spec.image})", soft_wrap=True)
                yield server.model_spec(options, backend=backend), server.model_key(options, backend=backend)
        except LaunchError as e:
            raise _usage_error(err, str(e)) from None

"""Start a model-server container for one evaluation and remove it afterwards, through the
`docker` SDK (a Docker engine, or podman's Docker API: `podman system service`, with DOCKER_HOST
pointing at its socket).

`launched_server(spec)` is a context manager: it makes sure the image is there (pulling it per
`spec.pull`), starts the container with the model mounted read-only and the server's port
published on 127.0.0.1 only, waits until the preset's health path answers 200 (a container that
exits, or a server that is not healthy within the timeout, is a `LaunchError` carrying the
container's last log lines), yields where the server listens, and stops and removes the container
on the way out: after success, failure, Ctrl-C or SIGTERM (`terminate_as_interrupt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

import httpx

from hyoka.orchestrator.launcher.presets import MODEL_MOUNT, LaunchSpec

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

#: Label on every container hyoka starts (value: the launching process's id), to find leftovers.
LABEL = "org.hyoka.launched-by"
LOG_TAIL_LINES = 40
_POLL_S = 0.5


class LaunchError(RuntimeError):
    """The model server could not be started or did not become healthy."""


@dataclass(frozen=True)
class LaunchedServer:
    container_id: str
    container_name: str
    base_url: str  # http://127.0.0.1:PORT
    backend: str  # hyoka backend for it, e.g. "openai-completions"
    backend_options: str = ""  # the preset's KEY=VALUE,... for that backend
    identity: str = ""  # image and model, the same at every launch (the URL is not)

    def model_spec(self, options: str = "", backend: str | None = None) -> str:
        """`BACKEND:URL[,KEY=VALUE...]` for `hyoka eval --model`: the preset's backend and options,
        or `backend`; `options` are added after the preset's (a later KEY wins)."""
        extra = ",".join(o for o in (self.backend_options, options) if o)
        return f"{backend or self.backend}:{self.base_url}" + (f",{extra}" if extra else "")

    def model_key(self, options: str = "", backend: str | None = None) -> str:
        """The model spec with the launched image and model in place of the URL: the same at every
        launch, so a rerun with the same --out resumes."""
        return self.model_spec(options, backend).replace(self.base_url, f"launch[{self.identity}]", 1)


def docker_client(docker_host: str | None = None) -> DockerClient:
    """A Docker API client: `docker_host` or DOCKER_HOST (e.g. unix:///run/podman/podman.sock)."""
    try:
        import docker
    except ImportError as e:  # pragma: no cover - a dependency of the orchestrator
        raise LaunchError("the docker SDK is not installed: pip install docker") from e
    try:
        client = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
        client.ping()
    except Exception as e:  # docker raises DockerException, requests errors, ...
        where = docker_host or os.environ.get("DOCKER_HOST") or "the default Docker socket"
        raise LaunchError(
            f"no Docker API at {where} ({e}); start Docker, or `podman system service unix:///PATH.sock` "
            "and set DOCKER_HOST=unix:///PATH.sock"
        ) from e
    return client


def _ensure_image(client: DockerClient, spec: LaunchSpec) -> None:
    from docker.errors import ImageNotFound

    present = True
    try:
        client.images.get(spec.image)
    except ImageNotFound:
        present = False
    if spec.pull == "always" or (spec.pull == "missing" and not present):
        try:
            client.images.pull(spec.image)
        except Exception as e:
            raise LaunchError(f"cannot pull image {spec.image}: {e}") from e
    elif not present:
        raise LaunchError(f"image {spec.image} is not present and --launch-pull is never")


def _run_options(spec: LaunchSpec) -> dict[str, Any]:
    from docker.types import DeviceRequest

    preset, model = spec.preset, spec.model
    volumes: dict[str, dict[str, str]] = {}
    if model.host_path is not None:
        volumes[str(model.host_path)] = {"bind": f"{MODEL_MOUNT}/{model.host_path.name}", "mode": "ro"}
    if preset.cache_volume is not None and model.hub_id is not None:
        name, mount = preset.cache_volume
        volumes[name] = {"bind": mount, "mode": "rw"}
    options: dict[str, Any] = {
        "command": preset.command(model, preset.container_port),
        "ports": {f"{preset.container_port}/tcp": ("127.0.0.1", None)},  # loopback only, a free port
        "volumes": volumes,
        "environment": dict(preset.environment),
        "labels": {LABEL: str(os.getpid())},
        "detach": True,
    }
    if preset.shm_size:
        options["shm_size"] = preset.shm_size
    if preset.gpu if spec.gpus is None else spec.gpus:
        options["device_requests"] = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    return options


def _log_tail(container: Container) -> str:
    try:
        logs: bytes = container.logs(tail=LOG_TAIL_LINES)
    except Exception as e:
        return f"(no logs: {e})"
    return logs.decode("utf-8", "replace").rstrip() or "(the container wrote nothing)"


def _published_url(container: Container, port: int) -> str:
    container.reload()
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp") or []
    for binding in bindings:
        if binding.get("HostPort"):
            return f"http://127.0.0.1:{binding['HostPort']}"
    raise LaunchError(f"container {container.name}: port {port} was not published ({bindings!r})")


def _wait_healthy(
    container: Container,
    url: str,
    spec: LaunchSpec,
    progress: Callable[[str], None] | None,
    abort: threading.Event | None,
) -> None:
    health = url + spec.preset.health_path
    deadline = time.monotonic() + spec.startup_timeout_s
    last = "no answer yet"
    with httpx.Client(timeout=5.0) as http:
        while True:
            if abort is not None and abort.is_set():
                raise LaunchError(f"container {container.name}: the run was cancelled while its server started")
            container.reload()
            if container.status in ("exited", "dead"):
                code = container.attrs.get("State", {}).get("ExitCode")
                raise LaunchError(
                    f"container {container.name} ({spec.image}) exited with code {code} before its server was "
                    f"healthy; its last log lines:\n{_log_tail(container)}"
                )
            try:
                reply = http.get(health)
                if reply.status_code == 200:
                    return
                last = f"HTTP {reply.status_code}"
            except httpx.HTTPError as e:
                last = type(e).__name__
            if time.monotonic() > deadline:
                raise LaunchError(
                    f"container {container.name} ({spec.image}): {health} not healthy after "
                    f"{spec.startup_timeout_s:.0f} s (last: {last}); its last log lines:\n{_log_tail(container)}"
                )
            if progress is not None:
                progress(f"waiting for {spec.preset.name} at {url} ({last})")
            if abort is not None:
                abort.wait(_POLL_S)
            else:
                time.sleep(_POLL_S)


def _remove(container: Container) -> None:
    """Stop and remove, with SIGINT ignored meanwhile so that a second Ctrl-C cannot leave the
    container behind."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
    try:
        with contextlib.suppress(Exception):
            container.stop(timeout=5)
        with contextlib.suppress(Exception):
            container.remove(force=True)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def launched_server(
    spec: LaunchSpec,
    *,
    docker_host: str | None = None,
    progress: Callable[[str], None] | None = None,
    abort: threading.Event | None = None,
) -> Iterator[LaunchedServer]:
    """Start `spec`'s container, wait until it is healthy (or `abort` is set), yield it; always
    remove it afterwards."""
    client = docker_client(docker_host)
    try:
        _ensure_image(client, spec)
        name = f"hyoka-{spec.preset.name}-{uuid.uuid4().hex[:8]}"
        try:
            container = client.containers.run(spec.image, name=name, **_run_options(spec))
        except Exception as e:
            raise LaunchError(f"cannot start {spec.image}: {e}") from e
        try:
            url = _published_url(container, spec.preset.container_port)
            _wait_healthy(container, url, spec, progress, abort)
            what = spec.model.host_path or spec.model.hub_id
            identity = f"{spec.image} {what}"
            yield LaunchedServer(
                container.id or name, name, url, spec.preset.backend, spec.preset.backend_options, identity
            )
        finally:
            _remove(container)
    finally:
        client.close()


@contextlib.asynccontextmanager
async def launched_server_async(spec: LaunchSpec, *, docker_host: str | None = None) -> AsyncIterator[LaunchedServer]:
    """`launched_server` for asyncio code (the EvaluationService): the Docker calls run in a
    thread; a cancel while the server starts stops the wait and removes the container."""
    stack = contextlib.ExitStack()
    abort = threading.Event()
    starting = asyncio.ensure_future(
        asyncio.to_thread(stack.enter_context, launched_server(spec, docker_host=docker_host, abort=abort))
    )
    try:
        server = await asyncio.shield(starting)
    except asyncio.CancelledError:
        abort.set()
        with contextlib.suppress(Exception):
            await starting  # it ends within one poll; a container it started is removed below
        await asyncio.to_thread(stack.close)
        raise
    try:
        yield server
    finally:
        await asyncio.to_thread(stack.close)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt while inside, so `kill` cleans up as Ctrl-C does."""
    if not _main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

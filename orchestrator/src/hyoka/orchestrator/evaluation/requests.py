"""What a client asks for when it starts a run, checked before the run is accepted.

`RunRequest` is the wire-independent form of StartRunRequest; `check` returns every problem as a
(field, description) pair, the field named by its path in StartRunRequest ("run_id", "tasks[1]",
"endpoints.urls[0]"), so the servicer can answer INVALID_ARGUMENT naming it. Problems that need
the model server or the data (an unreachable URL, a missing dataset) are found by the run itself
and fail it."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from hyoka.orchestrator.backends.base import BackendError
from hyoka.orchestrator.backends.registry import REPLICA_SEPARATOR, create_backend, parse_model_spec
from hyoka.orchestrator.launcher.presets import LaunchConfigError, LaunchSpec, backend_for_launch, resolve_launch
from hyoka.orchestrator.tasks.registry import SUITES, UnknownSuiteError, UnknownTaskError, get_task, suite_tasks

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RUN_ID_RULE = "1-64 characters of [A-Za-z0-9._-], starting with a letter or digit"
#: Backends a run may name by endpoints (servers reached over HTTP).
ENDPOINT_BACKENDS = ("tgi", "openai-completions", "openai-chat")
#: Marks the runs this service created in a run store that `hyoka eval --run-id` may share.
ORIGIN = "hyoka.v1.EvaluationService"
MAX_TASKS = 200
MAX_TEXT = 1024  # model specs, URLs, model ids, tokenizer paths, option values
_URL = re.compile(r"https?://[^\s,+]+")
_OPTION_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


class RunInputError(ValueError):
    """Bad StartRun input: (field, description) pairs."""

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {d}" for f, d in violations))
        self.violations = violations


@dataclass(frozen=True)
class Endpoints:
    backend: str
    urls: tuple[str, ...]
    options: tuple[tuple[str, str], ...] = ()  # sorted by key


@dataclass(frozen=True)
class Launch:
    """A model server started in a container for the run (`hyoka eval --launch`)."""

    preset_or_image: str
    model: str = ""  # empty: the preset's default
    backend: str = ""  # BACKEND[,KEY=VALUE...] without a target; empty: the preset's
    startup_timeout_s: int = 0  # 0: the preset's default

    def spec(self) -> LaunchSpec:
        """The launch, resolved (LaunchConfigError on bad settings)."""
        return resolve_launch(
            self.preset_or_image, model=self.model or None, startup_timeout_s=self.startup_timeout_s or None
        )

    def backend_choice(self) -> tuple[str | None, str]:
        """(backend or None for the preset's, KEY=VALUE options); LaunchConfigError."""
        return backend_for_launch(self.backend) if self.backend else (None, "")


@dataclass(frozen=True)
class RunRequest:
    run_id: str
    model: str | None = None
    endpoints: Endpoints | None = None
    launch: Launch | None = None
    tasks: tuple[str, ...] = ()
    suite: str = ""
    limit: int | None = None
    model_id: str = ""
    tokenizer: str = ""

    # --- what the run evaluates -----------------------------------------------------------------

    def model_spec(self) -> str:
        """The model as a spec string (`hyoka eval --model`)."""
        if self.model is not None:
            return self.model
        if self.launch is not None:  # the launched server's URL is known once it runs
            return f"launch[{self.launch.preset_or_image}]"
        assert self.endpoints is not None
        head = f"{self.endpoints.backend}:{REPLICA_SEPARATOR.join(self.endpoints.urls)}"
        return head + "".join(f",{k}={v}" for k, v in self.endpoints.options)

    def task_names(self) -> tuple[str, ...]:
        """The suite's tasks, then the tasks given, without repeats (as `hyoka eval`)."""
        names = [*(SUITES.get(self.suite, ()) if self.suite else ()), *self.tasks]
        return tuple(dict.fromkeys(names))

    # --- the run store's form (compared for idempotency) ------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": ORIGIN,
            "model": self.model,
            "endpoints": None
            if self.endpoints is None
            else {
                "backend": self.endpoints.backend,
                "urls": list(self.endpoints.urls),
                "options": dict(self.endpoints.options),
            },
            "launch": None if self.launch is None else dataclasses.asdict(self.launch),
            "tasks": list(self.tasks),
            "suite": self.suite,
            "limit": self.limit,
            "model_id": self.model_id,
            "tokenizer": self.tokenizer,
        }

    @classmethod
    def from_dict(cls, run_id: str, data: dict[str, Any]) -> RunRequest:
        endpoints = data.get("endpoints")
        model = data.get("model")
        launch = data.get("launch")
        return cls(
            run_id=run_id,
            model=None if model is None else str(model),
            endpoints=None
            if endpoints is None
            else Endpoints(
                backend=str(endpoints["backend"]),
                urls=tuple(endpoints["urls"]),
                options=tuple(sorted(dict(endpoints.get("options", {})).items())),
            ),
            launch=None if launch is None else Launch(**launch),
            tasks=tuple(str(t) for t in data.get("tasks") or ()),
            suite=str(data.get("suite") or ""),
            limit=data.get("limit"),
            model_id=str(data.get("model_id") or ""),
            tokenizer=str(data.get("tokenizer") or ""),
        )


def _text(value: str, name: str, problems: list[tuple[str, str]]) -> None:
    if len(value) > MAX_TEXT:
        problems.append((name, f"longer than {MAX_TEXT} characters"))
    elif any(ord(c) < 32 or ord(c) == 127 for c in value):
        problems.append((name, "contains control characters"))


def check_run_id(run_id: str, *, lookup: bool = False) -> None:
    """RunInputError unless `run_id` is a valid id for a new run; with `lookup`, one that can name
    a stored run (runs that `hyoka eval --run-id` recorded in a shared store have other ids)."""
    if not run_id:
        raise RunInputError([("run_id", f"required: {RUN_ID_RULE}")])
    if lookup:
        if len(run_id) > MAX_TEXT:
            raise RunInputError([("run_id", f"longer than {MAX_TEXT} characters")])
        return
    if not RUN_ID.fullmatch(run_id):
        raise RunInputError([("run_id", f"{run_id[:80]!r} is not a valid run id: {RUN_ID_RULE}")])


def _check_endpoints(endpoints: Endpoints, problems: list[tuple[str, str]]) -> None:
    if endpoints.backend not in ENDPOINT_BACKENDS:
        problems.append(
            ("endpoints.backend", f"{endpoints.backend[:80]!r} is not one of {', '.join(ENDPOINT_BACKENDS)}")
        )
    if not endpoints.urls:
        problems.append(("endpoints.urls", "required: at least one http:// or https:// URL"))
    if len(set(endpoints.urls)) != len(endpoints.urls):
        problems.append(("endpoints.urls", "a URL is given twice"))
    for i, url in enumerate(endpoints.urls):
        if len(url) > MAX_TEXT or not _URL.fullmatch(url):
            problems.append((f"endpoints.urls[{i}]", f"{url[:80]!r} is not an http:// or https:// URL"))
    for key, value in endpoints.options:
        name = f"endpoints.options[{key[:80]}]"
        if not _OPTION_KEY.fullmatch(key) or key == "base_url":
            problems.append((name, "not a backend option name (the URLs are given in endpoints.urls)"))
        elif "," in value or len(value) > MAX_TEXT:
            problems.append((name, "a value may not contain ',' nor be longer than 1024 characters"))


def _check_launch(launch: Launch, problems: list[tuple[str, str]]) -> None:
    for name, value in (("launch.preset_or_image", launch.preset_or_image), ("launch.model", launch.model)):
        _text(value, name, problems)
    if not launch.preset_or_image:
        problems.append(("launch.preset_or_image", "required: a preset (llamacpp-cpu, tgi, vllm) or an image"))
        return
    try:
        launch.spec()
    except LaunchConfigError as error:
        field_name = "launch.model" if "--launch-model" in str(error) else "launch.preset_or_image"
        problems.append((field_name, str(error)))
    try:
        launch.backend_choice()
    except LaunchConfigError as error:
        problems.append(("launch.backend", str(error)))


def check(request: RunRequest) -> None:
    """Every problem of `request` that can be found without the model server, as RunInputError."""
    problems: list[tuple[str, str]] = []
    try:
        check_run_id(request.run_id)
    except RunInputError as error:
        problems.extend(error.violations)
    if request.launch is not None:
        _check_launch(request.launch, problems)
    elif request.model is None and request.endpoints is None:
        problems.append(("model", "required: a model spec (BACKEND[:TARGET][,KEY=VALUE...]), endpoints or launch"))
    elif request.model is not None:
        _text(request.model, "model", problems)
        if not request.model.strip():
            problems.append(("model", "empty model spec; expected BACKEND[:TARGET][,KEY=VALUE...]"))
        else:
            try:
                parse_model_spec(request.model)
            except BackendError as error:
                problems.append(("model", str(error)))
    else:
        assert request.endpoints is not None
        _check_endpoints(request.endpoints, problems)
    if not request.tasks and not request.suite:
        problems.append(("tasks", "required: task names, or a suite (e.g. suite 'paper')"))
    if len(request.tasks) > MAX_TASKS:
        problems.append(("tasks", f"at most {MAX_TASKS} tasks"))
    else:
        for i, name in enumerate(request.tasks):
            try:
                get_task(name)
            except UnknownTaskError as error:
                problems.append((f"tasks[{i}]", str(error)))
    if request.suite:
        try:
            suite_tasks(request.suite)
        except UnknownSuiteError as error:
            problems.append(("suite", str(error)))
    if request.limit is not None and request.limit < 1:
        problems.append(("limit", f"must be at least 1 when set, got {request.limit}"))
    _text(request.model_id, "model_id", problems)
    _text(request.tokenizer, "tokenizer", problems)
    if problems:
        raise RunInputError(problems)


async def check_model_options(request: RunRequest) -> None:
    """The backend's own option check (types, ranges, replica URLs) for HTTP backends, whose
    construction is cheap and touches no network; other backends are checked by the run."""
    if request.launch is not None:  # checked by `check`; the server does not run yet
        return
    spec = request.model_spec()
    name, options = parse_model_spec(spec)
    if name not in ENDPOINT_BACKENDS:
        return
    field_name = "model" if request.model is not None else "endpoints"
    try:
        backend = create_backend(name, **options)
    except BackendError as error:
        raise RunInputError([(field_name, str(error))]) from None
    await backend.aclose()

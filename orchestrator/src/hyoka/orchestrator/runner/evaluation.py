"""One evaluation run, end to end: check every input first (tasks, backend, data, run store,
services, records), then run the tasks through one in-flight window over the model
(`engine.run_tasks`), keeping every item in the run store (`runner/store`; default: the SQLite
file `<out>/hyoka.sqlite`), and write the results: `records/<task>.jsonl`, `scores.csv` and
`results.json` are exports. With a `run_id`, the run itself is recorded in the store's runs table
(running, then succeeded with the results, failed with the error, or cancelled).

Anything a user can get wrong is found before the first model call and raised as
`EvalInputError` with a one-line message; failures during the run are `EvalRunError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hyoka.orchestrator.backends.base import BackendError, ModelBackend
from hyoka.orchestrator.backends.registry import create_backend, parse_model_spec
from hyoka.orchestrator.runner.engine import (
    ProgressCallback,
    TaskJob,
    TaskResult,
    TaskRunFailure,
    check_settings,
    run_tasks,
)
from hyoka.orchestrator.runner.records import RecordsError
from hyoka.orchestrator.runner.results import results_payload, write_results_json, write_scores_csv
from hyoka.orchestrator.runner.store import RunConflictError, RunStore, StoreError, open_store, redact_url
from hyoka.orchestrator.services import local
from hyoka.orchestrator.services._common import ServiceCallError, ServiceClient, ServiceUnavailableError
from hyoka.orchestrator.services.metrics import MetricsClient
from hyoka.orchestrator.services.sandbox import SandboxClient
from hyoka.orchestrator.tasks import (
    BuildContext,
    Item,
    PromptTokenizer,
    Scorers,
    Task,
    TaskDataError,
    TokenizerRequiredError,
    UnknownTaskError,
    get_task,
)
from hyoka.orchestrator.tasks.spec import PASS_AT_1
from hyoka.rpc.tls import ClientTLS, TLSConfigError


class EvalInputError(ValueError):
    """Bad input found before any work started (unknown task or backend, missing data, ...)."""


class EvalRunError(RuntimeError):
    """The run failed after it started (a backend or service error mid-run)."""


@dataclass(frozen=True)
class EvalConfig:
    model: str  # BACKEND[:TARGET][,KEY=VALUE...], e.g. "hf-local:smollm2"
    tasks: tuple[str, ...]
    out: Path
    data_dir: Path
    limit: int | None = None
    metrics_url: str | None = None  # None: start `hyoka-metrics serve` locally when a task needs it
    sandbox_url: str | None = None  # None: start `hyoka-sandbox serve` locally when a task needs it
    auth_token: str | None = field(default=None, repr=False)  # bearer token for the given service URLs (not in repr)
    tls: ClientTLS | None = None  # TLS (mTLS with a client certificate) for the given service URLs; None: plaintext
    model_id: str | None = None  # name in scores.csv; default: the model the backend reports
    # The model's tokenizer for tasks that count tokens (MGSM, XL-Sum), where the backend does not
    # hold it (remote servers): `smollm2` or a local transformers/GGUF folder.
    tokenizer: str | None = None
    # The run store: None = the SQLite file <out>/hyoka.sqlite; sqlite:///PATH; postgresql://USER@HOST:PORT/DB.
    store: str | None = None
    # When given, the run is recorded in the store's runs table under this id (created when new).
    run_id: str | None = None
    # What identifies the model for resuming and in the store (default: `model`). A server launched
    # for the run (`--launch`) listens on another port each time: its key names image and model.
    model_key: str | None = None

    @property
    def model_identity(self) -> str:
        return self.model_key or self.model


STORE_FILE = "hyoka.sqlite"  # the default store, in the run directory


def run_request(config: EvalConfig) -> dict[str, Any]:
    """The run's request as recorded in the runs table (JSON; no credentials)."""
    fields = dataclasses.asdict(config)
    fields.pop("auth_token")
    fields.pop("tls")  # how the services are reached, not what is evaluated
    fields.pop("run_id")
    if fields["store"] is not None:
        fields["store"] = redact_url(fields["store"])
    return {k: str(v) if isinstance(v, Path) else (list(v) if isinstance(v, tuple) else v) for k, v in fields.items()}


class Progress(Protocol):
    def start_task(self, task: str, total: int) -> None: ...
    def advance(self, task: str, n: int) -> None: ...
    def finish_task(self, result: TaskResult) -> None: ...


@dataclass
class EvalOutcome:
    model_id: str
    results: list[TaskResult] = field(default_factory=list)
    scores_csv: Path | None = None
    results_json: Path | None = None
    # service -> the target used, with " (local)" when this run started the server itself
    services: dict[str, str] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)  # results.json's content (the run's results)
    store: str = ""  # the run store (its URL without password, or the SQLite file)


def records_path(out: Path, task: str) -> Path:
    return out / "records" / f"{task}.jsonl"


def _resolve_tasks(names: Sequence[str]) -> list[Task]:
    if not names:
        raise EvalInputError("no tasks given")
    try:
        return [get_task(n) for n in dict.fromkeys(names)]
    except UnknownTaskError as e:
        raise EvalInputError(str(e)) from e


def _make_backend(spec: str) -> ModelBackend:
    try:
        name, options = parse_model_spec(spec)
        return create_backend(name, **options)
    except BackendError as e:  # BackendConfigError and UnknownBackendError included
        raise EvalInputError(str(e)) from e


def _check_capabilities(tasks: Sequence[Task], backend: ModelBackend) -> None:
    problems = [p for t in tasks for p in t.incompatibilities(backend.capabilities)]
    if problems:
        raise EvalInputError(problems[0])


def _tokenizer_source(tasks: Sequence[Task], backend: ModelBackend, config: EvalConfig) -> str | None:
    """Where the tokenizer comes from ("backend", "flag") when a task needs one; fails up front."""
    needing = [t.name for t in tasks if t.spec.needs_tokenizer]
    if not needing:
        return None
    if config.tokenizer is not None:
        return "flag"
    if backend.provides_tokenizer:
        return "backend"
    raise EvalInputError(
        f"task {needing[0]} counts the evaluated model's tokens and backend {config.model} does not hold a "
        "tokenizer: pass --tokenizer (a local model folder or .gguf file of the same model)"
    )


def _load_tokenizer(spec: str) -> PromptTokenizer:
    from hyoka.orchestrator.backends.tokenizers import load_tokenizer

    try:
        return load_tokenizer(spec)
    except BackendError as e:
        raise EvalInputError(str(e)) from e


def _plan(task: Task, config: EvalConfig, context: BuildContext) -> list[Item]:
    try:
        items = task.items(task.load(config.data_dir), config.limit, context)
        check_settings(records_path(config.out, task.name), task, config.model_identity, create=False)
    except (TaskDataError, RecordsError, TokenizerRequiredError) as e:
        raise EvalInputError(str(e)) from e
    return items


async def _service(
    stack: contextlib.AsyncExitStack, client: ServiceClient, what: str, given: bool, tls: ClientTLS | None = None
) -> None:
    stack.push_async_callback(client.aclose)
    try:
        await client.health()
    except ServiceUnavailableError as e:
        hint = "" if given else " (started locally)"
        advice = ""
        if given and tls is None:
            advice = (
                "; if it serves TLS, give --tls-ca (HYOKA_TLS_CA), and for mutual TLS --tls-client-cert and "
                "--tls-client-key (HYOKA_TLS_CLIENT_CERT, HYOKA_TLS_CLIENT_KEY)"
            )
        elif given and tls is not None and tls.cert is None:
            advice = (
                "; if it requires client certificates (mutual TLS), give --tls-client-cert and --tls-client-key "
                "(HYOKA_TLS_CLIENT_CERT, HYOKA_TLS_CLIENT_KEY)"
            )
        raise EvalInputError(f"{what}{hint}: {e}{advice}") from e


def _progress_callback(progress: Progress | None, task: str) -> ProgressCallback | None:
    if progress is None:
        return None
    return lambda n: progress.advance(task, n)


# --- conformance probe (issue 11): every HTTP backend is checked before the first real request ---


async def _probe_conformance(tasks: Sequence[Task], backend: ModelBackend, config: EvalConfig) -> dict[str, Any] | None:
    """Probe an HTTP backend (`backends/conformance.py`), write `<out>/conformance.json`, and fail
    up front: a failed generation check stops every task, a failed log-probability check stops a
    run with log-likelihood tasks. None for local backends (not probed)."""
    from hyoka.orchestrator.backends._http import HttpBackend
    from hyoka.orchestrator.backends.conformance import probe
    from hyoka.orchestrator.backends.replicas import ReplicaSet

    members = backend.replicas if isinstance(backend, ReplicaSet) else [backend]
    if not all(isinstance(b, HttpBackend) for b in members):
        return None
    try:
        report = await probe(backend, name=config.model)
    except BackendError as e:
        raise EvalInputError(f"backend {config.model}: conformance probe failed: {e}") from e
    config.out.mkdir(parents=True, exist_ok=True)
    payload = report.to_dict()
    text = json.dumps(payload, ensure_ascii=False, indent=2) + "\n"
    (config.out / "conformance.json").write_text(text, encoding="utf-8")
    error = report.error(loglikelihood=any(t.spec.request.needs_prompt_logprobs for t in tasks))
    if error is not None:
        raise EvalInputError(error)
    return payload


async def evaluate(
    config: EvalConfig, *, backend: ModelBackend | None = None, progress: Progress | None = None
) -> EvalOutcome:
    """Run `config`; a `backend` passed in is used instead of building `config.model` (which then
    only names the run) and is left open."""
    if config.limit is not None and config.limit < 1:
        raise EvalInputError(f"--limit must be >= 1, got {config.limit}")
    tasks = _resolve_tasks(config.tasks)
    owns_backend = backend is None
    if backend is None:
        backend = _make_backend(config.model)
    _check_capabilities(tasks, backend)
    if not config.data_dir.is_dir():
        raise EvalInputError(f"data directory {config.data_dir} does not exist (set --data-dir or HYOKA_DATA_DIR)")
    tokenizer_source = _tokenizer_source(tasks, backend, config)
    tokenizer = _load_tokenizer(config.tokenizer) if tokenizer_source == "flag" and config.tokenizer else None
    # Every task's data is read and checked before any work; tasks that count the model's tokens
    # are rendered once the backend has loaded its tokenizer.
    for task in tasks:
        try:
            task.check_data(config.data_dir)
        except TaskDataError as e:
            raise EvalInputError(str(e)) from e
    planned: dict[str, list[Item]] = {}
    for task in tasks:
        if not task.spec.needs_tokenizer or tokenizer is not None:
            planned[task.name] = _plan(task, config, BuildContext(tokenizer))

    try:
        store = open_store(config.store, default_path=config.out / STORE_FILE)
    except StoreError as e:
        raise EvalInputError(str(e)) from e
    try:
        if config.run_id is not None:
            _start_run(store, config)
        outcome = await _execute(
            config, tasks, backend, owns_backend, tokenizer_source, tokenizer, planned, store, progress
        )
        if config.run_id is not None:
            store.update_run(config.run_id, state="succeeded", results=outcome.payload)
        return outcome
    except BaseException as e:
        if config.run_id is not None:
            _record_failure(store, config.run_id, e)
        if isinstance(e, StoreError):  # the store failed mid-run (a database gone away)
            raise EvalRunError(str(e)) from e
        raise
    finally:
        store.close()


def _start_run(store: RunStore, config: EvalConfig) -> None:
    """Record the run as running: created when its id is new; one created beforehand (queued by
    a service, or an earlier interrupted attempt) is taken over whatever its request."""
    assert config.run_id is not None
    try:
        if store.get_run(config.run_id) is None:
            with contextlib.suppress(RunConflictError):  # created meanwhile by another process
                store.create_run(config.run_id, run_request(config))
        store.update_run(config.run_id, state="running")
    except StoreError as e:
        raise EvalInputError(str(e)) from e


def _record_failure(store: RunStore, run_id: str, error: BaseException) -> None:
    cancelled = isinstance(error, asyncio.CancelledError | KeyboardInterrupt)
    message = "cancelled" if cancelled else (str(error) or type(error).__name__)
    with contextlib.suppress(StoreError):  # the store itself may be what failed
        store.update_run(run_id, state="cancelled" if cancelled else "failed", error=message)


async def _execute(
    config: EvalConfig,
    tasks: Sequence[Task],
    backend: ModelBackend,
    owns_backend: bool,
    tokenizer_source: str | None,
    tokenizer: PromptTokenizer | None,
    planned: dict[str, list[Item]],
    store: RunStore,
    progress: Progress | None = None,
) -> EvalOutcome:
    need_metrics = any(t.metric.service for t in tasks)
    need_sandbox = any(t.metric.name == PASS_AT_1 for t in tasks)
    async with contextlib.AsyncExitStack() as stack:
        metrics_url, sandbox_url = config.metrics_url, config.sandbox_url
        to_start = [
            spec
            for spec, needed, url in (
                (local.METRICS, need_metrics, metrics_url),
                (local.SANDBOX, need_sandbox, sandbox_url),
            )
            if needed and url is None
        ]
        if to_start:
            try:
                started = await stack.enter_async_context(local.local_services(to_start, log_dir=config.out / "logs"))
            except ServiceUnavailableError as e:
                raise EvalInputError(str(e)) from e
            for service in started:
                if service.spec is local.METRICS:
                    metrics_url = service.target
                else:
                    sandbox_url = service.target
        # The token and TLS are for services given by URL; the ones started here run without them.
        token, tls = config.auth_token, config.tls
        metrics = sandbox = None
        try:
            if need_metrics and metrics_url:
                by_url = config.metrics_url is not None
                metrics = MetricsClient(metrics_url, auth_token=token if by_url else None, tls=tls if by_url else None)
                await _service(stack, metrics, "metrics service", by_url, tls)
            if need_sandbox and sandbox_url:
                by_url = config.sandbox_url is not None
                sandbox = SandboxClient(sandbox_url, auth_token=token if by_url else None, tls=tls if by_url else None)
                await _service(stack, sandbox, "sandbox service", by_url, tls)
        except TLSConfigError as e:  # a certificate file missing or unreadable
            raise EvalInputError(str(e)) from e

        if owns_backend:  # a backend passed in stays open for its owner
            stack.push_async_callback(backend.aclose)
        try:
            await backend.start()
            info = await backend.info()
        except BackendError as e:
            raise EvalInputError(f"backend {config.model}: {e}") from e
        _check_capabilities(tasks, backend)
        conformance = await _probe_conformance(tasks, backend, config)  # conformance probe (issue 11)
        model_id = config.model_id or info.model
        if tokenizer_source == "backend":
            tokenizer = backend.tokenizer()
            if tokenizer is None:
                raise EvalInputError(f"backend {config.model} did not provide its tokenizer; pass --tokenizer")
        for task in tasks:
            if task.name not in planned:
                planned[task.name] = _plan(task, config, BuildContext(tokenizer))

        outcome = EvalOutcome(model_id=model_id, store=store.url)
        for name, client, given in (("metrics", metrics, config.metrics_url), ("sandbox", sandbox, config.sandbox_url)):
            if client is not None:
                outcome.services[name] = client.target if given else f"{client.target} (local)"
        scorers = Scorers(metrics=metrics, sandbox=sandbox, tokenizer=tokenizer)
        # The tasks share the model's in-flight window: the next task's first requests fill the
        # slots that the previous task's last answers leave free.
        jobs = []
        for task in tasks:
            items = planned[task.name]
            if progress:
                progress.start_task(task.name, len(items))
            jobs.append(
                TaskJob(
                    task,
                    items,
                    records_path(config.out, task.name),
                    on_progress=_progress_callback(progress, task.name),
                    on_finish=progress.finish_task if progress else None,
                )
            )
        try:
            outcome.results = await run_tasks(jobs, backend, scorers, model=config.model_identity, store=store)
        except TaskRunFailure as f:
            if isinstance(f.error, BackendError | ServiceCallError | StoreError):
                raise EvalRunError(str(f)) from f.error
            raise f.error from None

        config.out.mkdir(parents=True, exist_ok=True)
        outcome.scores_csv = config.out / "scores.csv"
        outcome.results_json = config.out / "results.json"
        write_scores_csv(outcome.scores_csv, model_id, outcome.results)
        details: dict[str, Any] = {"backend": info.backend, "model": info.model, **info.details}
        if conformance is not None:  # conformance probe (issue 11)
            details["conformance"] = conformance
        outcome.payload = results_payload(
            model_id=model_id,
            model_spec=config.model,
            info=details,
            services=outcome.services,
            results=outcome.results,
        )
        write_results_json(outcome.results_json, outcome.payload)
        return outcome

"""`hyoka data`: get the benchmark files from their public homes and check what a data directory holds.

    hyoka data pull --suite paper                  # the 19 benchmarks of the paper, into the cache
    hyoka data pull jcommonsenseqa mmlu            # tasks or dataset folders by name
    hyoka data pull niilc --data-dir ./data --force
    hyoka data list                                # per folder: tasks, location, each file's state, licence
    hyoka data verify --suite paper                # like list, but exit 1 unless every file is usable

Data directory: --data-dir, else $HYOKA_DATA_DIR, else $XDG_CACHE_HOME/hyoka/datasets
(~/.cache/hyoka/datasets); it has the layout of the offline copy (`../shared/datasets`), so either
works as `hyoka eval --data-dir`. Mirror (air-gapped sites): `--mirror URL` or $HYOKA_DATA_MIRROR
fetches every file from `URL/<relpath>`; any HTTP server over a copy of a data directory is one,
e.g. `python -m http.server -d ~/.cache/hyoka/datasets 8000` on a machine that has pulled.

File states: verified (matches its pinned sha256 or git blob), unpinned (no upstream hash exists:
recorded in `hyoka-data.lock.json` on first download, and later checked against that record),
missing, corrupt (fails its check). `verify` accepts verified and unpinned files.
Exit codes: 0 done; 1 a download or check failed (`verify`: a file is missing or corrupt); 2 bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from hyoka.orchestrator.datasets.cache import FileStatus
    from hyoka.orchestrator.datasets.manifest import Folder, Manifest
    from hyoka.orchestrator.datasets.plan import Plan

data_app = typer.Typer(
    name="data",
    help="Benchmark data: pull it from its public homes, list and verify a data directory.",
    no_args_is_help=True,
)

Names = Annotated[
    list[str] | None, typer.Argument(help="task names (e.g. jcommonsenseqa, mgsm_ja) or dataset folders (e.g. mmlu)")
]
Suite = Annotated[str | None, typer.Option(help="a named set of tasks: `paper` = the 19 benchmarks of the paper")]
DataDir = Annotated[
    Path | None,
    typer.Option(help="data directory (default: $HYOKA_DATA_DIR, else $XDG_CACHE_HOME/hyoka/datasets)"),
]


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def _fail(message: str, code: int) -> typer.Exit:
    _err().print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _plan(names: list[str] | None, suite: str | None, manifest: Manifest, *, everything: bool) -> Plan:
    """The folders to act on; with nothing named, all of them (`everything`) or an input error."""
    from hyoka.orchestrator.datasets.plan import Plan, UnknownNameError, load_registry, resolve

    if not names and suite is None:
        if everything:
            return Plan(tuple(manifest.folders))
        raise _fail("name tasks or dataset folders, or give --suite (e.g. --suite paper)", 2)
    try:
        return resolve(names or [], suite, manifest, load_registry())
    except UnknownNameError as e:
        raise _fail(str(e), 2) from None


def _licence_lines(folder: Folder) -> list[str]:
    return [f"  licence: {folder.licence}", *(f"    - {note}" for note in folder.licence_notes)]


class _RichDownloads:
    """The fetcher's `Progress` as one rich bar per download (bytes, speed, time left)."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TaskID,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> _RichDownloads:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def start(self, label: str, total: int | None) -> None:
        self._task = self._progress.add_task(label, total=total)

    def update(self, completed: int, total: int | None) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=completed, total=total)

    def finish(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None

    def log(self, line: str) -> None:
        self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)


@data_app.command("pull")
def pull_command(
    names: Names = None,
    suite: Suite = None,
    data_dir: DataDir = None,
    force: Annotated[bool, typer.Option(help="fetch again even files that are present and pass their check")] = False,
    mirror: Annotated[
        str | None,
        typer.Option(envvar="HYOKA_DATA_MIRROR", help="fetch every file from MIRROR/<relpath> instead of upstream"),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="show what would be fetched, and from where; fetch nothing")] = False,
) -> None:
    """Download benchmark files, verify their checksums, and show their licences."""
    from rich.console import Console

    from hyoka.orchestrator.datasets.cache import CacheError
    from hyoka.orchestrator.datasets.fetch import NoProgress, RetryPolicy, make_client
    from hyoka.orchestrator.datasets.manifest import load_manifest
    from hyoka.orchestrator.datasets.pull import MirrorError, Puller, check_mirror
    from hyoka.orchestrator.tasks.datadir import resolve_data_dir

    manifest = load_manifest()
    plan = _plan(names, suite, manifest, everything=False)
    try:
        mirror = check_mirror(mirror) if mirror else None
    except MirrorError as e:
        raise _fail(str(e), 2) from None
    directory = resolve_data_dir(data_dir)
    console = Console()
    for warning in plan.warnings:
        console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"data directory: {directory}", markup=False, highlight=False, soft_wrap=True)
    if mirror:
        console.print(f"mirror: {mirror}", markup=False, highlight=False, soft_wrap=True)
    policy = RetryPolicy()
    try:
        with make_client(policy) as client, _RichDownloads(console) as bars:
            puller = Puller(
                directory,
                manifest,
                client,
                progress=NoProgress() if dry_run else bars,
                policy=policy,
                mirror=mirror,
                force=force,
                log=bars.log,
            )
            for name in plan.folders:
                folder = manifest.folders[name]
                bars.log(f"{name}: {folder.title}")
                for line in _licence_lines(folder):
                    bars.log(line)
                if dry_run:
                    for status in puller.todo(folder):
                        bars.log(
                            f"  would fetch {status.entry.relpath} ({status.state}) <- {puller.url_of(status.entry)}"
                        )
                else:
                    puller.pull_folder(folder)
    except CacheError as e:
        raise _fail(str(e), 1) from None
    except OSError as e:
        raise _fail(f"{directory}: {e}", 1) from None
    result = puller.result
    for warning in result.warnings:
        console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    if dry_run:
        return
    console.print(
        f"{len(result.fetched)} fetched, {len(result.skipped)} already present, {len(result.failures)} failed",
        markup=False,
        highlight=False,
    )
    if result.failures:
        err = _err()
        for failure in result.failures:
            err.print(f"error: {failure}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _statuses(directory: Path, manifest: Manifest, plan: Plan) -> dict[str, list[FileStatus]]:
    from hyoka.orchestrator.datasets.cache import CacheError, Lock, folder_status

    try:
        lock = Lock.load(directory)
    except CacheError as e:
        raise _fail(str(e), 1) from None
    return {name: folder_status(directory, manifest.folders[name], lock) for name in plan.folders}


def _report(
    directory: Path, manifest: Manifest, plan: Plan, statuses: dict[str, list[FileStatus]], *, all_files: bool
) -> None:
    from collections import Counter

    from hyoka.orchestrator.datasets.plan import load_registry, tasks_of_folders

    tasks = tasks_of_folders(manifest, load_registry())
    typer.echo(f"data directory: {directory}")
    for name in plan.folders:
        folder = manifest.folders[name]
        counts = Counter(s.state.value for s in statuses[name])
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        typer.echo(f"{name}: {folder.title}  [{summary}]")
        typer.echo(f"  tasks: {', '.join(tasks.get(name, ())) or '-'}")
        typer.echo(f"  path: {directory / name}")
        for line in _licence_lines(folder):
            typer.echo(line)
        for s in statuses[name]:
            if all_files or not s.usable or s.state.value == "unpinned":
                typer.echo(f"    {s.state.value:<9} {s.entry.relpath}  ({s.detail})")


@data_app.command("list")
def list_command(
    names: Names = None,
    suite: Suite = None,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Per benchmark folder: the tasks that read it, where it is, each file's state, the licence."""
    from hyoka.orchestrator.datasets.manifest import load_manifest
    from hyoka.orchestrator.datasets.plan import load_registry, tasks_of_folders
    from hyoka.orchestrator.tasks.datadir import resolve_data_dir

    manifest = load_manifest()
    plan = _plan(names, suite, manifest, everything=True)
    directory = resolve_data_dir(data_dir)
    statuses = _statuses(directory, manifest, plan)
    if not as_json:
        _report(directory, manifest, plan, statuses, all_files=True)
        return
    tasks = tasks_of_folders(manifest, load_registry())
    doc = {
        "data_dir": str(directory),
        "folders": [
            {
                "name": name,
                "title": manifest.folders[name].title,
                "tasks": list(tasks.get(name, ())),
                "path": str(directory / name),
                "licence": manifest.folders[name].licence,
                "licence_notes": list(manifest.folders[name].licence_notes),
                "files": [
                    {"relpath": s.entry.relpath, "state": s.state.value, "pin": s.entry.pin.value, "detail": s.detail}
                    for s in statuses[name]
                ],
            }
            for name in plan.folders
        ],
    }
    typer.echo(json.dumps(doc, indent=1, ensure_ascii=False))


@data_app.command("verify")
def verify_command(names: Names = None, suite: Suite = None, data_dir: DataDir = None) -> None:
    """Check a data directory; exit 1 if any selected file is missing or fails its check."""
    from hyoka.orchestrator.datasets.manifest import load_manifest
    from hyoka.orchestrator.tasks.datadir import resolve_data_dir

    manifest = load_manifest()
    plan = _plan(names, suite, manifest, everything=True)
    directory = resolve_data_dir(data_dir)
    statuses = _statuses(directory, manifest, plan)
    _report(directory, manifest, plan, statuses, all_files=False)
    bad = [s for group in statuses.values() for s in group if not s.usable]
    if bad:
        raise _fail(
            f"{len(bad)} file(s) missing or failing their check in {directory}; `hyoka data pull` fetches them", 1
        )
    typer.echo("all files present and checked")

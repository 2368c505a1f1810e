"""`hyoka data pull`: fetch a folder's missing or damaged files, check each one, move it into place.

Every file is downloaded (or extracted / derived from its source) into a hidden temporary file in
its final folder, checked against the manifest (sha256, else git blob, else the lock file's
first-use record), and only then renamed to its final name; a failed check deletes the temporary
file and reports the URL, the path, the expected and the actual hash. Files already present that
pass their check are skipped, so pulling twice fetches nothing the second time.

With a mirror (`--mirror URL` / $HYOKA_DATA_MIRROR) every file is fetched from `<mirror>/<relpath>`:
any HTTP server over a copy of a data directory serves as one (air-gapped sites, tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx

from hyoka.orchestrator.datasets.cache import FileState, FileStatus, Lock, file_status, temp_file_beside
from hyoka.orchestrator.datasets.derive import DeriveError, produce
from hyoka.orchestrator.datasets.fetch import DownloadError, Progress, RetryPolicy, download
from hyoka.orchestrator.datasets.manifest import FileEntry, Folder, Manifest, Pin
from hyoka.orchestrator.datasets.verify import check_file, sha256_file

MIRROR_ENV = "HYOKA_DATA_MIRROR"
DOWNLOADS = ".hyoka-downloads"  # hidden folder of the data directory for sources being read


class MirrorError(ValueError):
    pass


def check_mirror(mirror: str) -> str:
    parts = urlsplit(mirror)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MirrorError(f"mirror must be an http(s) URL, not {mirror!r}")
    return mirror.rstrip("/")


def mirror_url(mirror: str, relpath: str) -> str:
    return f"{mirror.rstrip('/')}/{quote(relpath)}"


@dataclass
class PullResult:
    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # one line each: URL or path, and the check
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class Puller:
    def __init__(
        self,
        data_dir: Path,
        manifest: Manifest,
        client: httpx.Client,
        *,
        progress: Progress,
        policy: RetryPolicy,
        mirror: str | None = None,
        force: bool = False,
        log: Callable[[str], None] = lambda _line: None,
    ) -> None:
        self.data_dir = data_dir
        self.manifest = manifest
        self.client = client
        self.progress = progress
        self.policy = policy
        self.mirror = mirror
        self.force = force
        self.log = log
        self.result = PullResult()
        self._lock: Lock | None = None

    @property
    def lock(self) -> Lock:
        if self._lock is None:
            self._lock = Lock.load(self.data_dir)
        return self._lock

    # --- what to do --------------------------------------------------------------------------

    def todo(self, folder: Folder) -> list[FileStatus]:
        """The folder's files that need fetching (all of them with `force`)."""
        statuses = [file_status(self.data_dir, entry, self.lock) for entry in folder.files]
        return [s for s in statuses if self.force or not s.usable]

    def url_of(self, entry: FileEntry) -> str:
        if self.mirror:
            return mirror_url(self.mirror, entry.relpath)
        if entry.url:
            return entry.url
        source = self.manifest.sources[entry.source]
        return f"{source.url} (member {entry.member})"

    # --- doing it ----------------------------------------------------------------------------

    def pull_folder(self, folder: Folder) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        needed = self.todo(folder)
        needed_paths = {s.entry.relpath for s in needed}
        present = [e for e in folder.files if e.relpath not in needed_paths]
        for entry in present:
            self.result.skipped.append(entry.relpath)
            if entry.pin is Pin.UNPINNED and self.lock.sha256(entry.relpath) is None:
                # Present but never recorded (copied in by hand): trust it now, and say so.
                sha256 = sha256_file(self.data_dir / entry.relpath)
                self._record(entry, sha256, "(present before the first pull)")
                self.result.warnings.append(
                    f"{entry.relpath} is UNPINNED and was already present: its sha256 {sha256} is now recorded "
                    f"in {self.lock.path} as found (trust on first use)"
                )
        if present:
            self.log(f"  {len(present)} file(s) already present and checked")
        for status in needed:
            if status.state is FileState.CORRUPT:
                self.log(f"  {status.entry.relpath}: {status.detail}; fetching it again")
        direct = [s.entry for s in needed if self.mirror or s.entry.url]
        by_source: dict[str, list[FileEntry]] = {}
        for status in needed:
            if not (self.mirror or status.entry.url):
                by_source.setdefault(status.entry.source, []).append(status.entry)
        for entry in direct:
            self._fetch_direct(entry)
        for key, entries in by_source.items():
            self._fetch_from_source(key, entries)

    def _fetch_direct(self, entry: FileEntry) -> None:
        url = self.url_of(entry)
        final = self.data_dir / entry.relpath
        temp = temp_file_beside(final)
        try:
            download(self.client, url, temp, label=entry.relpath, progress=self.progress, policy=self.policy)
            self._install(entry, temp, url)
        except DownloadError as e:
            self.result.failures.append(str(e))
        except OSError as e:
            self.result.failures.append(f"{final}: {e}")
        finally:
            temp.unlink(missing_ok=True)

    def _fetch_from_source(self, key: str, entries: list[FileEntry]) -> None:
        source = self.manifest.sources[key]
        downloads = self.data_dir / DOWNLOADS
        source_file = temp_file_beside(downloads / key)
        targets: dict[str, Path] = {}
        try:
            url = self._download_source(key, source_file)
            if url is None:
                return
            targets = {e.member: temp_file_beside(self.data_dir / e.relpath) for e in entries}
            try:
                errors = produce(source.kind, source_file, targets)
            except DeriveError as e:
                errors = {item.member: str(e) for item in entries}
            for entry in entries:
                if entry.member in errors:
                    self.result.failures.append(
                        f"{url} (member {entry.member}): {entry.relpath}: {errors[entry.member]}"
                    )
                else:
                    self._install(entry, targets[entry.member], f"{url} (member {entry.member})")
        except OSError as e:
            self.result.failures.append(f"{self.data_dir}: {e}")
        finally:
            source_file.unlink(missing_ok=True)
            for temp in targets.values():
                temp.unlink(missing_ok=True)
            if downloads.is_dir() and not any(downloads.iterdir()):
                downloads.rmdir()

    def _download_source(self, key: str, dest: Path) -> str | None:
        """Fetch a source from its first URL that works and matches its sha256."""
        source = self.manifest.sources[key]
        problems: list[str] = []
        for url in source.urls:
            try:
                download(self.client, url, dest, label=f"{key} (source)", progress=self.progress, policy=self.policy)
            except DownloadError as e:
                problems.append(str(e))
                continue
            actual = sha256_file(dest)
            if actual == source.sha256:
                return url
            problems.append(f"{url}: source {key}: sha256 mismatch: expected {source.sha256}, got {actual}")
            dest.unlink(missing_ok=True)
        self.result.failures.append("; ".join(problems))
        return None

    def _install(self, entry: FileEntry, temp: Path, url: str) -> None:
        """Check the downloaded temporary file; move it into place only if it passes."""
        locked = self.lock.sha256(entry.relpath) if entry.pin is Pin.UNPINNED else None
        result = check_file(temp, entry, locked)
        if not result.ok:
            hint = f" (recorded on first download in {self.lock.path}; delete that entry to trust the new file)"
            self.result.failures.append(
                f"{url}: {entry.relpath}: {result.describe()}" + (hint if result.check == "lock sha256" else "")
            )
            temp.unlink(missing_ok=True)
            return
        temp.replace(self.data_dir / entry.relpath)
        self._record(entry, result.sha256, url)
        self.result.fetched.append(entry.relpath)
        how = {"sha256": "sha256 verified", "git blob": "git blob verified", "lock sha256": "matches the lock"}
        self.log(f"  fetched {entry.relpath} ({how.get(result.check, 'unpinned')})")
        if entry.pin is Pin.UNPINNED and locked is None:
            self.result.warnings.append(
                f"{entry.relpath} is UNPINNED: upstream publishes no checksum, so it was trusted on first "
                f"download; sha256 {result.sha256} is now recorded in {self.lock.path}"
            )

    def _record(self, entry: FileEntry, sha256: str, url: str) -> None:
        self.lock.record(entry, sha256, url)
        self.lock.save()

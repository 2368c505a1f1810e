"""A data directory's state: atomic writes, the lock file that records what `pull` fetched (the
trust-on-first-use record for files no upstream hash pins), and the status of each manifest file.

Nothing is ever half-written under a final name: content goes to a hidden temporary file in the
same folder and is moved into place with `os.replace`, which is atomic on one filesystem.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from hyoka.orchestrator.datasets.manifest import FileEntry, Folder, Pin
from hyoka.orchestrator.datasets.verify import check_file

LOCK_NAME = "hyoka-data.lock.json"
TEMP_SUFFIX = ".part"


class CacheError(RuntimeError):
    pass


def temp_file_beside(final: Path) -> Path:
    """An empty hidden temporary file next to `final` (same filesystem, so `os.replace` is atomic;
    hidden and suffixed, so no loader glob such as `*_test.csv` can pick it up)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX, dir=final.parent)
    os.close(fd)
    return Path(name)


def write_atomic(path: Path, data: bytes) -> None:
    temp = temp_file_beside(path)
    try:
        temp.write_bytes(data)
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)


class LockEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    sha256: str
    url: str
    pin: str
    fetched_at: str


class _LockFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: int = 1
    files: dict[str, LockEntry] = {}


class Lock:
    """`<data dir>/hyoka-data.lock.json`: per relpath, the SHA-256 and URL of what was fetched.
    For unpinned files it is the only reference (trust on first use): later checks and downloads
    must match it, and deleting an entry is how a user trusts a new upstream file."""

    def __init__(self, path: Path, files: dict[str, LockEntry] | None = None) -> None:
        self.path = path
        self.files: dict[str, LockEntry] = dict(files or {})

    @classmethod
    def load(cls, data_dir: Path) -> Lock:
        path = data_dir / LOCK_NAME
        if not path.is_file():
            return cls(path)
        try:
            parsed = _LockFile.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, ValidationError) as e:
            raise CacheError(f"{path}: unreadable lock file ({e}); fix or delete it") from e
        return cls(path, parsed.files)

    def sha256(self, relpath: str) -> str | None:
        entry = self.files.get(relpath)
        return entry.sha256 if entry else None

    def record(self, entry: FileEntry, sha256: str, url: str) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        self.files[entry.relpath] = LockEntry(sha256=sha256, url=url, pin=entry.pin.value, fetched_at=stamp)

    def save(self) -> None:
        body = _LockFile(files=dict(sorted(self.files.items())))
        write_atomic(self.path, (json.dumps(body.model_dump(), indent=1, ensure_ascii=False) + "\n").encode())


class FileState(StrEnum):
    VERIFIED = "verified"  # matches its pinned sha256 or git blob
    UNPINNED = "unpinned"  # present; no upstream hash exists (at most: matches the lock)
    MISSING = "missing"
    CORRUPT = "corrupt"  # present but fails its check (pinned hash, or the lock for unpinned files)


@dataclass(frozen=True)
class FileStatus:
    entry: FileEntry
    path: Path
    state: FileState
    detail: str
    sha256: str = ""

    @property
    def usable(self) -> bool:
        """Present and not contradicted by any check (what `pull` skips, what `verify` accepts)."""
        return self.state in (FileState.VERIFIED, FileState.UNPINNED)


def file_status(data_dir: Path, entry: FileEntry, lock: Lock) -> FileStatus:
    path = data_dir / entry.relpath
    if not path.is_file():
        return FileStatus(entry, path, FileState.MISSING, "not present")
    locked = lock.sha256(entry.relpath)
    result = check_file(path, entry, locked)
    if not result.ok:
        return FileStatus(entry, path, FileState.CORRUPT, result.describe(), result.sha256)
    if entry.pin is not Pin.UNPINNED:
        return FileStatus(entry, path, FileState.VERIFIED, result.describe(), result.sha256)
    detail = (
        "no upstream hash; matches the hash recorded on first download"
        if locked
        else f"no upstream hash, and not recorded in {LOCK_NAME}"
    )
    return FileStatus(entry, path, FileState.UNPINNED, detail, result.sha256)


def folder_status(data_dir: Path, folder: Folder, lock: Lock) -> list[FileStatus]:
    return [file_status(data_dir, entry, lock) for entry in folder.files]

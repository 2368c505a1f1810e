"""Content checks of a file on disk: its SHA-256, its git blob id, and the verdict against what
the manifest pins (sha256, else git blob) or, for unpinned files, what the lock file recorded."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from hyoka.orchestrator.datasets.manifest import FileEntry

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_file(path: Path) -> str:
    """`git hash-object` of the file: SHA-1 over `blob <size>\\0` + content. Several upstream files
    publish no checksum, but their git blob id in a pinned tree fixes their bytes just as well."""
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size, usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Check:
    """The verdict on one file. `check` names what was compared ("sha256", "git blob", "lock
    sha256", or "none" for an unpinned file seen for the first time); `sha256` is always the
    file's actual SHA-256 (what the lock records)."""

    ok: bool
    check: str
    expected: str
    actual: str
    sha256: str

    def describe(self) -> str:
        if self.check == "none":
            return "no published hash to check against"
        if self.ok:
            return f"{self.check} matches"
        return f"{self.check} mismatch: expected {self.expected}, got {self.actual}"


def check_file(path: Path, entry: FileEntry, locked_sha256: str | None = None) -> Check:
    actual = sha256_file(path)
    if entry.sha256:
        return Check(actual == entry.sha256, "sha256", entry.sha256, actual, actual)
    if entry.git_blob:
        blob = git_blob_file(path)
        return Check(blob == entry.git_blob, "git blob", entry.git_blob, blob, actual)
    if locked_sha256:
        return Check(actual == locked_sha256, "lock sha256", locked_sha256, actual, actual)
    return Check(True, "none", "", actual, actual)

"""The typed schema of `manifest.toml` (shipped in this package) and its loader.

The manifest is keyed by benchmark FOLDER, the first component of a task's `data_files`, so the
data layer works whichever task definitions exist. Each file names where it comes from and how it
is checked: a SHA-256, a git blob id (for upstream files whose only published fingerprint is
their git blob), or neither ("unpinned": trusted on first download and recorded in a lock file).
"""

from __future__ import annotations

import re
import tomllib
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_SHA256 = re.compile(r"^([0-9a-f]{64})?$")
_GIT_BLOB = re.compile(r"^([0-9a-f]{40})?$")


class ManifestError(ValueError):
    pass


class Pin(StrEnum):
    """How a file's content is fixed in advance."""

    SHA256 = "sha256"
    GIT_BLOB = "git-blob"
    UNPINNED = "unpinned"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_relpath(value: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value or str(path) != value:
        raise ValueError(f"not a plain relative path: {value!r}")
    return value


class Source(_Frozen):
    """An upstream file that several manifest files are produced from: a tar archive whose
    members are extracted (`kind = "tar"`), or a file a converter derives files from."""

    url: str
    alt_urls: tuple[str, ...] = ()  # tried in order when `url` fails; same bytes (same sha256)
    sha256: str
    size: int | None = None
    kind: Literal["tar", "mgsm-exemplars"]
    note: str = ""

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, v: str) -> str:
        if not v or not _SHA256.match(v):
            raise ValueError("a source needs a 64-hex-digit sha256")
        return v

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.url, *self.alt_urls)


class FileEntry(_Frozen):
    """One file of a data directory and where it comes from: `url` (downloaded as is), or
    `source` + `member` (extracted or derived from a `Source`)."""

    relpath: str
    url: str = ""
    source: str = ""
    member: str = ""
    sha256: str = ""  # "" = no published SHA-256
    git_blob: str = ""  # the upstream git blob id, checked when no sha256 is known
    note: str = ""

    @field_validator("relpath")
    @classmethod
    def _relpath(cls, v: str) -> str:
        return _check_relpath(v)

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, v: str) -> str:
        if not _SHA256.match(v):
            raise ValueError(f"sha256 must be 64 lowercase hex digits or empty, not {v!r}")
        return v

    @field_validator("git_blob")
    @classmethod
    def _git_blob(cls, v: str) -> str:
        if not _GIT_BLOB.match(v):
            raise ValueError(f"git_blob must be 40 lowercase hex digits or empty, not {v!r}")
        return v

    @model_validator(mode="after")
    def _one_origin(self) -> FileEntry:
        if bool(self.url) == bool(self.source):
            raise ValueError(f"{self.relpath}: give exactly one of url and source")
        if bool(self.source) != bool(self.member):
            raise ValueError(f"{self.relpath}: source and member go together")
        return self

    @property
    def folder(self) -> str:
        return self.relpath.split("/", 1)[0]

    @property
    def pin(self) -> Pin:
        if self.sha256:
            return Pin.SHA256
        return Pin.GIT_BLOB if self.git_blob else Pin.UNPINNED


class Folder(_Frozen):
    """A benchmark folder: its files, the tasks known to read it, and its licence terms."""

    name: str
    title: str
    tasks: tuple[str, ...] = ()  # tasks that read this folder (used when the registry lacks them)
    licence: str
    licence_notes: tuple[str, ...] = ()
    homepage: str = ""
    note: str = ""
    files: tuple[FileEntry, ...]

    @model_validator(mode="after")
    def _files_inside(self) -> Folder:
        for entry in self.files:
            if entry.folder != self.name:
                raise ValueError(f"folder {self.name}: file {entry.relpath} lies outside it")
        return self


class Manifest(_Frozen):
    schema_version: int = Field(alias="schema")
    sources: dict[str, Source] = Field(default_factory=dict)
    folders: dict[str, Folder]

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        seen: set[str] = set()
        for folder in self.folders.values():
            for entry in folder.files:
                if entry.relpath in seen:
                    raise ValueError(f"{entry.relpath} is listed twice")
                seen.add(entry.relpath)
                if entry.source and entry.source not in self.sources:
                    raise ValueError(f"{entry.relpath}: unknown source {entry.source!r}")
        return self

    def files(self) -> list[FileEntry]:
        return [entry for folder in self.folders.values() for entry in folder.files]

    def entry(self, relpath: str) -> FileEntry | None:
        folder = self.folders.get(relpath.split("/", 1)[0])
        return next((e for e in folder.files if e.relpath == relpath), None) if folder else None


def parse_manifest(text: str) -> Manifest:
    """Validate a manifest document (the shipped one, or one a test writes)."""
    try:
        raw = tomllib.loads(text)
        folders = raw.get("folders", {})
        if isinstance(folders, dict):
            raw["folders"] = {
                name: {**body, "name": name} if isinstance(body, dict) else body for name, body in folders.items()
            }
        return Manifest.model_validate(raw)
    except (tomllib.TOMLDecodeError, ValidationError) as e:
        raise ManifestError(f"invalid dataset manifest: {e}") from e


@cache
def load_manifest() -> Manifest:
    """The manifest shipped with the package."""
    text = (resources.files("hyoka.orchestrator.datasets") / "manifest.toml").read_text(encoding="utf-8")
    return parse_manifest(text)

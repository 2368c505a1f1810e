"""A data directory's state (verified / unpinned / missing / corrupt), the lock file, atomic
writes, and where the data directory is by default."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hyoka.orchestrator.datasets.cache import LOCK_NAME, CacheError, FileState, Lock, file_status, write_atomic
from hyoka.orchestrator.datasets.manifest import Manifest, parse_manifest
from hyoka.orchestrator.datasets.verify import git_blob_file
from hyoka.orchestrator.tasks.datadir import default_data_dir, resolve_data_dir, user_cache_dir

DATA = b"question,answer\n1,2\n"
SHA = hashlib.sha256(DATA).hexdigest()


def demo() -> Manifest:
    return parse_manifest(
        f"""schema = 1
[folders.demo]
title = "Demo"
licence = "MIT"
[[folders.demo.files]]
relpath = "demo/pinned.csv"
url = "http://h/pinned.csv"
sha256 = "{SHA}"
[[folders.demo.files]]
relpath = "demo/free.csv"
url = "http://h/free.csv"
"""
    )


def test_states(tmp_path: Path) -> None:
    pinned, free = demo().folders["demo"].files
    lock = Lock.load(tmp_path)
    assert file_status(tmp_path, pinned, lock).state is FileState.MISSING
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo/pinned.csv").write_bytes(DATA)
    assert file_status(tmp_path, pinned, lock).state is FileState.VERIFIED
    (tmp_path / "demo/pinned.csv").write_bytes(DATA[:-1])
    status = file_status(tmp_path, pinned, lock)
    assert status.state is FileState.CORRUPT and f"sha256 mismatch: expected {SHA}" in status.detail
    (tmp_path / "demo/free.csv").write_bytes(DATA)
    status = file_status(tmp_path, free, lock)
    assert status.state is FileState.UNPINNED and "not recorded" in status.detail and status.usable
    lock.record(free, hashlib.sha256(b"other").hexdigest(), "http://h/free.csv")
    assert file_status(tmp_path, free, lock).state is FileState.CORRUPT


def test_the_lock_round_trips_and_a_broken_one_is_an_error(tmp_path: Path) -> None:
    _, free = demo().folders["demo"].files
    lock = Lock.load(tmp_path)
    lock.record(free, SHA, "http://h/free.csv")
    lock.save()
    again = Lock.load(tmp_path)
    assert again.sha256("demo/free.csv") == SHA and again.files["demo/free.csv"].pin == "unpinned"
    assert json.loads((tmp_path / LOCK_NAME).read_text())["files"]["demo/free.csv"]["url"] == "http://h/free.csv"
    (tmp_path / LOCK_NAME).write_text("{not json")
    with pytest.raises(CacheError, match="unreadable lock file"):
        Lock.load(tmp_path)


def test_write_atomic_leaves_only_the_final_file(tmp_path: Path) -> None:
    write_atomic(tmp_path / "sub" / "f.txt", b"x")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.txt"]


def test_git_blob_is_git_hash_object(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello\n")
    assert git_blob_file(tmp_path / "f") == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object


def test_data_dir_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HYOKA_DATA_DIR", str(tmp_path / "env"))
    assert default_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv("HYOKA_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "hyoka" / "datasets"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "hyoka" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_data_dir() == tmp_path / "home" / ".cache" / "hyoka" / "datasets"

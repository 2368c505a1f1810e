"""The JSONL records (the run store's export, and run directories from before it): a torn last line
is dropped, a bad line elsewhere is an error, a rewrite replaces the file at once."""

import json
from pathlib import Path

import pytest

from hyoka.orchestrator.runner.records import RecordsError, RecordStore


def rec(i: int) -> dict[str, object]:
    return {"item_id": f"i{i}", "score": i / 10, "prompt": "p"}


def test_append_and_load(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "r" / "t.jsonl")
    assert store.load() == {}
    store.append([rec(1), rec(2)])
    store.append([rec(3)])
    assert sorted(store.load()) == ["i1", "i2", "i3"]


def test_torn_last_line_is_dropped_and_the_file_repaired(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    store = RecordStore(path)
    store.append([rec(1), rec(2)])
    with path.open("a", encoding="utf-8") as f:
        f.write('{"item_id": "i3", "sco')  # the process died mid-write
    assert sorted(store.load()) == ["i1", "i2"]
    store.append([rec(3)])
    assert sorted(store.load()) == ["i1", "i2", "i3"]
    assert all(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())


def test_bad_line_in_the_middle_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(rec(1)) + "\nnot json\n" + json.dumps(rec(2)) + "\n", encoding="utf-8")
    with pytest.raises(RecordsError, match=r"t\.jsonl:2: not a valid record"):
        RecordStore(path).load()


def test_rewrite_replaces_the_file(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "r" / "t.jsonl")
    store.append([rec(1), rec(2)])
    with store.path.open("a", encoding="utf-8") as f:
        f.write('{"item_id": "i3", "sco')
    store.rewrite([rec(2), rec(4)])
    assert [json.loads(line)["item_id"] for line in store.path.read_text(encoding="utf-8").splitlines()] == ["i2", "i4"]
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["t.jsonl"]

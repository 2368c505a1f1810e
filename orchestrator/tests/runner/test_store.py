"""The run store on SQLite and on a real PostgreSQL: the runs API (idempotent create, conflicts,
order and filters, updates), item outputs and records, migrations (idempotent, concurrent opens),
and clear errors for bad URLs and unreachable databases."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from hyoka.orchestrator.backends.base import GenerationRequest, LoglikelihoodRequest
from hyoka.orchestrator.runner.store import (
    RUN_STATES,
    SCHEMA_VERSION,
    RunConflictError,
    RunNotFoundError,
    RunStore,
    StoredOutput,
    StoredRecord,
    StoreError,
    generation_hash,
    open_store,
    prompt_hash,
    redact_url,
    schema,
)
from hyoka.orchestrator.tasks import Item


def _open(url: str, tmp_path: Path) -> RunStore:
    return open_store(url, default_path=tmp_path / "unused.sqlite")


def test_create_run_is_idempotent_and_refuses_another_request(store_url: str, tmp_path: Path) -> None:
    with _open(store_url, tmp_path) as store:
        request = {"model": "m", "tasks": ("a", "b"), "limit": None, "名前": "値"}
        record, created = store.create_run("r1", request)
        assert created and record.state == "queued" and record.error is None and record.results is None
        assert record.request == {"model": "m", "tasks": ["a", "b"], "limit": None, "名前": "値"}
        assert record.created_at == record.updated_at and abs(record.created_at - time.time()) < 60
        again, created = store.create_run("r1", {"名前": "値", "limit": None, "tasks": ["a", "b"], "model": "m"})
        assert not created and again == record
        with pytest.raises(RunConflictError, match="r1"):
            store.create_run("r1", {**request, "limit": 5})
        assert store.get_run("r1") == record
        assert store.get_run("nope") is None
        with pytest.raises(ValueError, match="empty"):
            store.create_run("", {})


def test_list_runs_newest_first_with_limit_and_state_filter(store_url: str, tmp_path: Path) -> None:
    with _open(store_url, tmp_path) as store:
        for i in range(5):
            store.create_run(f"r{i}", {"i": i})
        store.update_run("r1", state="running")
        store.update_run("r3", state="succeeded", results={"score": 0.5})
        assert [r.run_id for r in store.list_runs()] == ["r4", "r3", "r2", "r1", "r0"]
        assert [r.run_id for r in store.list_runs(limit=2)] == ["r4", "r3"]
        assert [r.run_id for r in store.list_runs(states=["running", "succeeded"])] == ["r3", "r1"]
        assert [r.run_id for r in store.list_runs(states=["queued"], limit=2)] == ["r4", "r2"]
        assert store.list_runs(states=[]) == []
        with pytest.raises(ValueError, match="unknown run state"):
            store.list_runs(states=["done"])
        with pytest.raises(ValueError, match="limit"):
            store.list_runs(limit=0)


def test_update_run_sets_state_error_and_results(store_url: str, tmp_path: Path) -> None:
    with _open(store_url, tmp_path) as store:
        created, _ = store.create_run("r", {"x": 1})
        failed = store.update_run("r", state="failed", error="backend went away")
        assert failed.state == "failed" and failed.error == "backend went away" and failed.results is None
        assert failed.updated_at >= created.updated_at and failed.created_at == created.created_at
        done = store.update_run("r", state="succeeded", results={"tasks": [{"score": 0.25}], "名": "値"})
        assert done.error is None and done.results == {"tasks": [{"score": 0.25}], "名": "値"}
        assert store.get_run("r") == done
        assert {s for s in RUN_STATES} == {"queued", "running", "succeeded", "failed", "cancelled"}
        with pytest.raises(ValueError, match="unknown run state"):
            store.update_run("r", state="finished")
        with pytest.raises(RunNotFoundError, match="nope") as e:
            store.update_run("nope", state="running")
        assert isinstance(e.value, KeyError)


def test_outputs_keep_the_first_write_and_records_the_last(store_url: str, tmp_path: Path) -> None:
    with _open(store_url, tmp_path) as store:
        a = StoredOutput("i1", "p1", "g1", {"completions": ["x"], "logprobs": []})
        store.save_outputs("m", "t", [a, StoredOutput("i2", "p2", "g1", {"completions": ["y"], "logprobs": [-1.5]})])
        store.save_outputs("m", "t", [StoredOutput("i1", "p1", "g1", {"completions": ["changed"], "logprobs": []})])
        store.save_outputs("m", "t", [StoredOutput("i1", "p1", "g2", {"completions": ["other settings"]})])
        store.save_outputs("m2", "t", [StoredOutput("i1", "p1", "g1", {"completions": ["other model"]})])
        store.save_outputs("m", "t", [])
        got = {(o.item_id, o.settings_hash): o.output for o in store.load_outputs("m", "t")}
        assert got == {
            ("i1", "g1"): {"completions": ["x"], "logprobs": []},
            ("i2", "g1"): {"completions": ["y"], "logprobs": [-1.5]},
            ("i1", "g2"): {"completions": ["other settings"]},
        }
        assert store.load_outputs("m", "other") == []

        def rec(item_id: str, score: float, prompt: str = "p", **extra: str) -> StoredRecord:
            return StoredRecord(item_id, prompt, "g", {"item_id": item_id, "score": score, **extra})

        store.save_records("f1", "t", [rec("i1", 0.0), rec("i2", 1.0)])
        store.save_records("f1", "t", [rec("i1", 0.5, prompt="p2")])
        store.save_records("f1", "t", [rec("i2", 0.0)], replace=False)
        store.save_records("f2", "t", [rec("i1", 1.0, extracted="答")])
        store.save_records("f2", "t", [])
        assert store.load_records("f1") == {"i1": rec("i1", 0.5, prompt="p2"), "i2": rec("i2", 1.0)}
        assert store.load_records("f2") == {"i1": rec("i1", 1.0, extracted="答")}
        assert store.load_records("f3") == {}


def test_reopening_migrates_once(store_url: str, tmp_path: Path) -> None:
    for _ in range(3):
        with _open(store_url, tmp_path) as store:
            assert store.migrate() == SCHEMA_VERSION
            store.create_run(f"r{len(store.list_runs())}", {})
            with store.engine.connect() as conn:
                versions = conn.execute(select(schema.schema_version.c.version)).scalars().all()
            assert versions == list(range(1, SCHEMA_VERSION + 1))
    with _open(store_url, tmp_path) as store:
        assert len(store.list_runs()) == 3


OPEN_AND_WRITE = """
import sys
import time
from pathlib import Path
from hyoka.orchestrator.runner.store import StoredRecord, open_store
url, folder, n, start_at = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
time.sleep(max(0.0, start_at - time.time()))  # all four open at once, imports done
with open_store(url, default_path=Path(folder) / "unused.sqlite") as store:
    store.create_run(f"p{n}", {"n": n})
    store.save_records("f", "t", [StoredRecord(f"i{n}", "p", "g", {"item_id": f"i{n}", "score": 1.0})])
"""


def test_concurrent_first_opens_build_one_schema(store_url: str, tmp_path: Path) -> None:
    """Four processes open the same empty database at once: each migration runs once, none fails."""
    start_at = time.time() + 4
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AND_WRITE, store_url, str(tmp_path), str(n), str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for n in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    with _open(store_url, tmp_path) as store:
        assert sorted(r.run_id for r in store.list_runs()) == ["p0", "p1", "p2", "p3"]
        assert sorted(store.load_records("f")) == ["i0", "i1", "i2", "i3"]
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(schema.schema_version)).scalar() == SCHEMA_VERSION


def test_sqlite_default_path_wal_and_plain_paths(tmp_path: Path) -> None:
    with open_store(None, default_path=tmp_path / "run" / "hyoka.sqlite") as store:
        store.create_run("r", {})
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert (tmp_path / "run" / "hyoka.sqlite").is_file()
    with open_store(str(tmp_path / "run" / "hyoka.sqlite"), default_path=tmp_path / "x") as store:
        assert store.get_run("r") is not None
    with open_store(f"sqlite:///{tmp_path}/run/hyoka.sqlite", default_path=tmp_path / "x") as store:
        assert store.get_run("r") is not None
    assert not (tmp_path / "x").exists()


def test_bad_urls_and_unreachable_databases_are_one_clear_error(tmp_path: Path) -> None:
    from hyoka.rpc.server import free_port

    for url, message in (
        ("mysql://u@h/db", "unsupported run store URL mysql://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "unsupported run store URL"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("postgresql://u@127.0.0.1:5432", "name the database"),
        ("http://[::1", "not a URL"),
    ):
        with pytest.raises(StoreError, match=message):
            open_store(url, default_path=tmp_path / "x.sqlite")
    port = free_port()
    with pytest.raises(StoreError) as e:
        open_store(f"postgresql://hyoka:s3cret@127.0.0.1:{port}/runs", default_path=tmp_path / "x.sqlite")
    assert f"postgresql://hyoka:***@127.0.0.1:{port}/runs" in str(e.value) and "s3cret" not in str(e.value)
    assert "\n" not in str(e.value)
    assert redact_url(f"postgresql://hyoka:s3cret@h:{port}/runs") == f"postgresql://hyoka:***@h:{port}/runs"
    assert redact_url("runs/hyoka.sqlite") == "runs/hyoka.sqlite"
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot create its folder"):
        open_store(None, default_path=tmp_path / "file" / "hyoka.sqlite")


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = open_store(None, default_path=tmp_path / "s.sqlite")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get_run("r")


def test_output_keys_follow_what_is_sent() -> None:
    base = Item(0, "i", "ctx", "1", GenerationRequest("ctx", stop=("\n\n",), max_new_tokens=5))
    same_prompt_other_gold = Item(0, "i", "ctx", "2", base.generation, extra={"group": "g"})
    assert prompt_hash(base) == prompt_hash(same_prompt_other_gold)
    assert generation_hash(base) == generation_hash(same_prompt_other_gold)
    other_prompt = Item(0, "i", "ctx2", "1", GenerationRequest("ctx2", stop=("\n\n",), max_new_tokens=5))
    assert prompt_hash(other_prompt) != prompt_hash(base) and generation_hash(other_prompt) == generation_hash(base)
    longer = Item(0, "i", "ctx", "1", GenerationRequest("ctx", stop=("\n\n",), max_new_tokens=6))
    assert prompt_hash(longer) == prompt_hash(base) and generation_hash(longer) != generation_hash(base)
    choices = Item(
        0, "i", "ctx", "0", loglikelihood=(LoglikelihoodRequest("ctx", " a"), LoglikelihoodRequest("ctx", " b"))
    )
    swapped = Item(
        0, "i", "ctx", "0", loglikelihood=(LoglikelihoodRequest("ctx", " b"), LoglikelihoodRequest("ctx", " a"))
    )
    assert prompt_hash(choices) != prompt_hash(swapped) and prompt_hash(choices) != prompt_hash(base)

"""Per-item records as JSON Lines (`<out>/records/<task>.jsonl`): one line per finished item,
appended as it is scored. The run store (`runner/store`) is what a run resumes from; these files
are its export, rewritten from the store when a run starts. `load` reads files written before the
store existed (they are imported into it), and the exports themselves."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class RecordsError(ValueError):
    """A records file cannot be used (unreadable, or written by a run with other settings)."""


class RecordStore:
    """Append-only JSONL records of one task in one run directory."""

    def __init__(self, path: Path, required: tuple[str, ...] = ("item_id", "score")) -> None:
        self.path = path
        self.required = required

    def load(self) -> dict[str, dict[str, Any]]:
        """Finished records by item id. A torn last line (the process died mid-write) is dropped
        from the file; a bad line elsewhere is an error naming the file and line."""
        if not self.path.exists():
            return {}
        done: dict[str, dict[str, Any]] = {}
        good_bytes = 0
        with self.path.open("rb") as f:
            lines = f.readlines()
        for line_no, raw in enumerate(lines, start=1):
            last = line_no == len(lines)
            try:
                record = json.loads(raw.decode("utf-8"))
                if not isinstance(record, dict) or any(k not in record for k in self.required):
                    raise ValueError("not a record")
            except ValueError as e:
                if last:  # interrupted while writing: forget the partial line
                    with self.path.open("r+b") as f:
                        f.truncate(good_bytes)
                    break
                raise RecordsError(f"{self.path}:{line_no}: not a valid record ({e})") from e
            if not raw.endswith(b"\n"):  # complete JSON but no newline: terminate it
                with self.path.open("ab") as f:
                    f.write(b"\n")
            done[str(record["item_id"])] = record
            good_bytes += len(raw) + (0 if raw.endswith(b"\n") else 1)
        return done

    def rewrite(self, records: Iterable[dict[str, Any]]) -> None:
        """Replace the file with `records` (atomically: a reader sees the old or the new file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)

    def append(self, records: Iterable[dict[str, Any]], *, sync: bool = True) -> None:
        """Append `records`; with `sync`, on disk before returning (an export, whose source of
        truth is the run store, need not wait for the disk)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())

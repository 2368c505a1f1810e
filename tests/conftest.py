"""Fixtures for cross-service tests: the real metrics and sandbox servers, started as
subprocesses (`hyoka-metrics serve --port P`, `hyoka-sandbox serve --port P`) on free loopback
ports once per session, and stopped at the end."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hyoka.orchestrator.services.local import METRICS, SANDBOX, LocalService, LocalServiceSpec, start_local_service


def _serve(spec: LocalServiceSpec, log_dir: Path) -> Iterator[LocalService]:
    service = asyncio.run(start_local_service(spec, log_dir=log_dir))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def metrics_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """A real `hyoka-metrics serve` on a free port; `.target` is its host:port."""
    yield from _serve(METRICS, tmp_path_factory.mktemp("metrics-log"))


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """A real `hyoka-sandbox serve` on a free port (full isolation; it refuses to start without)."""
    yield from _serve(SANDBOX, tmp_path_factory.mktemp("sandbox-log"))


# --- a data directory for the whole paper suite ----------------------------------------------
# ../shared/datasets linked in, plus small files in the upstream formats for the benchmarks (or
# few-shot pools) that ../shared does not hold. Scores on them say nothing about a model; they
# let the suite run end to end here.

#: What the fixtures stand in for (the folder or file, relative to the data directory).
SYNTHETIC = (
    "hellaswag",
    "triviaqa",
    "xlsum_ja",
    "squad2/fewshot/train-v2.0.json",
    "jsquad/fewshot/train-v1.1.json",
)


def _link_tree(source: Path, target: Path) -> None:
    """`target` mirrors `source` with a symbolic link per file, so files can be added beside them."""
    for path in source.rglob("*"):
        if path.is_file():
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(path)


def _jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _hellaswag_rows(split: str, n: int) -> list[dict[str, object]]:
    return [
        {
            "ind": i,
            "activity_label": "Removing ice from car",
            "ctx_a": f"Then, the man writes over the snow covering the window of a car number {i}.",
            "ctx_b": "a woman",
            "ctx": f"Then, the man writes over the snow covering the window of a car number {i}. a woman",
            "split": split,
            "split_type": "indomain",
            "label": i % 4,
            "endings": [
                ", the man adds wax to the windshield and cuts it.",
                ", a person board a ski lift, while two men supporting the head of the person.",
                ", the man puts on a christmas coat, knitted with netting.",
                ", the man continues removing the snow on his car.",
            ],
            "source_id": f"activitynet~v_{i}",
        }
        for i in range(n)
    ]


def _triviaqa(path: Path, n: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {
            "question": f"Which city is the capital of country number {i}",
            "question_id": f"tc_{i}",
            "question_source": "http://www.triviacountry.com/",
            "answer": {
                "aliases": [f"City {i}", f"city{i}"],
                "normalized_aliases": [f"city {i}", f"city{i}"],
                "matched_wiki_entity_name": "",
                "normalized_matched_wiki_entity_name": "",
                "normalized_value": f"city {i}",
                "type": "WikipediaEntity",
                "value": f"City {i}",
            },
        }
        for i in range(n)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def _xlsum(path: Path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "url", "title", "summary", "text"])
        writer.writeheader()
        for i in range(n):
            writer.writerow(
                {
                    "id": f"news-{i}",
                    "url": f"https://www.bbc.com/japanese/{i}",
                    "title": f"記事{i}",
                    "summary": f"東京で{i}日、新しい駅が開業した。",
                    "text": f"東京で{i}日、新しい駅が開業した。多くの人が訪れた。駅は都心にある。",
                }
            )


def _squad(path: Path, n: int, *, version: str, impossible: bool) -> None:
    qas = []
    for i in range(n):
        unanswerable = impossible and i % 3 == 2
        qas.append(
            {
                "question": f"What opened in year {2000 + i}?",
                "id": f"q{i:05d}",
                "answers": [] if unanswerable else [{"text": "the station", "answer_start": 0}],
                "is_impossible": unanswerable,
            }
        )
    data = {
        "version": version,
        "data": [{"title": "Station", "paragraphs": [{"qas": qas, "context": "the station opened that year."}]}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def suite_data_dir(shared: Path, target: Path) -> Path:
    """../shared/datasets linked into `target`, with the synthetic files added."""
    _link_tree(shared, target)
    _jsonl(target / "hellaswag/hellaswag_val.jsonl", _hellaswag_rows("val", 8))
    _jsonl(target / "hellaswag/fewshot/hellaswag_train.jsonl", _hellaswag_rows("train", 12))
    _triviaqa(target / "triviaqa/validation.parquet", 8)
    _triviaqa(target / "triviaqa/fewshot/train.parquet", 12)
    _xlsum(target / "xlsum_ja/test.csv", 8)
    _xlsum(target / "xlsum_ja/fewshot/train.csv", 12)
    _squad(target / "squad2/fewshot/train-v2.0.json", 12, version="v2.0", impossible=True)
    # JSQuAD's loader checks the v1.1 train file's size: its shots are positions in it.
    _squad(target / "jsquad/fewshot/train-v1.1.json", 62_859, version="v1.1", impossible=False)
    return target


@pytest.fixture
def paper_suite_data_dir(data_dir: Path, tmp_path: Path) -> Path:
    return suite_data_dir(data_dir, tmp_path / "data")

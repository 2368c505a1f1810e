"""The shipped manifest against the offline copy (../shared/datasets, via the `data_dir` fixture):
it lists every file the loaders read, its hashes are the copy's SHA256SUMS, its layout is the
copy's; every source is pinned to a revision; and the schema rejects malformed entries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hyoka.orchestrator.datasets.manifest import ManifestError, Pin, load_manifest, parse_manifest
from hyoka.orchestrator.datasets.plan import load_registry

# What the loaders read (the task definitions' data_files), for every task of the paper, whether
# or not its definition exists yet; `*` stands for the subjects / tasks of the folder.
LOADER_FILES = (
    "jcommonsenseqa/valid-v1.3.json",
    "jcommonsenseqa/fewshot/train-v1.1.json",
    "jemhopqa/dev.json",
    "jemhopqa/fewshot/train.json",
    "niilc/NIILC-ECQA2015_test.xml",
    "niilc/fewshot/NIILC-ECQA2015_dev.xml",
    "jsquad/valid-v1.3.json",
    "jsquad/fewshot/train-v1.1.json",
    "jmmlu/by_sa/*.csv",
    "mgsm/mgsm_ja.tsv",
    "mgsm/mgsm_en.tsv",
    "mgsm/fewshot/exemplars_ja.jsonl",
    "mgsm/fewshot/exemplars_en.jsonl",
    "xlsum_ja/test.csv",
    "xlsum_ja/fewshot/train.csv",
    "wmt20/eng-jpn/newstest2020.eng",
    "wmt20/eng-jpn/newstest2020.jpn",
    "wmt20/jpn-eng/newstest2020.jpn",
    "wmt20/jpn-eng/newstest2020.eng",
    "jhumaneval/jhuman-eval.jsonl.gz",
    "humaneval/HumanEval.jsonl.gz",
    "openbookqa/*.jsonl",
    "openbookqa/fewshot/train.jsonl",
    "gsm8k/test.jsonl",
    "gsm8k/fewshot/train.jsonl",
    "mmlu/test/*_test.csv",
    "mmlu/dev/*_dev.csv",
    "bbh/*.json",
    "bbh/cot-prompts/*.txt",
    "xwinograd/dataset.tsv",
    "squad2/dev-v2.0.json",
    "squad2/fewshot/train-v2.0.json",
    "hellaswag/hellaswag_val.jsonl",
    "hellaswag/fewshot/hellaswag_train.jsonl",
    "triviaqa/validation.parquet",
    "triviaqa/fewshot/train.parquet",
)
# Not in the offline copy, and no SHA-256 published upstream.
NOT_IN_SHARED = {
    "jsquad/fewshot/train-v1.1.json",
    "xlsum_ja/test.csv",
    "xlsum_ja/fewshot/train.csv",
    "squad2/dev-v2.0.json",
    "squad2/fewshot/train-v2.0.json",
    "hellaswag/hellaswag_val.jsonl",
    "hellaswag/fewshot/hellaswag_train.jsonl",
    "triviaqa/validation.parquet",
    "triviaqa/fewshot/train.parquet",
}


def shared_sums(data_dir: Path) -> dict[str, str]:
    """relpath -> sha256 over every SHA256SUMS of the offline copy."""
    sums: dict[str, str] = {}
    for listing in sorted(data_dir.glob("*/SHA256SUMS")):
        for line in listing.read_text(encoding="utf-8").splitlines():
            digest, name = line.split(maxsplit=1)
            sums[f"{listing.parent.name}/{name.strip()}"] = digest
    return sums


def loader_files(data_dir: Path) -> list[str]:
    """LOADER_FILES with the patterns expanded over the offline copy, plus every registry task's files."""
    files: list[str] = []
    for pattern in LOADER_FILES:
        if "*" in pattern:
            matches = sorted(p.relative_to(data_dir).as_posix() for p in data_dir.glob(pattern))
            assert matches, f"{pattern} matches nothing in {data_dir}"
            files += matches
        else:
            files.append(pattern)
    for task_files in load_registry().data_files.values():
        files += task_files
    return sorted(set(files))


def test_the_manifest_lists_every_file_the_loaders_read(data_dir: Path) -> None:
    manifest = load_manifest()
    missing = [f for f in loader_files(data_dir) if manifest.entry(f) is None]
    assert missing == []


def test_hashes_equal_the_offline_copys_sha256sums(data_dir: Path) -> None:
    manifest = load_manifest()
    sums = shared_sums(data_dir)
    loader = set(loader_files(data_dir))
    for relpath in loader - NOT_IN_SHARED:
        assert relpath in sums, f"{relpath} should be in the offline copy"
    checked = 0
    for entry in manifest.files():
        if entry.relpath in sums:
            assert entry.pin is Pin.SHA256, entry.relpath
            assert entry.sha256 == sums[entry.relpath], entry.relpath
            checked += 1
        else:
            assert entry.relpath in NOT_IN_SHARED or entry.relpath.endswith(("LICENSE.upstream",)), entry.relpath
    assert checked >= 260


def test_files_absent_from_the_offline_copy_are_pinned_where_upstream_allows() -> None:
    manifest = load_manifest()
    pins = {relpath: manifest.entry(relpath).pin for relpath in NOT_IN_SHARED}  # type: ignore[union-attr]
    assert pins == {
        "jsquad/fewshot/train-v1.1.json": Pin.GIT_BLOB,
        "squad2/dev-v2.0.json": Pin.GIT_BLOB,
        "squad2/fewshot/train-v2.0.json": Pin.GIT_BLOB,
        "hellaswag/hellaswag_val.jsonl": Pin.SHA256,
        "hellaswag/fewshot/hellaswag_train.jsonl": Pin.GIT_BLOB,
        "xlsum_ja/test.csv": Pin.UNPINNED,
        "xlsum_ja/fewshot/train.csv": Pin.UNPINNED,
        "triviaqa/validation.parquet": Pin.UNPINNED,
        "triviaqa/fewshot/train.parquet": Pin.UNPINNED,
    }
    hellaswag = manifest.entry("hellaswag/hellaswag_val.jsonl")
    assert hellaswag is not None
    assert hellaswag.sha256 == "0aa3b88843990f3f10a97b9575c94d7b71fb2205240ba04ae4884d9e9c992588"
    assert hellaswag.git_blob == "0f5ee25d72216f12317d5d8a7b92deafa423d81e"
    jsquad = manifest.entry("jsquad/fewshot/train-v1.1.json")
    assert jsquad is not None and jsquad.git_blob == "20ce716ee531e3e23088f5840a3b0751ae803424"


def test_every_url_names_a_fixed_revision() -> None:
    """No branch names: a GitHub raw URL and a Hub URL carry a 40-hex commit."""
    manifest = load_manifest()
    urls = [e.url for e in manifest.files() if e.url] + [u for s in manifest.sources.values() for u in s.urls]
    github = re.compile(r"^https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/\S+$")
    hub = re.compile(r"^https://huggingface\.co/datasets/[\w.-]+/[\w.-]+/resolve/[0-9a-f]{40}/\S+$")
    official = {
        "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v2.0.json",
        "https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v2.0.json",
        "https://people.eecs.berkeley.edu/~hendrycks/data.tar",
    }
    for url in urls:
        assert github.match(url) or hub.match(url) or url in official, url


def test_folders_have_licences_and_the_documented_notes() -> None:
    folders = load_manifest().folders
    assert all(f.licence and f.title and f.files for f in folders.values())
    assert folders["xlsum_ja"].licence == "CC BY-NC-SA 4.0"
    assert any("STEP Corporation" in n for n in folders["jmmlu"].licence_notes)
    assert any("NC-ND" in n for n in folders["jmmlu"].licence_notes)
    assert any("research" in n for n in folders["wmt20"].licence_notes)


def test_mmlu_comes_from_the_release_tar_with_the_layout_of_the_offline_copy() -> None:
    manifest = load_manifest()
    tar = manifest.sources["mmlu-data-tar"]
    assert tar.kind == "tar" and tar.size == 166184960
    assert tar.sha256 == "bec563ba4bac1d6aaf04141cd7d1605d7a5ca833e38f994051e818489592989b"
    entries = [e for e in manifest.folders["mmlu"].files if e.source]
    assert len(entries) == 114
    for e in entries:
        split = e.relpath.split("/")[1]
        assert e.member == f"data/{split}/{Path(e.relpath).name}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[folders.x.files]]\nrelpath = "x/../y"\nurl = "http://h/y"', "plain relative path"),
        ('[[folders.x.files]]\nrelpath = "x/a"\nurl = "http://h/a"\nsha256 = "abc"', "64 lowercase hex"),
        ('[[folders.x.files]]\nrelpath = "x/a"', "exactly one of url and source"),
        ('[[folders.x.files]]\nrelpath = "y/a"\nurl = "http://h/a"', "lies outside"),
        ('[[folders.x.files]]\nrelpath = "x/a"\nsource = "nope"\nmember = "a"', "unknown source"),
    ],
)
def test_malformed_entries_are_rejected(body: str, message: str) -> None:
    text = f'schema = 1\n[folders.x]\ntitle = "X"\nlicence = "MIT"\n{body}\n'
    with pytest.raises(ManifestError, match=message):
        parse_manifest(text)

"""The JP lm-eval fork's tasks (MGSM ja, WMT20 en-ja / ja-en, XL-Sum ja): prompts, shots, request
settings and golds as the fork (Stability-AI 9b42d41, in swallow-evaluation v202407) builds them.

Expected prompts are built here from the raw data files and the fork's strings (FEWSHOT.md C), not
with the module's helpers; shot positions are FEWSHOT.md C.5's check values.
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from rouge_score import rouge_scorer, scoring

from hyoka import metrics
from hyoka.orchestrator.backends.tokenizers import HFTokenizer, load_tokenizer
from hyoka.orchestrator.tasks import TaskDataError, get_task
from hyoka.orchestrator.tasks.builders import BuildContext, TokenizerRequiredError
from hyoka.orchestrator.tasks.items import Item
from hyoka.orchestrator.tasks.task import TOKEN_SEPARATOR, Task

MGSM_TEXT = "問題：{q}\nステップごとの答え："
XLSUM_DESCRIPTION = "与えられたニュース記事を要約してください。\n\n"


class CharTokenizer:
    """One token per character (a tokenizer whose counts are easy to follow by hand)."""

    def __init__(self, max_length: int = 10**6, *, per_char: int = 1) -> None:
        self.name = "chars"
        self.max_length = max_length
        self._per_char = per_char

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids[:: self._per_char])

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text for _ in range(self._per_char)]

    def tokenize(self, text: str) -> list[str]:
        return list(text)


@pytest.fixture(scope="module")
def smollm2() -> HFTokenizer:
    return load_tokenizer("smollm2")


def _items(name: str, data_dir: Path, limit: int | None, tokenizer: object | None = None) -> list[Item]:
    task = get_task(name)
    context = BuildContext(tokenizer) if tokenizer is not None else BuildContext()  # type: ignore[arg-type]
    return task.items(task.load(data_dir), limit, context)


# --- MGSM ---------------------------------------------------------------------------------------


def _mgsm_raw(data_dir: Path) -> tuple[list[list[str]], list[dict[str, object]]]:
    with (data_dir / "mgsm/mgsm_ja.tsv").open(encoding="utf-8", newline="") as f:
        test = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    lines = (data_dir / "mgsm/fewshot/exemplars_ja.jsonl").read_text(encoding="utf-8").splitlines()
    exemplars = [json.loads(line) for line in lines]
    return test, exemplars


def _mgsm_shot(exemplar: dict[str, object]) -> str:
    q = str(exemplar["question"]).replace("問題：", "")
    return MGSM_TEXT.format(q=q) + str(exemplar["answer"]).replace("ステップごとの答え：", "")


def test_mgsm_first_items_are_the_fork_prompts(data_dir: Path, smollm2: HFTokenizer) -> None:
    test, exemplars = _mgsm_raw(data_dir)
    items = _items("mgsm_ja", data_dir, 3, smollm2)
    # FEWSHOT.md C.5: positions 44, 98, 184 with exemplars 7,2,1,6 / 7,3,4,6 / 8,7,6,1.
    for item, (position, shots) in zip(
        items, [(44, (7, 2, 1, 6)), (98, (7, 3, 4, 6)), (184, (8, 7, 6, 1))], strict=True
    ):
        expected = (
            "\n\n".join(_mgsm_shot(exemplars[n - 1]) for n in shots) + "\n\n" + MGSM_TEXT.format(q=test[position][0])
        )
        assert item.prompt == expected
        assert item.id == f"mgsm_ja/{position}"
        assert item.gold == test[position][1]
        assert item.extra["fewshot"] == [f"mgsm_ja/exemplar/{n}" for n in shots]
    first = items[0]
    assert first.index == 0 and first.gold == "20"
    assert first.prompt.startswith(
        "問題：ジェイソンは20個の飴を持っています。彼はデニーに飴をいくつかあげました。今、ジェイソンには12個の飴があります。"
        "ジェイソンはデニーにいくつ飴をあげましたか？\nステップごとの答え：ジェイソンには最初20個の飴がありましたが、"
    )
    assert first.prompt.endswith(
        "\n\n問題：チャーリーは蜜蝋を売りたいです。蜜蝋1ポンドあたり、彼は10本のテイパー型キャンドルを作れます。"
        "備品の蜜蝋と芯1ポンドあたり、$10.00のコストがかかります。彼は各キャンドルをそれぞれ$2.00で売るとしたら、"
        "20本のキャンドルを作って売った場合の純利益はいくらになりますか？\nステップごとの答え："
    )
    assert first.prompt.count("問題：") == 5 and "ステップごとの答え：ステップごとの答え：" not in first.prompt
    gen = first.generation
    assert gen is not None and gen.greedy and gen.max_new_tokens == 256 and gen.stop == ("\n",)
    assert gen.max_total_tokens is None and gen.n == 1


def test_mgsm_answer_numbers_lose_their_thousands_commas(data_dir: Path) -> None:
    data = get_task("mgsm_ja").load(data_dir)
    assert len(data.test) == 250 and len(data.fewshot_pool) == 8
    assert {d["answer_number"] for d in data.test if d["id"] in ("mgsm_ja/0",)} == {18}
    assert 2125 in {d["answer_number"] for d in data.test}  # "2,125" in the TSV


def _simulate_mgsm_shots(data_dir: Path, budget: int, per_char: int, limit: int) -> list[int]:
    """The fork's loop, transcribed from FEWSHOT.md C.5: shuffle, then per question draw k
    exemplars and redraw with k-1 while the prompt has more than `budget` tokens."""
    test, exemplars = _mgsm_raw(data_dir)
    rnd = random.Random(42)
    order = list(range(len(test)))
    rnd.shuffle(order)
    kept = []
    for position in order[:limit]:
        for k in (4, 3, 2, 1, 0):
            shots = rnd.sample(exemplars, k) if k else []
            prompt = "".join(_mgsm_shot(s) + "\n\n" for s in shots) + MGSM_TEXT.format(q=test[position][0])
            if len(prompt) * per_char <= budget:
                kept.append(k)
                break
    return kept


def test_mgsm_redraws_with_fewer_shots_when_the_prompt_is_too_long(data_dir: Path) -> None:
    # 4 tokens per character; the model's 10**6 positions count as 4096 (swallow-evaluation's cap),
    # so prompts get at most 4096 - 256 tokens.
    tokenizer = CharTokenizer(10**6, per_char=4)
    items = _items("mgsm_ja", data_dir, 40, tokenizer)
    expected = _simulate_mgsm_shots(data_dir, 4096 - 256, 4, 40)
    assert [len(i.extra["fewshot"]) for i in items] == expected
    assert min(expected) < 4 and max(expected) == 4  # the case is exercised
    assert all(len(tokenizer.encode(i.prompt)) <= 3840 for i in items)
    # a model shorter than the cap keeps its own length
    small = _items("mgsm_ja", data_dir, 20, CharTokenizer(1200))
    assert [len(i.extra["fewshot"]) for i in small] == _simulate_mgsm_shots(data_dir, 1200 - 256, 1, 20)


def test_mgsm_needs_the_tokenizer_and_fails_when_no_prompt_fits(data_dir: Path) -> None:
    with pytest.raises(TokenizerRequiredError, match="mgsm_ja"):
        _items("mgsm_ja", data_dir, 1)
    with pytest.raises(TaskDataError, match="mgsm_ja/44: even the 0-shot prompt is longer than 44 tokens"):
        _items("mgsm_ja", data_dir, 1, CharTokenizer(300))


def test_mgsm_loader_names_file_and_line(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "mgsm/fewshot").mkdir(parents=True)
    exemplars = (data_dir / "mgsm/fewshot/exemplars_ja.jsonl").read_text(encoding="utf-8")
    (tmp_path / "mgsm/fewshot/exemplars_ja.jsonl").write_text(exemplars, encoding="utf-8")
    tsv = tmp_path / "mgsm/mgsm_ja.tsv"
    task = get_task("mgsm_ja")
    tsv.write_text("問1\t3\n問2\tthree\n", encoding="utf-8")
    with pytest.raises(TaskDataError, match=re.escape(f"{tsv}:2: answer_number 'three' is not an integer")):
        task.load(tmp_path)
    tsv.write_text("問1\t3\n問2\t4\t5\n", encoding="utf-8")
    with pytest.raises(TaskDataError, match=re.escape(f"{tsv}:2: expected 2 tab-separated fields, found 3")):
        task.load(tmp_path)
    tsv.write_text("問1\t3\n", encoding="utf-8")
    (tmp_path / "mgsm/fewshot/exemplars_ja.jsonl").write_text('{"exemplar": 1, "question": "q"}\n', encoding="utf-8")
    with pytest.raises(TaskDataError, match=r"exemplars_ja.jsonl:1: missing field\(s\) answer, answer_number"):
        task.load(tmp_path)


def test_mgsm_scores_as_the_fork_extracts_the_last_number() -> None:
    # MGSM._extract_answer: last match of (\-?[0-9\.\,]+), "." stripped, "," removed, int == answer_number.
    cases = [
        ("ロジャーは5個持っていた。5+6=11。答えは11です。", "11", 1.0),
        ("合計は2,125ドル。答えは2,125です。", "2125", 1.0),
        ("The answer is 18.", "18", 1.0),
        ("答えは18.0です", "18", 1.0),
        ("答えは18.5です", "18", 0.0),
        ("答えは20です。合計で18", "20", 0.0),
        ("わかりません", "0", 0.0),
    ]
    result = metrics.score("exact_match_mgsm", [metrics.Item(p, [g]) for p, g, _ in cases])
    assert result.item_scores == [s for _, _, s in cases]


# --- WMT20 --------------------------------------------------------------------------------------


def _segments(path: Path) -> list[str]:
    # sacrebleu 1.5.0's cleaning of each .sgm segment, then the task's rstrip (wmt20/SOURCE.md)
    return [re.sub(r"\s+", " ", line.strip()).rstrip() for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(
    ("task", "folder", "src_ext", "ref_ext", "source", "target", "first"),
    [
        ("wmt20_en_ja", "eng-jpn", "eng", "jpn", "English", "Japanese", 776),
        ("wmt20_ja_en", "jpn-eng", "jpn", "eng", "Japanese", "English", 869),
    ],
)
def test_wmt20_first_item_is_the_fork_prompt(
    data_dir: Path, task: str, folder: str, src_ext: str, ref_ext: str, source: str, target: str, first: int
) -> None:
    src = _segments(data_dir / f"wmt20/{folder}/newstest2020.{src_ext}")
    ref = _segments(data_dir / f"wmt20/{folder}/newstest2020.{ref_ext}")
    (item,) = _items(task, data_dir, 1)
    shots = (418, 461, 705, 608)  # FEWSHOT.md C.5 (the fifth draw, 481, is dropped)
    expected = "".join(f"{source} phrase: {src[p]}\n{target} phrase: {ref[p]}\n\n" for p in shots)
    expected += f"{source} phrase: {src[first]}\n{target} phrase:"
    assert item.prompt == expected
    assert item.id == f"{task}/{first}" and item.gold == ref[first]
    assert item.extra["fewshot"] == [f"{task}/{p}" for p in shots]
    gen = item.generation
    assert gen is not None and gen.greedy and gen.max_new_tokens == 256 and gen.stop == ("\n",)


def test_wmt20_en_ja_first_prompt_literal(data_dir: Path) -> None:
    (item,) = _items("wmt20_en_ja", data_dir, 1)
    assert item.prompt.startswith(
        "English phrase: Ford Motor and Volkswagen have said they will spend billions of dollars to jointly develop "
        "electric and self-driving vehicles.\nJapanese phrase: フォード・モーターとフォルクスワーゲンは、"
        "電気自動車と自動運転車の共同開発に数十億ドルを投資する予定だと発表している。\n\nEnglish phrase: "
    )
    assert item.prompt.endswith("\nJapanese phrase:") and item.prompt.count("\n\n") == 4
    assert item.gold == "金曜日にはスコットランド全土で、何十ものコーヒーモーニング募金イベントが開催されている。"


def test_wmt20_references_get_sacrebleus_whitespace_cleaning(data_dir: Path) -> None:
    data = get_task("wmt20_en_ja").load(data_dir)
    raw = (data_dir / "wmt20/eng-jpn/newstest2020.jpn").read_text(encoding="utf-8").splitlines()
    assert "\u3000" in raw[20] and "\u3000" not in data.test[20]["ref"]
    assert data.test[20]["ref"] == raw[20].replace("\u3000", " ")
    assert sum("\u3000" in line for line in raw) == 19
    assert not any("\u3000" in d["ref"] for d in data.test)
    assert len(data.test) == 1000 and data.fewshot_pool is data.test
    assert len(get_task("wmt20_ja_en").load(data_dir).test) == 993


def _write_wmt(root: Path, sources: list[str], references: list[str]) -> None:
    folder = root / "wmt20/eng-jpn"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "newstest2020.eng").write_text("".join(s + "\n" for s in sources), encoding="utf-8")
    (folder / "newstest2020.jpn").write_text("".join(r + "\n" for r in references), encoding="utf-8")


def test_wmt20_drops_the_current_segment_from_its_draw(tmp_path: Path) -> None:
    sources = [f"s{n}  " for n in range(6)]  # trailing spaces are stripped
    references = [f"r{n}" for n in range(6)]
    _write_wmt(tmp_path, sources, references)
    items = _items("wmt20_en_ja", tmp_path, None)
    rnd = random.Random(42)
    order = list(range(6))
    rnd.shuffle(order)
    dropped = 0
    for item, position in zip(items, order, strict=True):
        drawn = rnd.sample(range(6), 5)
        dropped += position in drawn
        shots = [p for p in drawn if p != position][:4]
        assert item.prompt == "".join(f"English phrase: s{p}\nJapanese phrase: r{p}\n\n" for p in shots) + (
            f"English phrase: s{position}\nJapanese phrase:"
        )
    assert dropped >= 1


def test_wmt20_loader_checks_the_files_pair_up(tmp_path: Path) -> None:
    _write_wmt(tmp_path, ["a", "b"], ["x"])
    with pytest.raises(TaskDataError, match=r"newstest2020.eng: 2 segments, but .*newstest2020.jpn has 1"):
        get_task("wmt20_en_ja").load(tmp_path)


def test_wmt20_bleu_is_the_forks_corpus_bleu(data_dir: Path) -> None:
    import nagisa
    import sacrebleu

    def ja_split(text: str) -> str:  # the fork's translation.ja_split
        return " ".join(nagisa.tagging(text.strip()).words)

    refs = [i.gold for i in _items("wmt20_en_ja", data_dir, 3)]
    preds = [refs[0], refs[1][: len(refs[1]) // 2], "今日は晴れです。 "]
    expected = sacrebleu.corpus_bleu([ja_split(p) for p in preds], [[ja_split(r) for r in refs]]).score / 100
    task = get_task("wmt20_en_ja")
    result = metrics.score(
        "bleu", [metrics.Item(p, [r]) for p, r in zip(preds, refs, strict=True)], task.metric.options
    )
    assert result.corpus_score == pytest.approx(expected, abs=1e-9)
    assert 0 < expected < 1

    refs = [i.gold for i in _items("wmt20_ja_en", data_dir, 3)]
    preds = [" " + refs[0], refs[1].lower(), "It is sunny today."]
    expected = sacrebleu.corpus_bleu(preds, [refs]).score / 100
    task = get_task("wmt20_ja_en")
    result = metrics.score(
        "bleu", [metrics.Item(p, [r]) for p, r in zip(preds, refs, strict=True)], task.metric.options
    )
    assert result.corpus_score == pytest.approx(expected, abs=1e-9)
    assert 0 < expected < 1


# --- XL-Sum -------------------------------------------------------------------------------------

XLSUM_HEADER = ["id", "url", "title", "summary", "text"]  # csebuetnlp/xlsum's fields


def _write_xlsum(root: Path, test: list[tuple[str, str]], train: list[tuple[str, str]]) -> None:
    (root / "xlsum_ja/fewshot").mkdir(parents=True, exist_ok=True)
    for path, rows, prefix in (
        (root / "xlsum_ja/test.csv", test, "test"),
        (root / "xlsum_ja/fewshot/train.csv", train, "train"),
    ):
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(XLSUM_HEADER)
            for n, (text, summary) in enumerate(rows):
                writer.writerow([f"{prefix}-{n}", f"https://www.bbc.com/japanese/{n}", f"見出し{n}", summary, text])


@pytest.fixture
def xlsum_dir(tmp_path: Path) -> Iterator[Path]:
    test = [(f'記事{n}の一文目。記事{n}の二文目、"引用"あり。\n改行も。', f"要約{n}") for n in range(5)]
    train = [(f"訓練{n}の本文。", f"訓練要約{n}") for n in range(3)]
    _write_xlsum(tmp_path, test, train)
    yield tmp_path


def test_xlsum_first_items_are_the_fork_prompts(xlsum_dir: Path) -> None:
    items = _items("xlsum_ja", xlsum_dir, None, CharTokenizer())
    # random.Random(42) shuffles 5 articles to 3, 1, 2, 4, 0; sample(train, 1) then gives 0, 0, 0, 2, 0.
    first = items[0]
    assert first.prompt == (
        "与えられたニュース記事を要約してください。\n\n"
        "ニュース記事:訓練0の本文。\n要約:訓練要約0\n\n"
        'ニュース記事:記事3の一文目。記事3の二文目、"引用"あり。\n改行も。\n要約:'
    )
    assert first.id == "xlsum_ja/test-3" and first.gold == "要約3"
    assert [i.id for i in items] == [f"xlsum_ja/test-{n}" for n in (3, 1, 2, 4, 0)]
    assert [i.extra["fewshot"] for i in items] == [[f"xlsum_ja/train-{n}"] for n in (0, 0, 0, 2, 0)]
    gen = first.generation
    assert gen is not None and gen.greedy and gen.stop == ("\n",)
    # hf-causal-experimental generates up to max_gen_toks; the request's size (gold tokens + 10)
    # is recorded and sized the context.
    assert gen.max_new_tokens == 256
    assert first.extra["request_max_tokens"] == len("要約3") + 10
    assert first.extra["rouge_tokenizer"] == "chars"


def test_xlsum_can_send_the_requests_size(xlsum_dir: Path) -> None:
    task = get_task("xlsum_ja")
    options = {**task.spec.prompt.options, "generate_request_size": True}
    spec = task.spec.model_copy(update={"prompt": task.spec.prompt.model_copy(update={"options": options})})
    (item,) = Task(spec).items(task.load(xlsum_dir), 1, BuildContext(CharTokenizer()))
    assert item.generation is not None and item.generation.max_new_tokens == 13


def test_xlsum_cuts_articles_sentence_by_sentence(tmp_path: Path) -> None:
    _write_xlsum(tmp_path, [("一二三。四五六。七八九。", "ab")], [("甲。乙。丙。", "要")])
    # The request's size is 2 + 10 tokens; with 38 positions the prompt may have 26, so each of the
    # two articles gets 13: "ニュース記事:甲。乙。丙" (12) fits whole, "ニュース記事:一二三。四五六" (14) does not.
    (item,) = _items("xlsum_ja", tmp_path, None, CharTokenizer(38))
    assert item.prompt == (
        "与えられたニュース記事を要約してください。\n\nニュース記事:甲。乙。丙。\n要約:要\n\nニュース記事:一二三。\n要約:"
    )
    # 14 positions: 1 token per article; a first sentence alone too long is cut by decoding its first tokens
    (item,) = _items("xlsum_ja", tmp_path, None, CharTokenizer(14))
    assert item.prompt == "与えられたニュース記事を要約してください。\n\nニ\n要約:要\n\nニ\n要約:"
    # prompts that fit are left alone
    (item,) = _items("xlsum_ja", tmp_path, None, CharTokenizer(1000))
    assert item.prompt.endswith("ニュース記事:一二三。四五六。七八九。\n要約:")


def test_xlsum_with_a_real_tokenizer_counts_without_special_tokens(xlsum_dir: Path, smollm2: HFTokenizer) -> None:
    (item,) = _items("xlsum_ja", xlsum_dir, 1, smollm2)
    assert item.extra["request_max_tokens"] == len(smollm2.encode("要約3")) + 10
    assert item.extra["rouge_tokenizer"] == "smollm2"


def test_xlsum_fails_up_front_without_its_data(tmp_path: Path) -> None:
    task = get_task("xlsum_ja")
    with pytest.raises(TaskDataError) as e:
        task.check_data(tmp_path)
    assert str(e.value).startswith(
        f"task xlsum_ja: {tmp_path / 'xlsum_ja/test.csv'} not found; run `hyoka data pull xlsum_ja`"
    )


def test_xlsum_loader_names_file_and_line(tmp_path: Path) -> None:
    _write_xlsum(tmp_path, [("本文。", "要約")], [("本文。", "要約")])
    test_csv = tmp_path / "xlsum_ja/test.csv"
    test_csv.write_text("id,title,text\nx,t,本文\n", encoding="utf-8")
    with pytest.raises(TaskDataError, match=re.escape(f"{test_csv}:1: header lacks column(s) summary")):
        get_task("xlsum_ja").load(tmp_path)
    test_csv.write_text('id,summary,text\nx,s,t\ny,"multi\nline",t,extra\n', encoding="utf-8")
    with pytest.raises(TaskDataError, match=re.escape(f"{test_csv}:4: 4 fields, the header has 3")):
        get_task("xlsum_ja").load(tmp_path)


def test_xlsum_rouge2_is_the_forks_score_with_the_model_tokenizer(smollm2: HFTokenizer) -> None:
    # lm_eval/utils.py rouge2_mecab(refs, preds, tokenizer=<model tokenizer>) after simple_evaluate's
    # np.random.seed(1234); the orchestrator sends the model tokenizer's tokens, pretokenized.
    refs = [
        "英国の首相は新しい経済対策を発表した。",
        "東京で大雨、交通機関に乱れ",
        "日本代表がワールドカップで勝利した",
        "研究者が新種の恐竜を発見",
    ]
    preds = [
        "英国の首相は経済対策を発表した。",
        "大雨で東京の交通が乱れた",
        "",
        "研究者たちが新しい種類の恐竜を発見した",
    ]
    scorer = rouge_scorer.RougeScorer(["rouge2"], tokenizer=smollm2)
    aggregator = scoring.BootstrapAggregator()
    for ref, pred in zip(refs, preds, strict=True):
        aggregator.add_scores(scorer.score(ref, pred))
    np.random.seed(1234)
    expected = aggregator.aggregate()["rouge2"].mid.fmeasure

    task = get_task("xlsum_ja")
    options = {**task.metric.options, "tokenizer": "pretokenized"}  # what Task adds for model_tokenizer

    def tokens(text: str) -> str:
        return TOKEN_SEPARATOR.join(smollm2.tokenize(text))

    items = [metrics.Item(tokens(p), [tokens(r)]) for p, r in zip(preds, refs, strict=True)]
    result = metrics.score("rouge2", items, options)
    assert result.corpus_score == pytest.approx(expected, abs=1e-9)
    assert 0 < expected < 1
    assert "tok:pretokenized" in result.signature.text and "agg:bootstrap_mid" in result.signature.text


# --- definitions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mgsm_ja", "wmt20_en_ja", "wmt20_ja_en", "xlsum_ja"])
def test_definitions_name_their_published_column(name: str) -> None:
    spec = get_task(name).spec
    assert spec.benchmark_column == name
    assert spec.fewshot.procedure == "jp_fork_random" and spec.fewshot.seed == 42
    assert spec.needs_tokenizer == (name in ("mgsm_ja", "xlsum_ja"))

"""llm-jp-eval 1.3.0 JEMHopQA, JSQuAD and JMMLU (swallow-evaluation v202407, FEWSHOT.md A).

Expected prompts are written out here from the harness's description (FEWSHOT.md A.4: header +
instruction, each shot as `\\n\\n### 入力:\\n{input}\\n\\n### 応答:\\n{output}`, then the open turn),
with the texts copied from the data files, not produced by the code under test.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from hyoka.metrics import Item as MetricItem
from hyoka.metrics import score
from hyoka.orchestrator.tasks import TaskDataError, get_task
from hyoka.orchestrator.tasks.extraction import TEXT_RULES
from hyoka.orchestrator.tasks.families.llm_jp_eval import JMMLU_SUBJECTS, jmmlu_rows
from hyoka.orchestrator.tasks.fewshot import llm_jp_eval_shots
from hyoka.orchestrator.tasks.items import Item
from hyoka.orchestrator.tasks.loaders import LOADERS

HEADER = (
    "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。"
    "\n\n### 指示:\n"
)
JEMHOPQA_INSTRUCTION = (
    "質問を入力とし、回答を出力してください。回答の他には何も含めないことを厳守してください。"
    "回答が'はい'と'いいえ'で答えることができる場合、'YES'と'NO'で答えてください。"
)
JSQUAD_INSTRUCTION = (
    "質問に対する回答を文章から一言で抽出してください。回答は名詞で答えてください。"
    " それ以外には何も含めないことを厳守してください。"
)
JMMLU_INSTRUCTION = (
    "与えられた質問と選択肢から、最も適切な回答を選択してください。"
    "なお、回答には選択肢のアルファベット（例：A）のみを含め、他には何も含めないことを厳守してください。"
)


def turn(text: str, answer: str = "") -> str:
    return f"\n\n### 入力:\n{text}\n\n### 応答:\n{answer}"


def check_greedy(item: Item, max_new_tokens: int) -> None:
    gen = item.generation
    assert gen is not None
    assert gen.context == item.prompt
    assert (gen.max_new_tokens, gen.stop, gen.temperature, gen.n, gen.seed) == (max_new_tokens, ("\n\n",), 0.0, 1, None)
    assert gen.greedy
    assert item.loglikelihood == () and item.golds == ()


# --- JEMHopQA ----------------------------------------------------------------------------------

JEMHOPQA_SHOTS = turn(
    "質問：映画『ダイ・ハード』と『デッドプール2』のうち、公開年が早いほうはどっち？", "ダイ・ハード"
) + (
    turn("質問：東海旅客鉄道と北海道旅客鉄道はどちらも陸運業ですか？", "YES")
    + turn("質問：各務原市と飯塚市、岐阜県にあるのは飯塚市ですか？", "NO")
    + turn("質問：高松自動車道の坂出支線の起点ICのもう一つの所属路線は？", "瀬戸中央自動車道")
)


def test_jemhopqa_sizes_and_shots(data_dir: Path) -> None:
    data = LOADERS["jemhopqa"](data_dir)
    assert (len(data.test), len(data.fewshot_pool)) == (120, 1059)
    # FEWSHOT.md A.7: train 953, dev 106; the shots by qid, in prompt order.
    assert len(llm_jp_eval_shots(data.fewshot_pool, 10_000)) == 953
    assert [(d["id"], d["answer"]) for d in llm_jp_eval_shots(data.fewshot_pool, 4)] == [
        ("9a7a952bcbf68adc23e762e78fdc21f0", "ダイ・ハード"),
        ("7806b63658bd7155f82b289ce00f9455", "YES"),
        ("af6d1e98543b67349aa99716e529df91", "NO"),
        ("9beb3c0886b835abb0abbe5c3589dcc5", "瀬戸中央自動車道"),
    ]


def test_jemhopqa_first_prompts(data_dir: Path) -> None:
    task = get_task("jemhopqa")
    assert task.spec.data_files == ("jemhopqa/dev.json", "jemhopqa/fewshot/train.json")
    first, second = task.items(task.load(data_dir), limit=2)
    assert first.prompt == HEADER + JEMHOPQA_INSTRUCTION + JEMHOPQA_SHOTS + turn(
        "質問：『ダンガンロンパ 希望の学園と絶望の高校生』と『ファイナルファンタジーXIII』、"
        "発売日が早いのはどちらでしょう？"
    )
    assert (first.id, first.gold, first.index) == ("2138f0638f363e75593d09df560db76c", "ファイナルファンタジーXIII", 0)
    assert second.prompt == HEADER + JEMHOPQA_INSTRUCTION + JEMHOPQA_SHOTS + turn(
        "質問：奥州市と酒田市はどちらも東北地方の都市ですか？"
    )
    assert (second.id, second.gold) == ("a6c300397ad4c16dd02702a32bf6ebd6", "YES")
    for item in (first, second):
        check_greedy(item, 15)


def test_jemhopqa_all_items_in_file_order(data_dir: Path) -> None:
    task = get_task("jemhopqa")
    items = task.items(task.load(data_dir))
    raw = json.loads((data_dir / "jemhopqa/dev.json").read_text(encoding="utf-8"))
    assert [i.id for i in items] == [r["qid"] for r in raw]
    assert all(i.prompt.endswith(turn("質問：" + r["question"])) for i, r in zip(items, raw, strict=True))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"qid": "x"}', r"dev\.json: expected a JSON array of questions, got dict"),
        (
            '[{"qid": "a", "question": "q", "answer": "x"}, {"qid": "b", "question": "q"}]',
            r"dev\.json: \[1\]: missing field answer",
        ),
        ('[{"qid": "a", "question": "q", "answer": 3}]', r"dev\.json: \[0\]\.answer: expected str, got int"),
        ('[["a", "q", "x"]]', r"dev\.json: \[0\]: expected a JSON object, got list"),
        ('[{"qid": "a",\n "question": }]', r"dev\.json:2: not valid JSON"),
    ],
)
def test_jemhopqa_loader_errors_name_file_and_record(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "jemhopqa/fewshot").mkdir(parents=True)
    (tmp_path / "jemhopqa/dev.json").write_text(content, encoding="utf-8")
    (tmp_path / "jemhopqa/fewshot/train.json").write_text("[]", encoding="utf-8")
    with pytest.raises(TaskDataError, match=message):
        LOADERS["jemhopqa"](tmp_path)


# --- JSQuAD ------------------------------------------------------------------------------------

JSQUAD_V11_TRAIN = 62_859
JSQUAD_SHOT_POSITIONS = (42740, 29433, 54061, 58804)  # FEWSHOT.md A.7
QAS_PER_PARAGRAPH = 3
PARAGRAPHS_PER_ARTICLE = 50


def synthetic_context(position: int) -> str:
    paragraph = position // QAS_PER_PARAGRAPH
    article = paragraph // PARAGRAPHS_PER_ARTICLE
    return f"記事{article} [SEP] 段落{article}-{paragraph % PARAGRAPHS_PER_ARTICLE}"


def write_jsquad_train(path: Path, n: int = JSQUAD_V11_TRAIN, texts: dict[int, tuple[str, str]] | None = None) -> None:
    """A train file in JGLUE's v1.1 layout with `n` questions: question i is `問{i}？` with the
    answers `答{i}` and `別解{i}` (or `texts[i]` = (question, first answer))."""
    texts = texts or {}
    articles: list[dict[str, object]] = []
    for start in range(0, n, QAS_PER_PARAGRAPH):
        if start % (QAS_PER_PARAGRAPH * PARAGRAPHS_PER_ARTICLE) == 0:
            articles.append({"title": f"記事{len(articles)}", "paragraphs": []})
        qas = []
        for i in range(start, min(n, start + QAS_PER_PARAGRAPH)):
            question, answer = texts.get(i, (f"問{i}？", f"答{i}"))
            qas.append(
                {
                    "question": question,
                    "id": f"s{i}",
                    "answers": [{"text": answer, "answer_start": 0}, {"text": f"別解{i}", "answer_start": 0}],
                    "is_impossible": False,
                }
            )
        paragraphs = articles[-1]["paragraphs"]
        assert isinstance(paragraphs, list)
        paragraphs.append({"qas": qas, "context": synthetic_context(start)})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"data": articles}, ensure_ascii=False), encoding="utf-8")


def jsquad_dir(tmp_path: Path, data_dir: Path) -> Path:
    """A data directory with the shared JSQuAD valid file (linked, not copied) and no train file."""
    (tmp_path / "jsquad").mkdir()
    (tmp_path / "jsquad/valid-v1.3.json").symlink_to(data_dir / "jsquad/valid-v1.3.json")
    return tmp_path


@pytest.fixture(scope="module")
def jsquad_root(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A data directory with the shared JSQuAD valid file and a synthetic v1.1-size train file."""
    root = jsquad_dir(tmp_path_factory.mktemp("jsquad"), data_dir)
    write_jsquad_train(root / "jsquad/fewshot/train-v1.1.json")
    return root


def synthetic_shot(position: int) -> str:
    return turn(f"文章：{synthetic_context(position)}\n質問：問{position}？", f"答{position}")


def test_jsquad_shots_are_the_fewshot_md_positions(jsquad_root: Path) -> None:
    data = LOADERS["jsquad"](jsquad_root)
    assert (len(data.test), len(data.fewshot_pool)) == (4442, JSQUAD_V11_TRAIN)
    assert [d["id"] for d in data.fewshot_pool[:4]] == ["s0", "s1", "s2", "s3"]  # flattened in file order
    assert data.fewshot_pool[4]["context"] == "記事0 [SEP] 段落0-1"
    shots = llm_jp_eval_shots(data.fewshot_pool, 4)
    assert [d["id"] for d in shots] == [f"s{p}" for p in JSQUAD_SHOT_POSITIONS]
    assert len(llm_jp_eval_shots(data.fewshot_pool, 100_000)) == 56_573  # train 56,573, dev 6,286


def test_jsquad_first_prompts(jsquad_root: Path) -> None:
    task = get_task("jsquad")
    first, second = task.items(task.load(jsquad_root), limit=2)
    shots = "".join(synthetic_shot(p) for p in JSQUAD_SHOT_POSITIONS)
    context = (
        "梅雨 [SEP] 梅雨（つゆ、ばいう）は、北海道と小笠原諸島を除く日本、朝鮮半島南部、中国の南部から"
        "長江流域にかけての沿海部、および台湾など、東アジアの広範囲においてみられる特有の気象現象で、"
        "5月から7月にかけて来る曇りや雨の多い期間のこと。雨季の一種である。"
    )
    assert first.prompt == HEADER + JSQUAD_INSTRUCTION + shots + turn(
        f"文章：{context}\n質問：日本で梅雨がないのは北海道とどこか。"
    )
    assert second.prompt == HEADER + JSQUAD_INSTRUCTION + shots + turn(f"文章：{context}\n質問：梅雨とは何季の一種か?")
    # The first of the three answers only (小笠原諸島 / 小笠原諸島を除く日本 / 小笠原諸島).
    assert (first.id, first.gold, first.references) == ("a10336p0q0", "小笠原諸島", ("小笠原諸島",))
    assert (second.id, second.gold) == ("a10336p0q1", "雨季")
    for item in (first, second):
        check_greedy(item, 25)


def test_jsquad_without_its_train_file_fails_with_one_clear_line(tmp_path: Path, data_dir: Path) -> None:
    root = jsquad_dir(tmp_path, data_dir)
    task = get_task("jsquad")
    with pytest.raises(TaskDataError, match=r"^task jsquad: .*jsquad/fewshot/train-v1\.1\.json not found; run `hyoka"):
        task.check_data(root)
    with pytest.raises(TaskDataError) as caught:
        LOADERS["jsquad"](root)
    message = str(caught.value)
    assert "\n" not in message
    assert "train-v1.1.json: file not found; JSQuAD's shots come from JGLUE's v1.1 train file" in message
    assert "20ce716ee531e3e23088f5840a3b0751ae803424" in message and "62,859 questions" in message


def test_jsquad_rejects_another_train_version(tmp_path: Path, data_dir: Path) -> None:
    root = jsquad_dir(tmp_path, data_dir)
    write_jsquad_train(root / "jsquad/fewshot/train-v1.1.json", n=62_697)  # the v1.3 train file's size
    with pytest.raises(TaskDataError, match=r"train-v1\.1\.json: 62,697 questions, expected 62,859"):
        LOADERS["jsquad"](root)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"version": "v1.1"}, r"valid-v1\.3\.json: the top level: missing field data"),
        ({"data": [{"title": "t", "paragraphs": [{"qas": []}]}]}, r"data\[0\]\.paragraphs\[0\]: missing field context"),
        (
            {"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "a", "question": "q", "answers": []}]}]}]},
            r"valid-v1\.3\.json: data\[0\]\.paragraphs\[0\]\.qas\[0\]\.answers: empty",
        ),
        (
            {"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "a", "question": "q", "answers": [{}]}]}]}]},
            r"data\[0\]\.paragraphs\[0\]\.qas\[0\]\.answers\[0\]: missing field text",
        ),
        (
            {"data": [{"paragraphs": [{"context": "c", "qas": [{"id": 7, "question": "q", "answers": []}]}]}]},
            r"qas\[0\]\.answers: empty",
        ),
        (
            {
                "data": [
                    {"paragraphs": [{"context": "c", "qas": [{"id": 7, "question": "q", "answers": [{"text": "a"}]}]}]}
                ]
            },
            r"data\[0\]\.paragraphs\[0\]\.qas\[0\]\.id: expected str, got int",
        ),
    ],
)
def test_jsquad_loader_errors_name_file_and_json_path(tmp_path: Path, document: object, message: str) -> None:
    (tmp_path / "jsquad").mkdir()
    (tmp_path / "jsquad/valid-v1.3.json").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(TaskDataError, match=message):
        LOADERS["jsquad"](tmp_path)


def test_braces_in_shots_are_template_syntax_as_in_langchain(tmp_path: Path, data_dir: Path) -> None:
    """llm-jp-eval writes the shots into a langchain f-string template: `{{`/`}}` in a shot become
    single braces, while the evaluated question is substituted literally."""
    root = jsquad_dir(tmp_path, data_dir)
    train = root / "jsquad/fewshot/train-v1.1.json"
    write_jsquad_train(train, texts={42740: ("集合{{1, 2}}の要素は？", "}}1{{")})
    task = get_task("jsquad")
    (item,) = task.items(task.load(root), limit=1)
    assert turn(f"文章：{synthetic_context(42740)}\n質問：集合{{1, 2}}の要素は？", "}1{") in item.prompt

    # A lone field in a shot fails langchain's template check: the harness cannot run the task.
    write_jsquad_train(train, texts={29433: ("{x}とは？", "答")})
    with pytest.raises(TaskDataError, match=r"task jsquad: the instruction or a shot holds braces .*KeyError"):
        task.items(task.load(root), limit=1)
    write_jsquad_train(train, texts={54061: ("a}b", "答")})
    with pytest.raises(TaskDataError, match=r"Single '}' encountered"):
        task.items(task.load(root), limit=1)


# --- JMMLU -------------------------------------------------------------------------------------

# FEWSHOT.md A.7: (subject, 0-based CSV row, answer) of the 5 shots, in prompt order.
JMMLU_SHOTS = [
    ("high_school_geography", 110, "B"),
    ("professional_psychology", 51, "A"),
    ("anatomy", 96, "C"),
    ("philosophy", 24, "B"),
    ("jurisprudence", 96, "B"),
]


def test_jmmlu_split_sizes_and_shots(data_dir: Path) -> None:
    data = LOADERS["jmmlu"](data_dir)
    assert (len(data.test), len(data.fewshot_pool)) == (3541, 32)
    assert [(d["subject"], d["row"], d["answer"]) for d in data.fewshot_pool[:5]] == JMMLU_SHOTS
    assert [d["id"] for d in data.fewshot_pool[:5]] == [f"{s}:{r}" for s, r, _ in JMMLU_SHOTS]
    # Mixed subjects from the first item on.
    assert [d["id"] for d in data.test[:3]] == ["high_school_computer_science:72", "college_medicine:32", "virology:29"]
    assert len({d["subject"] for d in data.test[:20]}) > 10


def test_jmmlu_split_equals_a_derivation_with_the_global_generator(data_dir: Path) -> None:
    """llm-jp-eval's jmmlu.py procedure, written out with `random.seed` / `random.shuffle`."""
    state = random.getstate()
    try:
        random.seed(42)
        dev: list[str] = []
        test: list[str] = []
        for subject in JMMLU_SUBJECTS:
            with (data_dir / f"jmmlu/by_sa/{subject}.csv").open(encoding="utf-8-sig") as f:
                ids = [f"{subject}:{n}" for n, _row in enumerate(csv.reader(f, quoting=csv.QUOTE_ALL))]
            random.shuffle(ids)
            dev.extend(ids[: len(ids) // 2])
            test.extend(ids[len(ids) // 2 :])
        random.shuffle(dev)
        random.shuffle(test)
    finally:
        random.setstate(state)
    assert (len(dev), len(test)) == (3540, 3557)  # 7,097 rows; dev split 3,524, test split 3,541
    data = LOADERS["jmmlu"](data_dir)
    assert [d["id"] for d in data.fewshot_pool] == dev[:16] + test[:16]
    assert [d["id"] for d in data.test] == test[16:]


def test_jmmlu_first_prompt(data_dir: Path) -> None:
    task = get_task("jmmlu")
    (item,) = task.items(task.load(data_dir), limit=1)
    shots = (
        turn(
            "質問：欧州連合（EU）は次のどの組織に取って代わったか？\n"
            "選択肢：A.北大西洋条約機構,B.欧州経済共同体,C.国際連合,D.東南アジア諸国連合",
            "B",
        )
        + turn(
            "質問：行動主義者の見解は、多くの理由から他の手法から批判されてきた。倫理学者たちは、行動主義者たちは"
            "進化に起因する学習における生得的なビルトイン・バイアスを無視していると主張したが、同時に反対したのは"
            "以下どの点か?\n"
            "選択肢：A.室内実験での動物の使用,B.室内実験での人間の使用,C.試行錯誤システムの使用,"
            "D.オペラント条件づけ原理の使用",
            "A",
        )
        + turn(
            # The choice texts' leading spaces are kept.
            "質問：あなたは、患者に顎下腺唾液腺肥大があると疑っている。あなたは、肥大した唾液腺をどう考えるか？\n"
            "選択肢：A.口腔内で触知可能。,B.口腔外で触知可能。,C. 口内と口外の両方で触知可能。,"
            "D. X線検査でのみ検出可能。",
            "C",
        )
        + turn(
            "質問：ヒュームは私たちの知覚をどの2つのカテゴリーに分けているか?\n"
            "選択肢：A.感覚と感情。,B.印象と観念。,C.静的なものと動的なもの。,D.単純と複雑。",
            "B",
        )
        + turn(
            "質問：ロバート・ノージックは、適切な刑罰を決定するための指針として、r×Hという公式を提唱している。"
            "これは何を意味するのか?\n"
            "選択肢：A.社会復帰の効果に社会に対する危険を乗じたもの。,B.責任の程度と実際に犯した損害の大きさを"
            "乗じたもの。,C.暴力の危険性に犯罪者の謙虚さの程度を乗じたもの。,D.累犯性に被告人の履歴を乗じたもの。",
            "B",
        )
    )
    # The evaluated question holds braces: it is substituted literally.
    question = (
        "質問：以下のプロシージャは、特定の名前（targetName）が見つかった一意の名前リスト（nameList）の"
        "インデックスを表示するためのものである。targetNameがnameListに見つからなかった場合、コードは0を表示する"
        "必要がある。\n PROCEDURE FindName (nameList, targetName)\n {\n index ← 0\n  FOR EACH name IN nameList\n"
        "  {\n   index ← index + 1\n   IF (name = targetName)\n   {\n   foundIndex ← index\n   }\n   ELSE\n"
        "   {\n   foundIndex ← 0\n   }\n  }\n  DISPLAY (foundIndex)\n }\n 次のプロシージャ呼び出しのうち、"
        "プロシージャが意図したとおりに動作しないことを示すために使用できるものはどれか?\n"
        '選択肢：A.FindName (["Andrea", "Ben"], "Ben" ),B.FindName (["Andrea", "Ben" ], "Diane" ),'
        'C.FindName (["Andrea", "Ben", "Chris"], "Ben"),D.FindName (["アンドレア", "クリス", "ダイアン"], "ベン")'
    )
    assert item.prompt == HEADER + JMMLU_INSTRUCTION + shots + turn(question)
    assert (item.id, item.gold, item.extra) == (
        "high_school_computer_science:72",
        "C",
        {"group": "high_school_computer_science"},
    )
    check_greedy(item, 1)
    assert task.spec.groups


def test_jmmlu_reads_crlf_inside_fields_as_lf(data_dir: Path) -> None:
    rows = jmmlu_rows(data_dir / "jmmlu/by_sa/high_school_mathematics.csv", "high_school_mathematics")
    assert len(rows) == 150
    assert rows[143]["question"].startswith("\n集合$\\{\\frac{2}{5}, \\frac{1}{2},5,10\\}$の任意の異なる2つの数")
    assert (rows[143]["A"], rows[143]["D"], rows[143]["answer"]) == ("5", "25", "D")
    assert (data_dir / "jmmlu/by_sa/high_school_mathematics.csv").read_bytes().count(b"\r\n") == 156
    data = LOADERS["jmmlu"](data_dir)
    fields = ("question", "A", "B", "C", "D", "answer")
    assert not any("\r" in d[f] for d in data.test + data.fewshot_pool for f in fields)
    # BOM-less files read the same way (college_physics has none).
    assert not jmmlu_rows(data_dir / "jmmlu/by_sa/college_physics.csv", "college_physics")[0]["question"].startswith(
        "\ufeff"
    )


def test_jmmlu_definition_lists_the_53_subject_files_in_harness_order(data_dir: Path) -> None:
    spec = get_task("jmmlu").spec
    assert spec.data_files == tuple(f"jmmlu/by_sa/{s}.csv" for s in JMMLU_SUBJECTS)
    assert len(JMMLU_SUBJECTS) == 53
    assert JMMLU_SUBJECTS[:3] == ("econometrics", "human_aging", "high_school_psychology")
    assert JMMLU_SUBJECTS[-3:] == ("professional_psychology", "sociology", "marketing")
    assert set(JMMLU_SUBJECTS) == {p.stem for p in (data_dir / "jmmlu/by_sa").glob("*.csv")}


def test_jmmlu_loader_errors_name_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "jmmlu/by_sa"
    folder.mkdir(parents=True)
    good = '"問","a","b","c","d","A"\n'
    for subject in JMMLU_SUBJECTS:
        (folder / f"{subject}.csv").write_text(good * 2, encoding="utf-8")
    (folder / "anatomy.csv").write_text(
        good + '"問\r\n続き","a","b","c","d","B"\n"問","a","b","c","d"\n', encoding="utf-8"
    )
    with pytest.raises(
        TaskDataError, match=r"anatomy\.csv:4: 5 field\(s\), expected 6 \(question, A, B, C, D, answer\)"
    ):
        LOADERS["jmmlu"](tmp_path)
    (folder / "anatomy.csv").write_text(good + "\n", encoding="utf-8")
    with pytest.raises(TaskDataError, match=r"anatomy\.csv:2: 0 field\(s\)"):
        LOADERS["jmmlu"](tmp_path)
    (folder / "anatomy.csv").unlink()
    with pytest.raises(TaskDataError, match=r"jmmlu/by_sa/anatomy\.csv: file not found"):
        LOADERS["jmmlu"](tmp_path)


# --- scoring through the metrics service's own code --------------------------------------------


def service_scores(task_name: str, outputs: list[str], gold: str) -> list[float]:
    """The task's extraction rule, then its metric with its options, as `Task.score` sends them."""
    spec = get_task(task_name).spec
    extract = TEXT_RULES[spec.extraction]
    items = [MetricItem(extract(o), [gold]) for o in outputs]
    return score(spec.metric.name, items, spec.metric.options).item_scores


def test_jemhopqa_char_f1_is_fuzzywuzzy_token_sort_ratio() -> None:
    # token_sort_ratio: non-alphanumerics become spaces (・ too), tokens sorted, Indel ratio
    # rounded to an integer percentage.
    assert service_scores(
        "jemhopqa",
        [
            "ダイ・ハード\n\n### 入力:\n質問：",  # cut at the blank line: equal
            "ダイハード",  # "ダイハード" vs "ダイ ハード": 1 - 1/11 -> 91
            "ハード・ダイ",  # tokens sorted: equal
            "瀬戸中央自動車道",  # vs "ダイ ハード": nothing in common -> 0
            "",  # an empty prediction
        ],
        "ダイ・ハード",
    ) == [1.0, 0.91, 1.0, 0.0, 0.0]
    assert service_scores("jemhopqa", ["ＹＥＳ", "yes", "YES\nNO", " YES"], "YES") == [1.0, 1.0, 0.67, 1.0]
    assert service_scores("jemhopqa", ["瀬戸中央道"], "瀬戸中央自動車道") == [0.77]  # 1 - 3/13


def test_jsquad_char_f1_scores_against_the_first_answer_only() -> None:
    # The second reference answer "小笠原諸島を除く日本" is not consulted: 1 - 5/15 -> 67.
    assert service_scores("jsquad", ["小笠原諸島", "小笠原諸島を除く日本", "小笠原諸島。\n\n文章"], "小笠原諸島") == [
        1.0,
        0.67,
        1.0,
    ]


def test_jmmlu_exact_match_of_the_letter() -> None:
    # NFKC makes the full-width letter equal; nothing is stripped, so a leading space is wrong.
    assert service_scores("jmmlu", ["C", "Ｃ", " C", "c", "D", "C\n\nD"], "C") == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]

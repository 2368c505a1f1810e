"""Prompts built exactly as the harnesses build them (strings from FEWSHOT.md A.4, B.5, B.6)."""

from pathlib import Path

from hyoka.orchestrator.tasks import get_task
from hyoka.orchestrator.tasks.prompts import Shot, llm_jp_eval_prompt, lm_eval_fewshot_context

HEADER = (
    "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。"
    "\n\n### 指示:\n"
)


def test_llm_jp_eval_layout() -> None:
    prompt = llm_jp_eval_prompt("指示文", [Shot("質問：a", "A"), Shot("質問：b", "B")], "質問：c")
    assert prompt == (
        HEADER + "指示文"
        "\n\n### 入力:\n質問：a\n\n### 応答:\nA"
        "\n\n### 入力:\n質問：b\n\n### 応答:\nB"
        "\n\n### 入力:\n質問：c\n\n### 応答:\n"
    )


def test_niilc_first_prompt_is_identical_to_llm_jp_eval(data_dir: Path) -> None:
    task = get_task("niilc")
    (item,) = task.items(task.load(data_dir), limit=1)
    instruction = (
        "質問に対する答えを出力してください。回答の他には何も含めないことを厳守してください。"
        "答えが複数の場合、コンマ（,）で繋げてください。"
    )
    shots = [
        ("種にどくが含まれていると言われる果物は？", "モモ"),
        ("タバコに含まれる成分で、脳を覚醒状態にするのは？", "ニコチン"),
        ("大正の前は？", "明治"),
        ("一日の正確な時間は何分ですか", "1400分"),
    ]
    expected = HEADER + instruction
    for q, a in shots:
        expected += f"\n\n### 入力:\n質問：{q}\n\n### 応答:\n{a}"
    expected += "\n\n### 入力:\n質問：初めてノート型パソコンを作ったメーカーは？\n\n### 応答:\n"
    assert item.prompt == expected
    assert item.gold == "東芝"
    assert item.generation is not None
    assert item.generation.max_new_tokens == 180 and item.generation.greedy


def test_jcommonsenseqa_first_shot_input_and_settings(data_dir: Path) -> None:
    task = get_task("jcommonsenseqa")
    (item,) = task.items(task.load(data_dir), limit=1)
    first_shot = (
        "\n\n### 入力:\n質問：動物たちの餌になるものは？\n選択肢：0.猫,1.家畜,2.原宿,3.牧草,4.島根県\n\n### 応答:\n3"
    )
    assert first_shot in item.prompt
    assert item.prompt.index(first_shot) == len(HEADER) + len(task.spec.prompt.instruction)
    assert task.spec.prompt.instruction.endswith(
        "。 回答となる数値をint型で返し、他には何も含めないことを厳守してください。"
    )
    assert item.generation is not None and item.generation.max_new_tokens == 1
    assert item.gold == "2"


def test_lm_eval_context_layout() -> None:
    assert lm_eval_fewshot_context([]) == ""
    assert lm_eval_fewshot_context([Shot("a", "b"), Shot("c", "d")]) == "a b\n\nc d\n\n"


def test_xwino_requests_are_lm_eval_multiple_input(data_dir: Path) -> None:
    task = get_task("xwino_en")
    data = task.load(data_dir)
    (item,) = task.items(data, limit=1)
    shots = []
    for p in (1805, 478, 30, 371):
        doc = data.test[p]
        cut = doc["sentence"].index("_")
        option = doc["option1"] if doc["answer"] == "1" else doc["option2"]
        shots.append(doc["sentence"][:cut] + option + " " + doc["sentence"][cut + 1 :].strip())
    context = "\n\n".join(shots) + "\n\n"
    assert item.prompt == context
    first, second = item.loglikelihood
    assert (
        first.context == context + "The city councilmen refused the demonstrators a permit because The city councilmen"
    )
    assert (
        second.context == context + "The city councilmen refused the demonstrators a permit because the demonstrators"
    )
    assert first.continuation == second.continuation == " feared violence."
    assert item.gold == "0"


def test_jhumaneval_prompt_is_unstripped(data_dir: Path) -> None:
    task = get_task("jhumaneval")
    (item,) = task.items(task.load(data_dir), limit=1)
    assert item.prompt.endswith('    """\n')
    gen = item.generation
    assert gen is not None
    assert (gen.n, gen.temperature, gen.top_p) == (10, 0.2, 0.95)
    assert gen.stop == ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```", "<file_sep>")

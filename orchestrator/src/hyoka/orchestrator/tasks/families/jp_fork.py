"""JP LM Evaluation Harness (Stability-AI fork 9b42d41, as vendored in swallow-evaluation v202407):
MGSM (ja), WMT20 en-ja and ja-en, XL-Sum (ja) (FEWSHOT.md C).

What the fork does, read from its code (`lm_eval/evaluator.py`, `base.py`, `tasks/ja/mgsm.py`,
`tasks/ja/xlsum_ja.py`, `tasks/translation.py`, `models/huggingface.py`):

- Order and shots: the evaluator shuffles the test documents with `random.Random(42)` and walks
  the shuffled list, drawing each document's shots from the SAME generator (`--limit N` keeps the
  first N of that order). A task with training documents draws `rnd.sample(train, k)`; one without
  (WMT20) draws `rnd.sample(test_in_file_order, k + 1)`, drops drawn documents equal to the current
  one and keeps the first k.
- Context: `DESCRIPTION` + shots (`doc_to_text + doc_to_target`, nothing between) joined by
  `FEWSHOT_SEP` (SEP twice, else "\\n\\n") + `FEWSHOT_SEP` + `doc_to_text(doc)`.
- The model (`hf-causal-experimental`) reads its context length from the config
  (`max_position_embeddings`, which swallow-evaluation caps at 4096) and generates at most
  `max_gen_toks` = 256 new tokens whatever the request asks, stopping at the request's `until`
  strings or EOS; tokens are counted without special tokens.
"""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from hyoka.orchestrator.tasks.builders import BuildContext, PromptTokenizer, builder, first, generation_request
from hyoka.orchestrator.tasks.fewshot import without_id
from hyoka.orchestrator.tasks.items import Item
from hyoka.orchestrator.tasks.loaders import Doc, TaskData, TaskDataError, loader, read_json_lines, require
from hyoka.orchestrator.tasks.spec import TaskSpec

#: swallow-evaluation v202407 (`lm-evaluation-harness-jp/lm_eval/models/huggingface.py`) lowers a
#: config's `max_position_embeddings` above 4096 to 4096 "to avoid out-of-memory issues in XLSUM".
MAX_LENGTH_CAP = 4096


def harness_max_length(tokenizer: PromptTokenizer) -> int:
    """The model's context length as the Swallow copy of the fork sees it."""
    return min(tokenizer.max_length, MAX_LENGTH_CAP)


def harness_order(docs: Sequence[Doc], seed: int) -> tuple[random.Random, list[Doc]]:
    """The evaluator's order (`rnd = random.Random(); rnd.seed(42); rnd.shuffle(docs)`) and the
    generator, whose state the shot draws continue from."""
    rnd = random.Random(seed)
    shuffled = list(docs)
    rnd.shuffle(shuffled)
    return rnd, shuffled


def draw(rnd: random.Random, pool: Sequence[Doc], k: int) -> list[Doc]:
    """`rnd.sample(pool, k)` (sample picks positions from the population size alone)."""
    return [pool[i] for i in rnd.sample(range(len(pool)), k)] if k > 0 else []


def fork_context(description: str, shots: Sequence[tuple[str, str]], query: str, separator: str) -> str:
    """`Task.fewshot_context`: description, each shot's text + target joined by the separator and
    followed by it, then the query text."""
    labeled = separator.join(text + target for text, target in shots) + separator if shots else ""
    return description + labeled + query


def fill(spec: TaskSpec, template: str, doc: Doc) -> str:
    """A definition's template filled with the document's fields (values inserted verbatim)."""
    try:
        return template.format_map(doc)
    except (KeyError, IndexError, ValueError) as e:
        raise TaskDataError(f"task {spec.name}: document {doc.get('id')} does not fit {template!r} ({e})") from e


def option(spec: TaskSpec, name: str) -> str:
    value = spec.prompt.options.get(name)
    if not isinstance(value, str):
        raise ValueError(f"task {spec.name}: [prompt.options] needs the string {name!r}")
    return value


def int_option(spec: TaskSpec, name: str) -> int:
    value = spec.prompt.options.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"task {spec.name}: [prompt.options] needs the integer {name!r}")
    return value


def _max_gen_toks(spec: TaskSpec) -> int:
    if spec.generation is None:
        raise ValueError(f"task {spec.name} has no [generation] table")
    return spec.generation.max_new_tokens


# --- MGSM (`tasks/ja/mgsm.py`, class MGSM, prompt version 0.0) --------------------------------


def _mgsm_test(path: Path) -> list[Doc]:
    """`mgsm_ja.tsv`: question<TAB>answer_number, no header, no quoting (HF `juletxara/mgsm` ja
    test, whose answer_number is the integer)."""
    docs: list[Doc] = []
    try:
        with require(path).open(encoding="utf-8", newline="") as f:
            for line_no, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
                if len(row) != 2:
                    raise TaskDataError(f"{path}:{line_no}: expected 2 tab-separated fields, found {len(row)}")
                question, number = row
                try:
                    answer_number = int(number.replace(",", ""))
                except ValueError:
                    raise TaskDataError(f"{path}:{line_no}: answer_number {number!r} is not an integer") from None
                docs.append({"id": f"mgsm_ja/{len(docs)}", "question": question, "answer_number": answer_number})
    except (OSError, UnicodeDecodeError) as e:
        raise TaskDataError(f"{path}: cannot read ({e})") from e
    if not docs:
        raise TaskDataError(f"{path}: no questions")
    return docs


def _mgsm_exemplars(path: Path) -> list[Doc]:
    """The 8 exemplars (HF `juletxara/mgsm` ja train), prefixes `問題：` / `ステップごとの答え：` kept."""
    rows = read_json_lines(path, ("exemplar", "question", "answer", "answer_number"))
    for line_no, row in enumerate(rows, start=1):
        if not isinstance(row["question"], str) or not isinstance(row["answer"], str):
            raise TaskDataError(f"{path}:{line_no}: question and answer must be strings")
        row["id"] = f"mgsm_ja/exemplar/{row['exemplar']}"
    return rows


@loader("mgsm_ja")
def load_mgsm_ja(data_dir: Path) -> TaskData:
    return TaskData(
        test=_mgsm_test(data_dir / "mgsm/mgsm_ja.tsv"),
        fewshot_pool=_mgsm_exemplars(data_dir / "mgsm/fewshot/exemplars_ja.jsonl"),
    )


def _mgsm_text(spec: TaskSpec, doc: Doc) -> str:
    """`doc_to_text`: every question prefix removed, then the template adds exactly one."""
    question = str(doc["question"]).replace(option(spec, "strip_from_question"), "")
    return fill(spec, spec.prompt.input_template, {**doc, "question": question})


def _mgsm_target(spec: TaskSpec, doc: Doc) -> str:
    """`doc_to_target`: the answer with every step-by-step prefix removed."""
    answer = str(doc["answer"]).replace(option(spec, "strip_from_answer"), "")
    return fill(spec, spec.prompt.output_template, {**doc, "answer": answer})


@builder("jp_fork_mgsm")
def build_mgsm(spec: TaskSpec, data: TaskData, limit: int | None, context: BuildContext) -> list[Item]:
    """`MGSM.fewshot_context`: draw k exemplars; while the prompt has more tokens than
    max_length - max_gen_toks, draw again with one shot fewer (each retry is a new draw)."""
    tokenizer = context.require_tokenizer(spec.name)
    budget = harness_max_length(tokenizer) - _max_gen_toks(spec)
    p = spec.prompt
    rnd, order = harness_order(data.test, spec.fewshot.seed)
    items = []
    for i, doc in enumerate(first(order, limit)):
        query = _mgsm_text(spec, doc)
        for k in range(spec.fewshot.num, -1, -1):
            shots = draw(rnd, data.fewshot_pool, k)
            prompt = fork_context(
                p.description, [(_mgsm_text(spec, s), _mgsm_target(spec, s)) for s in shots], query, p.fewshot_delimiter
            )
            if len(tokenizer.encode(prompt)) <= budget:
                break
        else:
            raise TaskDataError(
                f"task {spec.name}: document {doc['id']}: even the 0-shot prompt is longer than {budget} tokens "
                f"(the model's {harness_max_length(tokenizer)} minus {_max_gen_toks(spec)} to generate)"
            )
        items.append(
            Item(
                i,
                doc["id"],
                prompt,
                str(doc["answer_number"]),
                generation=generation_request(spec, prompt, i),
                extra={"fewshot": [s["id"] for s in shots]},
            )
        )
    return items


# --- WMT20 (`tasks/translation.py`, GeneralTranslationTask on sacrebleu's wmt20) -----------------

_WHITESPACE = re.compile(r"\s+")


def _segments(path: Path) -> list[str]:
    """One segment per line as the fork gets it: sacrebleu 1.5.0 cleans each segment of the .sgm
    (`re.sub(r"\\s+", " ", s.strip())`, where `\\s` includes U+3000) and the task reads the text
    file with `line.rstrip()`. The Moses-extracted files here differ only by that cleaning."""
    try:
        with require(path).open(encoding="utf-8", newline="\n") as f:
            return [_WHITESPACE.sub(" ", line.strip()).rstrip() for line in f]
    except (OSError, UnicodeDecodeError) as e:
        raise TaskDataError(f"{path}: cannot read ({e})") from e


def _translation_docs(name: str, src_path: Path, ref_path: Path) -> TaskData:
    sources, references = _segments(src_path), _segments(ref_path)
    if len(sources) != len(references):
        raise TaskDataError(
            f"{src_path}: {len(sources)} segments, but {ref_path} has {len(references)}; they must pair line by line"
        )
    if not sources:
        raise TaskDataError(f"{src_path}: no segments")
    docs = [{"id": f"{name}/{n}", "src": s, "ref": r} for n, (s, r) in enumerate(zip(sources, references, strict=True))]
    # No training or validation documents: the fork draws the shots from the test set itself.
    return TaskData(test=docs, fewshot_pool=docs)


@loader("wmt20_en_ja")
def load_wmt20_en_ja(data_dir: Path) -> TaskData:
    folder = data_dir / "wmt20/eng-jpn"
    return _translation_docs("wmt20_en_ja", folder / "newstest2020.eng", folder / "newstest2020.jpn")


@loader("wmt20_ja_en")
def load_wmt20_ja_en(data_dir: Path) -> TaskData:
    folder = data_dir / "wmt20/jpn-eng"
    return _translation_docs("wmt20_ja_en", folder / "newstest2020.jpn", folder / "newstest2020.eng")


@builder("jp_fork_translation")
def build_translation(spec: TaskSpec, data: TaskData, limit: int | None, context: BuildContext) -> list[Item]:
    """`{Source} phrase: {src}\\n{Target} phrase:` + ` {ref}` per shot; k+1 drawn from the test set
    in file order, the current document (compared as the fork's {src, ref} dict) dropped."""
    p = spec.prompt
    k = spec.fewshot.num
    rnd, order = harness_order(data.test, spec.fewshot.seed)
    items = []
    for i, doc in enumerate(first(order, limit)):
        shots = [s for s in draw(rnd, data.fewshot_pool, k + 1 if k else 0) if without_id(s) != without_id(doc)][:k]
        prompt = fork_context(
            p.description,
            [(fill(spec, p.input_template, s), fill(spec, p.output_template, s)) for s in shots],
            fill(spec, p.input_template, doc),
            p.fewshot_delimiter,
        )
        items.append(
            Item(
                i,
                doc["id"],
                prompt,
                doc["ref"],
                generation=generation_request(spec, prompt, i),
                extra={"fewshot": [s["id"] for s in shots]},
            )
        )
    return items


# --- XL-Sum ja (`tasks/ja/xlsum_ja.py`, class XLSumJa, prompt version 0.0) ---------------------


def _xlsum_rows(path: Path) -> list[Doc]:
    """An `mkshing/xlsum_ja` split as its CSV file holds it (header row; the `text` and `summary`
    columns are used; `id` names the item where present)."""
    docs: list[Doc] = []
    try:
        with require(path).open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise TaskDataError(f"{path}: empty file (expected a header row)")
            missing = [c for c in ("text", "summary") if c not in header]
            if missing:
                raise TaskDataError(f"{path}:1: header lacks column(s) {', '.join(missing)} (has {', '.join(header)})")
            for row in reader:
                if len(row) != len(header):
                    raise TaskDataError(f"{path}:{reader.line_num}: {len(row)} fields, the header has {len(header)}")
                record = dict(zip(header, row, strict=True))
                ident = record.get("id") or str(len(docs))
                docs.append({"id": f"xlsum_ja/{ident}", "text": record["text"], "summary": record["summary"]})
    except csv.Error as e:
        raise TaskDataError(f"{path}: not valid CSV ({e})") from e
    except (OSError, UnicodeDecodeError) as e:
        raise TaskDataError(f"{path}: cannot read ({e})") from e
    if not docs:
        raise TaskDataError(f"{path}: no rows")
    return docs


@loader("xlsum_ja")
def load_xlsum_ja(data_dir: Path) -> TaskData:
    return TaskData(
        test=_xlsum_rows(data_dir / "xlsum_ja/test.csv"),
        fewshot_pool=_xlsum_rows(data_dir / "xlsum_ja/fewshot/train.csv"),
    )


def fit_articles(
    prompt: str,
    max_tokens: int,
    count: Callable[[str], int],
    *,
    article_prompt: str,
    summary_prompt: str,
    sentence_end: str,
    sep: str,
    truncate: Callable[[str, int], str] | None = None,
) -> str:
    """`XLSumJa.preprocess_ctx`: a prompt over `max_tokens` tokens is cut at `article_prompt` into
    the description and one part per article; each article keeps its leading sentences (split at
    `sentence_end`) while they fit `max_tokens // parts` tokens, the last kept one then ending in
    `sentence_end + sep`. `truncate(sentence, n)` (the fork: decode the first n tokens) serves an
    article whose first sentence alone is too long."""
    if count(prompt) <= max_tokens:
        return prompt
    parts = [article_prompt + part for part in prompt.split(article_prompt)]
    description = ""
    if summary_prompt not in parts[0]:
        description = parts[0].replace(article_prompt, "")
        parts = parts[1:]
    per_part = max_tokens // len(parts)
    out = description
    for part in parts:
        pieces = part.split(summary_prompt)
        if len(pieces) != 2:
            # The fork unpacks `text, summary = c.split(summary_prompt)` and fails here too.
            raise TaskDataError(
                f"an article part holds {len(pieces) - 1} times {summary_prompt!r}; the fork cannot cut it"
            )
        text, summary = pieces
        kept: list[str] = []
        for sentence in text.split(sentence_end):
            if count(sentence_end.join([*kept, sentence])) > per_part:
                if kept:
                    kept[-1] += sentence_end + sep
                elif truncate is not None:
                    kept.append(truncate(sentence, per_part) + sep)
                else:
                    raise TaskDataError(
                        f"a first sentence alone exceeds {per_part} tokens; cutting it needs the tokenizer's decode"
                    )
                break
            kept.append(sentence)
        out += sentence_end.join(kept) + summary_prompt + summary
    return out


def _truncator(tokenizer: PromptTokenizer) -> Callable[[str, int], str]:
    """The fork's cut of an over-long sentence: `decode(encode(s)[:n], skip_special_tokens=True)`."""

    def truncate(sentence: str, n: int) -> str:
        return tokenizer.decode(tokenizer.encode(sentence)[:n])

    return truncate


@builder("jp_fork_xlsum")
def build_xlsum(spec: TaskSpec, data: TaskData, limit: int | None, context: BuildContext) -> list[Item]:
    """One shot `rnd.sample(train, 1)`; `construct_requests` then sizes the request at the gold
    summary's tokens + 10 and cuts the articles to fit the model's length minus that.

    The fork's model (`hf-causal-experimental`) ignores the request's size and generates up to its
    `max_gen_toks` (256, the [generation] table); prompt option `generate_request_size = true`
    sends the request's size instead (what a model honouring it, e.g. `hf-causal`, would do)."""
    tokenizer = context.require_tokenizer(spec.name)
    max_length = harness_max_length(tokenizer)
    p = spec.prompt
    margin = int_option(spec, "summary_token_margin")
    use_request_size = p.options.get("generate_request_size", False) is True
    truncate = _truncator(tokenizer)
    rnd, order = harness_order(data.test, spec.fewshot.seed)
    items = []
    for i, doc in enumerate(first(order, limit)):
        shots = draw(rnd, data.fewshot_pool, spec.fewshot.num)
        prompt = fork_context(
            p.description,
            [(fill(spec, p.input_template, s), fill(spec, p.output_template, s)) for s in shots],
            fill(spec, p.input_template, doc),
            p.fewshot_delimiter,
        )
        request_size = len(tokenizer.encode(doc["summary"])) + margin
        try:
            prompt = fit_articles(
                prompt,
                max_length - request_size,
                lambda text: len(tokenizer.encode(text)),
                article_prompt=option(spec, "article_prompt"),
                summary_prompt=option(spec, "summary_prompt"),
                sentence_end=option(spec, "sentence_end"),
                sep=option(spec, "sep"),
                truncate=truncate,
            )
        except TaskDataError as e:
            raise TaskDataError(f"task {spec.name}: document {doc['id']}: {e}") from e
        items.append(
            Item(
                i,
                doc["id"],
                prompt,
                doc["summary"],
                generation=generation_request(
                    spec, prompt, i, max_new_tokens=request_size if use_request_size else None
                ),
                extra={
                    "fewshot": [s["id"] for s in shots],
                    "request_max_tokens": request_size,
                    # ROUGE tokenises with this tokenizer (the metric signature says tok:pretokenized).
                    "rouge_tokenizer": tokenizer.name,
                },
            )
        )
    return items

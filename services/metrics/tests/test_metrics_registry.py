"""Metric names, options and their validation."""

from __future__ import annotations

import pytest

from hyoka.metrics import METRICS, Item, MetricError, Pairs, get_metric, registry, score


def test_every_metric_scores_with_its_defaults() -> None:
    for name in METRICS:
        item = Item("", (), (5, 2)) if name == "pass_at_k" else Item("42 #### 42", ("42",))
        result = score(name, [item])
        assert 0.0 <= result.corpus_score <= 1.0
        assert result.signature.metric == name
        assert result.signature.text.startswith(name + "|")


def test_the_registry_docstring_lists_every_metric() -> None:
    assert registry.__doc__ is not None
    for name in METRICS:
        assert name in registry.__doc__


@pytest.mark.parametrize(
    ("metric", "options", "field"),
    [
        ("nope", {}, "metric"),
        ("bleu", {"tokenizer": "13a"}, "options.tokenizer"),
        ("bleu", {"tokenize": "moses"}, "options.tokenize"),
        ("rouge2", {"aggregate": "median"}, "options.aggregate"),
        ("rouge2", {"seed": "-1"}, "options.seed"),
        ("pass_at_k", {"k": "0"}, "options.k"),
        ("pass_at_k", {"k": "x"}, "options.k"),
        ("exact_match_gsm8k", {"normalize": "nfkc"}, "options.normalize"),
    ],
)
def test_bad_metric_or_option_names_the_field(metric: str, options: dict[str, str], field: str) -> None:
    with pytest.raises(MetricError) as error:
        get_metric(metric, options)
    assert error.value.field == field


def test_options_resolve_to_defaults_and_instances_are_shared() -> None:
    assert get_metric("bleu") is get_metric("bleu", {"tokenize": "13a", "lowercase": "false"})
    assert get_metric("bleu").options == {"tokenize": "13a", "lowercase": "false"}


def test_empty_batch_and_missing_references() -> None:
    with pytest.raises(MetricError) as error:
        score("bleu", [])
    assert error.value.field == "items"
    with pytest.raises(MetricError) as error:
        score("rouge2", [Item("a", ("a",)), Item("b", ())])
    assert error.value.field == "items[1].references"


def test_signatures_record_the_tokenizer_and_dictionary() -> None:
    fields = score("bleu", [Item("今日は", ("今日は",))], {"tokenize": "ja-mecab"}).signature.as_dict()
    assert fields["tok"].startswith("ja-mecab-") and fields["dict"].startswith("ipadic-")
    fields = score("rouge2", [Item("今日は", ("今日は",))], {"tokenizer": "mecab-jlmeval"}).signature.as_dict()
    assert fields["dict"].startswith("unidic-lite-") and "neologdn" in fields and "emoji" in fields


def test_every_text_metric_scores_pairs_as_it_scores_items(pairs: list[tuple[str, str]]) -> None:
    # Pairs: the columnar form the server scores without building Items
    for name in METRICS:
        if name == "pass_at_k":
            continue
        # MGSM's references must be integers
        sample = [(p, str(len(r))) if name == "exact_match_mgsm" else (p, r) for p, r in pairs[:200]]
        items = [Item(p, (r,)) for p, r in sample]
        columns = Pairs([p for p, _ in sample], [r for _, r in sample])
        from_items, from_pairs = score(name, items), score(name, columns)
        assert from_pairs.item_scores == from_items.item_scores, name
        assert from_pairs.corpus_score == from_items.corpus_score, name
        assert from_pairs.signature == from_items.signature, name


def test_a_metric_check_applies_to_pairs() -> None:
    with pytest.raises(MetricError) as error:
        score("exact_match_mgsm", Pairs(["12", "7"], ["12", "seven"]))
    assert error.value.field == "items[1].references[0]"

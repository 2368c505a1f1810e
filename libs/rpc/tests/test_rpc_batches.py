"""The columnar metrics batch: one reference each needs no counts; otherwise counts per item."""

from __future__ import annotations

from hyoka.rpc.batches import score_columns


def test_one_reference_each_sends_no_counts() -> None:
    columns = score_columns(["a", "b"], [["x"], ["y"]])
    assert (list(columns.predictions), list(columns.references), list(columns.reference_counts)) == (
        ["a", "b"],
        ["x", "y"],
        [],
    )


def test_counts_when_an_item_has_several_or_none() -> None:
    columns = score_columns(["a", "b", "c"], [["x", "y"], [], ["z"]])
    assert list(columns.references) == ["x", "y", "z"]
    assert list(columns.reference_counts) == [2, 0, 1]

"""Builders for batch messages of the hyoka.v1 contracts that every client of a service
(the orchestrator, the metrics service's own tools, other teams' pipelines) shares."""

from __future__ import annotations

from collections.abc import Sequence

from hyoka.v1 import metrics_pb2


def score_columns(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> metrics_pb2.ScoreColumns:
    """A metrics batch in the columnar form: `reference_counts` only when an item has other than
    one reference (the contract's "empty means one each")."""
    columns = metrics_pb2.ScoreColumns(
        predictions=predictions, references=[reference for refs in references for reference in refs]
    )
    if any(len(refs) != 1 for refs in references):
        columns.reference_counts.extend(len(refs) for refs in references)
    return columns

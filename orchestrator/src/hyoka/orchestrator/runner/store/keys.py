"""What identifies a model output: the exact request content of an item (`prompt_hash`) and the
generation settings it was sent with (`generation_hash`). A changed metric, extraction or
aggregation leaves both as they were, so re-scoring reuses the outputs; a changed prompt,
few-shot sample or decoding setting changes one of them, so the item is asked again."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from hyoka.orchestrator.tasks.items import Item


def _digest(payload: Any) -> str:
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prompt_hash(item: Item) -> str:
    """The text sent for `item`: the generation context and every log-likelihood request."""
    return _digest(
        {
            "generation": item.generation.context if item.generation is not None else None,
            "loglikelihood": [[r.context, r.continuation] for r in item.loglikelihood],
        }
    )


def generation_hash(item: Item) -> str:
    """The generation settings of `item`'s request (everything but the context); the same for
    every log-likelihood-only item."""
    if item.generation is None:
        return _digest(None)
    settings = {k: v for k, v in dataclasses.asdict(item.generation).items() if k != "context"}
    return _digest(settings)

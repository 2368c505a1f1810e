"""Score signatures: every setting and library version behind a number, as sacrebleu's are.

Two scores are comparable only when their signatures are equal. The canonical text is
`metric|key:value|...` with keys in a fixed order (the order the metric declares them).
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from functools import cache


@cache
def package_version(distribution: str) -> str:
    """The installed version of a distribution, or "absent"."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


@dataclass(frozen=True)
class Signature:
    metric: str
    fields: tuple[tuple[str, str], ...] = field(default=())

    @property
    def text(self) -> str:
        return "|".join([self.metric, *(f"{key}:{value}" for key, value in self.fields)])

    def as_dict(self) -> dict[str, str]:
        return dict(self.fields)

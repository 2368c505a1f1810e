"""Fixtures shared by every test tree of the workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The benchmark data: $HYOKA_DATA_DIR, else ../shared/datasets beside the checkout (the
    product's own default is the `hyoka data` cache, which tests never fill from the network)."""
    env = os.environ.get("HYOKA_DATA_DIR")
    path = Path(env) if env else Path(__file__).resolve().parent.parent / "shared" / "datasets"
    if not (path / "FEWSHOT.md").is_file():
        pytest.fail(f"benchmark data not found at {path}; set HYOKA_DATA_DIR")
    return path

"""Fixtures shared by every test tree of the workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyoka.orchestrator.tasks.datadir import default_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The benchmark data (../shared/datasets beside the checkout, or $HYOKA_DATA_DIR)."""
    path = default_data_dir()
    if not (path / "FEWSHOT.md").is_file():
        pytest.fail(f"benchmark data not found at {path}; set HYOKA_DATA_DIR")
    return path

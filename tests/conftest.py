"""Shared test fixtures: paths to the public data sets beside the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data`` (the tests need it; CI clones with ../shared beside the checkout)."""
    if not DATA_DIR.is_dir():
        pytest.fail(f"{DATA_DIR} is missing: clone the project with ../shared beside it.")
    return DATA_DIR

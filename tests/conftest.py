"""Shared test fixtures: paths to the public data sets beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data`` (the tests need it; CI clones with ../shared beside the checkout)."""
    if not DATA_DIR.is_dir():
        pytest.fail(f"{DATA_DIR} is missing: clone the project with ../shared beside it.")
    return DATA_DIR


# Property and fuzz tests draw their cases from a fixed seed, so CI runs the same ~16,000
# generated cases every time (a failure is reproducible, never a random red). Set
# HYPOTHESIS_PROFILE=explore to draw fresh cases locally.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Two lanes under pytest-xdist (``-n 2 --dist loadgroup``, the README's test command):
    the deployments (real processes, mostly waiting on each other) in one group, the Flower
    simulations (Ray, CPU-bound) in another, so each runs on its own worker and no two
    deployments or simulations overlap; the unit tests fill both workers."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.get_closest_marker("deploy"):
            item.add_marker(pytest.mark.xdist_group("deploy"))
        elif item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group("simulation"))

"""``scripts/bench_vertical_flower.py``: the CPU accounting that RESULTS.md quotes beside the
walls (the runs themselves are what benchmarks/RESULTS.md reports)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("scripts.bench_vertical_flower")


def test_cpu_between_splits_the_two_party_actors_from_the_rest(bench: Any) -> None:
    me = os.getpid()
    before = {me: ("python", 1.0), 11: ("ray::ClientAppA", 5.0), 12: ("ray::ClientAppA", 1.0),
              13: ("raylet", 0.5)}
    after = {me: ("python", 2.5), 11: ("ray::ClientAppA", 25.0), 12: ("ray::ClientAppA", 11.0),
             13: ("raylet", 1.5), 14: ("ray::IDLE", 0.25)}  # a worker born in between
    assert bench.cpu_between(before, after) == pytest.approx(
        {"actor_busiest": 20.0, "actor_second": 10.0, "other_ray": 1.25,
         "coordinator_process": 1.5})


def test_process_cpu_sees_this_process(bench: Any) -> None:
    sum(i * i for i in range(200_000))
    name, cpu = bench.process_cpu()[os.getpid()]
    assert cpu > 0 and name

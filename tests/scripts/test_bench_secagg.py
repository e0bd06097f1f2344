"""``scripts/bench_secagg.py``: a tiny run of ours and Flower's legacy SecAgg+ gives exact sums
(with and without dropouts) and writes the JSON the results page is built from."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_benchmark_run_is_exact_and_writes_json(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    bench = importlib.import_module("scripts.bench_secagg")
    out = tmp_path / "secagg.json"
    assert bench.main(["--banks", "4", "--params", "100", "--dropout", "0.25",
                       "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert [run["dropped"] for run in results["runs"]] == [0, 1]
    for run in results["runs"]:
        for name in ("ours", "ours_mod_n", "flower"):
            assert run[name]["exact_sum"], name
            assert run[name]["cpu"]["critical_path_s"] > 0

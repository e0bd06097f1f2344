"""``scripts/bench_scale.py``: a row puts a run beside its floor per round and per message,
a run that times out is marked so, and the memory probe sees a process tree (no simulation
here: the children are faked; the script's real runs are what benchmarks/RESULTS.md reports)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("scripts.bench_scale")


def test_a_row_sets_the_run_beside_its_floor(bench: Any, monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    runs = {"floor": ({"wall_s": 9.0, "round_seconds": [0.5, 0.7],
                       "messages_per_round": 2 * 10}, 300.0),
            "run": ({"wall_s": 30.0, "keys_s": 2.0, "round_seconds": [2.0, 4.0],
                     "messages_per_round": 20, "auc": 0.71, "cpu_s": 50.0,
                     "cpu_driver_s": 20.0, "cpu_actors_s": 25.0, "cpu_ray_s": 5.0}, 900.0)}
    seen: list[list[str]] = []

    def fake_child(args: list[str], max_seconds: float) -> tuple[dict[str, Any] | None, float]:
        seen.append(args)
        return runs[args[0]]

    monkeypatch.setattr(bench, "run_child", fake_child)
    out = tmp_path / "scale.json"
    assert bench.main(["--banks", "10", "--rounds", "2", "--aggregation", "plain", "secagg",
                       "--json", str(out)]) == 0
    assert [a[0] for a in seen] == ["floor", "run", "run"]  # one floor per bank count
    assert seen[1][1:4] == ["10", "2", "plain"] and seen[2][3] == "secagg"
    rows = json.loads(out.read_text())["rows"]
    assert [(r["banks"], r["aggregation"]) for r in rows] == [(10, "plain"), (10, "secagg")]
    row = rows[0]
    for key in ("banks", "rounds", "aggregation", "wall_s", "seconds_per_round",
                "floor_seconds_per_round", "peak_rss_mb"):
        assert key in row
    assert row["seconds_per_round"] == pytest.approx(3.0)
    assert row["later_seconds_per_round"] == pytest.approx(4.0)  # round 1 left out
    assert row["floor_seconds_per_round"] == pytest.approx(0.6)
    assert row["seconds_per_message"] == pytest.approx(3.0 / 20)
    assert row["overhead_per_message_s"] == pytest.approx(3.0 / 20 - 0.6 / 20)
    assert row["peak_rss_mb"] == 900.0 and row["floor_peak_rss_mb"] == 300.0
    assert (row["cpu_s"], row["cpu_driver_s"], row["cpu_actors_s"]) == (50.0, 20.0, 25.0)
    assert row["floor_cpu_s"] is None  # the faked floor reported none
    assert not row["timed_out"]


def test_a_run_past_its_time_is_marked_and_fails_the_benchmark(
    bench: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench, "run_child", lambda args, s: (None, 50.0))
    assert bench.main(["--banks", "3", "--rounds", "2", "--aggregation", "plain"]) == 1


def test_the_memory_probe_sums_a_process_tree(bench: Any) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tree = bench._descendants(os.getpid())
        assert os.getpid() in tree and child.pid in tree
        assert bench._rss_mb(tree) > bench._rss_mb([child.pid]) > 1.0
    finally:
        child.kill()
        child.wait()


def test_the_cpu_meter_counts_each_process_of_a_tree_by_role(bench: Any) -> None:
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n" \
           "time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", burn])
    try:
        meter = bench.CpuMeter(child.pid)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            meter.sample(bench._descendants(child.pid))
            if meter.seconds()["cpu_s"] >= 0.4:
                break
            time.sleep(0.2)
        seconds = meter.seconds()
        assert seconds["cpu_s"] >= 0.4 and seconds["cpu_driver_s"] == seconds["cpu_s"]
        assert seconds["cpu_actors_s"] == seconds["cpu_ray_s"] == 0.0
        meter.sample([child.pid + 10**7])  # a process that is gone adds nothing
        assert meter.seconds() == seconds
    finally:
        child.kill()
        child.wait()


def test_cpu_per_round_is_read_between_the_round_ends(bench: Any) -> None:
    meter = bench.CpuMeter(os.getpid())
    meter.series = [(100.0, 0.0), (101.0, 2.0), (102.0, 2.0), (103.0, 8.0)]
    # cumulative CPU at 100.5, 102.0 and 102.5: 1.0, 2.0 and 5.0 (interpolated)
    assert meter.between([100.5, 102.0, 102.5]) == [1.0, 3.0]
    assert meter.between([100.5]) == []
    meter.sample([os.getpid()])  # a real sample appends (now, this process's CPU so far)
    assert meter.series[-1][1] > 0.0 and meter.series[-1][0] > 103.0


def test_a_run_stopped_at_its_limit_reports_the_rounds_it_finished(
        bench: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child prints its progress after each round; a run killed at --max-seconds still
    says how long its setup and its finished rounds took (the row stays timed out)."""
    output = "\n".join([
        "noise from the run",
        json.dumps({"progress": 1, "seconds": 40.0, "requests": 300}),
        json.dumps({"progress": 2, "seconds": 52.0, "requests": 900}),
        json.dumps({"progress": 3, "seconds": 66.0, "requests": 1500}),
    ])
    partial = bench._partial(output, bench.CpuMeter(os.getpid()))
    assert partial["partial"] and partial["rounds_done"] == 3
    assert partial["first_round_end_s"] == 40.0
    assert partial["round_seconds"] == [12.0, 14.0]
    assert partial["messages_per_round"] == 600
    assert bench._partial("no progress at all", bench.CpuMeter(os.getpid())) is None
    monkeypatch.setattr(bench, "run_child", lambda args, s: (
        ({"wall_s": 9.0, "round_seconds": [0.5], "messages_per_round": 20}, 1.0)
        if args[0] == "floor" else (partial, 80.0)))
    row = bench.bench_row(10, 5, "secagg", None, 0.0, 60.0)
    assert row["timed_out"] and row["wall_s"] is None and row["seconds_per_round"] is None
    assert row["before_timeout"]["rounds_done"] == 3
    assert "after 3 rounds" in bench._before_timeout(row["before_timeout"])

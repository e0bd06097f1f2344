"""The fast fault drills (``scripts/fault_drill.py``) on a real local federation of four banks:
a bank whose file has a bad cell, and a bank killed after round 1. In both the run completes
with the other three (min-banks defaults to max(3, ceil(2K/3)) = 3 of 4), exit 0, and the
launcher does not abort; the bad cell's value and the bank's path stay on the bank."""

from __future__ import annotations

import json
from pathlib import Path

from fedcredit.deploy.drill_cases import bad_file, kill_bank
from fedcredit.deploy.fault_drills import BAD_CELL, BANK, DrillOptions, dropouts
from fedcredit.deploy.launch_plan import Layout

from .conftest import assert_all_stopped

OPTIONS = DrillOptions(banks=4, rounds=2, timeout=600.0)


def test_a_bad_cell_at_one_bank_stays_on_that_bank(tmp_path: Path) -> None:
    result = bad_file(tmp_path, OPTIONS)
    print(result)
    assert result.passed, result.note
    out = tmp_path / "bad-file"
    results = json.loads((out / "results.json").read_text())
    assert results["deployment"]["status"] == "finished:completed"
    reasons = [str(d.get("reason", "")) for d in dropouts(out)]
    assert any("the bank's data file: column" in r and "is not a number" in r for r in reasons)
    assert all(BAD_CELL not in r and "bank.csv" not in r for r in reasons)
    assert BAD_CELL in (Layout(out).logs / f"bank-{BANK}.log").read_text()  # the bank's own log
    assert_all_stopped(out)


def test_a_killed_bank_is_reported_and_the_others_finish_the_run(tmp_path: Path) -> None:
    result = kill_bank(tmp_path, OPTIONS)
    print(result)
    assert result.passed, result.note
    out = tmp_path / "kill-bank"
    launcher_output = (tmp_path / "kill-bank.log").read_text()
    assert f"bank-{BANK} exited" in launcher_output and "min-banks = 3 of 4" in launcher_output
    rounds = [r for r in map(json.loads, (Layout(out).coordinator_run / "audit.jsonl")
                             .read_text().splitlines()) if r["kind"] == "round"]
    assert [len(r["banks"]) for r in rounds] == [4, 3]
    assert result.detect_s is not None and result.recover_s is not None
    assert_all_stopped(out)

"""The fast fault drills (``scripts/fault_drill.py``) on one real local federation of five
banks with ``--min-banks 3``: bank 1's file gets a bad cell, bank 2 is killed after round 1.
The run completes with the other three (rounds of 4 then 3 banks), exit 0, and the launcher
does not abort; the bad cell's value and the bank's path stay on the bank.

One launch holds both drills (``drill_cases.bad_file_and_kill_bank``; each drill alone is
a 4-bank launch of its own in the script): CI time. The default ``min-banks`` of 4 banks
(3) is pinned by ``test_launch_resume.py::test_min_banks_zero_tolerates_a_third_dropping_out``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedcredit.deploy.drill_cases import bad_file_and_kill_bank
from fedcredit.deploy.fault_drills import BAD_CELL, BANK, DrillOptions, DrillResult, dropouts
from fedcredit.deploy.launch_plan import Layout

from .conftest import assert_all_stopped

KILLED = BANK + 1
OPTIONS = DrillOptions(banks=5, rounds=2, timeout=600.0, extra=("--min-banks", "3"))


@pytest.fixture(scope="module")
def drilled(tmp_path_factory: pytest.TempPathFactory) -> tuple[DrillResult, DrillResult, Path]:
    base = tmp_path_factory.mktemp("drills")
    bad, kill = bad_file_and_kill_bank(base, OPTIONS, killed=KILLED)
    print(bad, kill, sep="\n")
    return bad, kill, base


def test_a_bad_cell_at_one_bank_stays_on_that_bank(
    drilled: tuple[DrillResult, DrillResult, Path],
) -> None:
    bad, _, base = drilled
    assert bad.passed, bad.note
    out = base / "bad-file-kill-bank"
    results = json.loads((out / "results.json").read_text())
    assert results["deployment"]["status"] == "finished:completed"
    reasons = [str(d.get("reason", "")) for d in dropouts(out)]
    assert any("the bank's data file: column" in r and "is not a number" in r for r in reasons)
    assert all(BAD_CELL not in r and "bank.csv" not in r for r in reasons)
    assert BAD_CELL in (Layout(out).logs / f"bank-{BANK}.log").read_text()  # the bank's own log
    assert_all_stopped(out)


def test_a_killed_bank_is_reported_and_the_others_finish_the_run(
    drilled: tuple[DrillResult, DrillResult, Path],
) -> None:
    _, kill, base = drilled
    assert kill.passed, kill.note
    out = base / "bad-file-kill-bank"
    launcher_output = (base / "bad-file-kill-bank.log").read_text()
    assert f"bank-{KILLED} exited" in launcher_output
    assert "min-banks = 3 of 5" in launcher_output
    rounds = [r for r in map(json.loads, (Layout(out).coordinator_run / "audit.jsonl")
                             .read_text().splitlines()) if r["kind"] == "round"]
    assert [sorted(r["banks"]) for r in rounds] == [[0, 2, 3, 4], [0, 3, 4]]
    assert kill.detect_s is not None and kill.recover_s is not None
    assert_all_stopped(out)

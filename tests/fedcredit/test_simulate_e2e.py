"""End to end: the real Flower simulation on german_credit.csv, and what crosses the wire."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flwr.app import Message

from federation.run.config import RunConfig
from federation.run.folder import RunFolder
from federation.run.results import HorizontalResults

from .calibration_checks import check_calibration, check_grades

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("fedcredit")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "COLUMNS": "160"})


def _run_cli_into_pipe(*args: str, log: Path) -> tuple[int, list[tuple[float, str]], float]:
    """Run the CLI with stdout a pipe (as under ``> log.txt`` or ``tee``): each line with the
    time it arrived, the exit code and the time the process ended."""
    exe = Path(sys.executable).with_name("fedcredit")
    with log.open("w") as err:
        proc = subprocess.Popen([str(exe), *args], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=err, text=True, env={**os.environ, "COLUMNS": "160"})
        assert proc.stdout is not None
        lines = [(time.monotonic(), line) for line in proc.stdout]
        code = proc.wait(timeout=600)
    return code, lines, time.monotonic()


@pytest.mark.slow
def test_simulate_cli_writes_results_and_matches_centralised(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "run"
    code, timed, ended = _run_cli_into_pipe(
        "simulate", "--data", str(data_dir / "german_credit.csv"), "--target", "bad",
        "--banks", "3", "--rounds", "4", "--out", str(out), log=tmp_path / "stderr.txt")
    stdout = "".join(line for _, line in timed)
    assert code == 0, stdout + (tmp_path / "stderr.txt").read_text()
    assert "centralised (pooled)" in stdout
    # Not a terminal: one plain line per stage and per round, each written while it runs.
    rounds = [(t, line) for t, line in timed if line.startswith("round ")]
    assert [line.split(":")[0] for _, line in rounds] == [f"round {r}/4" for r in (1, 2, 3, 4)]
    assert "stage: federated training" in stdout and "AUC" in rounds[0][1]
    assert ended - rounds[0][0] > 1.0  # the first round's line came before the run ended
    assert f"results: {out / 'results.json'}" in " ".join(stdout.split())  # not cut at 80
    res = json.loads((out / "results.json").read_text())
    for key in ("dataset", "banks", "rounds", "model", "aggregation", "partition", "seed",
                "federated", "centralized", "local_only", "history", "wall_seconds"):
        assert key in res
    assert res["banks"] == 3 and len(res["history"]) == 4
    assert [h["round"] for h in res["history"]] == [1, 2, 3, 4]
    assert len(res["local_only"]["per_bank"]) == 3
    assert res["federated"]["auc"] > 0.70
    assert abs(res["federated"]["auc"] - res["centralized"]["auc"]) < 0.02
    assert (out / "model.npz").exists() and (out / "preprocessor.json").exists()
    results = HorizontalResults.read(out / "results.json")  # calibrated on the test rows
    hist = results.score_histograms
    assert hist is not None and results.calibration is not None
    check_calibration(results.calibration, held_out_rows=sum(hist.bad) + sum(hist.good))
    assert results.calibration.fit_rows == sum(b.train_rows for b in results.local_only.per_bank)
    check_grades(results.calibration, hist)


def test_bad_file_gets_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    rows = "".join(f"{i},{i * 3},{i % 2}\n" for i in range(1, 40))
    bad.write_text("ID,amount,default\n" + rows + "40,abc,0\n")
    proc = run_cli("simulate", "--data", str(bad), "--target", "default", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "bad.csv: column 'amount', row 40 (line 41): value 'abc' is not a number" in \
        " ".join(proc.stderr.split())


def test_bad_setting_is_named(tmp_path: Path, data_dir: Path) -> None:
    proc = run_cli("simulate", "--data", str(data_dir / "german_credit.csv"), "--target", "bad",
                   "--partition", "by-column", "--partition-col", "purpose", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "--partition-col 'purpose' is not a numeric column" in " ".join(proc.stderr.split())


def record_run(cfg: RunConfig, *, wire: bool = False,
               ) -> tuple[object, list[tuple[str, Message]]]:
    """Run a simulation; the coordinator's view of every message, and with ``wire`` the
    banks' own transcript in ``cfg.out/wire.jsonl`` (what ``--record-wire`` writes)."""
    from fedcredit.simulation.horizontal import run_federation

    seen: list[tuple[str, Message]] = []
    result = run_federation(cfg, observer=lambda d, m: seen.append((d, m)),
                            record_wire=RunFolder(Path(cfg.out)).wire if wire else None)
    return result, seen


@pytest.mark.slow
def test_no_row_label_or_id_crosses_the_wire(tmp_path: Path, data_dir: Path) -> None:
    """Record every message of a real (plain) simulation at the banks and scan it for their
    data (``fedcredit audit wire``: labels, feature values and IDs in every encoding it knows,
    in file order and each bank's own row order)."""
    from fedcredit.audit_wire.scan import audit_wire

    cfg = RunConfig(data_path=str(data_dir / "german_credit.csv"), target="bad", banks=3,
                    rounds=2, model="mlp", out=str(tmp_path))
    result, seen = record_run(cfg, wire=True)
    assert len(result.history) == 2 and result.history[-1].auc > 0.6
    assert {d for d, _ in seen} == {"request", "reply"}
    report = audit_wire(tmp_path, data_dir / "german_credit.csv", target="bad")
    assert report.clean, [f.describe() for f in report.findings]
    # the banks recorded every message the coordinator sent and got, with real payloads
    assert report.messages == len(seen) and report.payload_bytes > 50_000
    assert {f"bank {b} {part} rows" for b in range(3) for part in ("training", "test")} \
        <= set(report.orders)

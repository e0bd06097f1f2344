"""End to end: the real Flower simulation on german_credit.csv, and what crosses the wire."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message

from federation.data.bank_data import bank_data
from federation.run.config import RunConfig

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


def _payloads(message: Message) -> tuple[list[np.ndarray], list[bytes], str]:
    """Arrays, raw byte payloads and text of every record in a message."""
    arrays, blobs, texts = [], [], []
    if not message.has_content():
        return arrays, blobs, ""
    for rec in message.content.values():
        if isinstance(rec, ArrayRecord):
            arrays.extend(a.ravel() for a in rec.to_numpy_ndarrays())
        elif isinstance(rec, ConfigRecord):
            for value in dict(rec).values():
                if isinstance(value, bytes):
                    blobs.append(value)
                else:
                    texts.append(str(value))
    return arrays, blobs, " ".join(texts)


def record_run(cfg: RunConfig) -> tuple[object, list[tuple[str, Message]]]:
    from fedcredit.simulation.horizontal import run_federation

    seen: list[tuple[str, Message]] = []
    result = run_federation(cfg, observer=lambda d, m: seen.append((d, m)))
    return result, seen


@pytest.mark.slow
def test_no_row_label_or_id_crosses_the_wire(tmp_path: Path, data_dir: Path) -> None:
    """Record every message of a real (plain) simulation and search it for the banks' data."""
    cfg = RunConfig(data_path=str(data_dir / "german_credit.csv"), target="bad", banks=3,
                    rounds=2, model="mlp", out=str(tmp_path))
    result, seen = record_run(cfg)
    assert len(result.history) == 2 and result.history[-1].auc > 0.6
    assert {d for d, _ in seen} == {"request", "reply"}
    arrays, texts = [], []
    for _, m in seen:
        a, blobs, t = _payloads(m)
        arrays.extend(a)
        arrays.extend(np.frombuffer(b, dtype=np.float64) for b in blobs if len(b) % 8 == 0)
        texts.append(t)
    text = " ".join(texts)
    assert arrays, "the plain run must carry payloads to check"
    for bank in range(cfg.banks):
        data = bank_data(cfg, bank)
        for table in (data.train, data.test):
            labels = table.y.astype(np.float64)
            assert not any(a.size == labels.size and np.array_equal(a, labels) for a in arrays)
            amounts = table.numeric["credit_amount"].to_numpy()  # 900+ distinct values
            for a in arrays:  # no raw column (or a large part of it) appears in any payload
                assert np.isin(amounts, a).mean() < 0.05
            for row in range(0, table.n_rows, 25):  # IDs as they would be serialised
                assert f"'{table.ids[row]}'" not in text and f'"{table.ids[row]}"' not in text

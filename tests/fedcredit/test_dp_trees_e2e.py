"""End to end, ``fedcredit simulate --model gbdt --dp-epsilon``: an epsilon too small for the
trees is one line and exit 2 before anything starts; a small DP tree simulation completes and
writes each bank's guarantee to results.json."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from federation.run.results import HorizontalResults


def run_cli(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("fedcredit")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "160"})


def test_an_epsilon_too_small_for_the_trees_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = run_cli("simulate", "--data", "german", "--banks", "3", "--model", "gbdt",
                  "--trees", "100", "--depth", "4", "--dp-epsilon", "0.01", "--out", str(out))
    assert res.returncode == 2, res.stdout + res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert "'dp-epsilon'" in lines[0] and "--trees" in lines[0] and "400" in lines[0]
    assert not (out / "keys").exists()  # refused before the key ceremony and any node


@pytest.mark.slow
def test_a_dp_tree_simulation_writes_each_banks_guarantee(tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = run_cli("simulate", "--data", "german", "--banks", "3", "--model", "gbdt",
                  "--trees", "2", "--depth", "2", "--bins", "12", "--learning-rate", "0.5",
                  "--dp-epsilon", "8", "--dp-delta", "1e-5", "--out", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    results = HorizontalResults.read(out / "results.json")
    assert results.privacy is not None and [p.bank for p in results.privacy] == [0, 1, 2]
    for p in results.privacy:
        assert 0 < p.epsilon <= 8.0 and p.delta == 1e-5 and p.accountant == "rdp"
        assert p.steps == 2 * 2 and p.sampling_rate == 1.0 and p.clip == 1.0
        assert (p.release_noise_multiplier or 0) > 0 and (p.histogram_noise_multiplier or 0) > 0
    assert len({p.noise_multiplier for p in results.privacy}) == 1  # same settings, same delta
    assert results.federated is not None and 0.0 < (results.federated.auc or 0) < 1.0
    assert results.trees is not None and results.trees.trees == 2
